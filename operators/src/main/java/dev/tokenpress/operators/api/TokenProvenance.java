package dev.tokenpress.operators.api;

import java.util.Arrays;

/**
 * For every token of a (possibly merged) visual sequence, the original patches it stands for and
 * their weights: token {@code t} is {@code Σ_p weight(t,p) · patch_p} in the sense of the weighted
 * means that built it (weights sum to 1 per token; for size-weighted merges every patch of a token
 * has weight {@code 1/size}). Patches are visual indices of the projector output before any
 * compression ({@code 0..N-1}, row-major grid order), ascending per token; the first is the token's
 * representative. Immutable.
 */
public final class TokenProvenance {

  private final int[][] patches;
  private final float[][] weights;

  private TokenProvenance(int[][] patches, float[][] weights) {
    this.patches = patches;
    this.weights = weights;
  }

  /** One token per visual index, each standing for itself with weight 1. */
  public static TokenProvenance identity(int[] visualIndex) {
    int[][] p = new int[visualIndex.length][];
    float[][] w = new float[visualIndex.length][];
    for (int i = 0; i < p.length; i++) {
      p[i] = new int[] {visualIndex[i]};
      w[i] = new float[] {1f};
    }
    return new TokenProvenance(p, w);
  }

  /**
   * Provenance from explicit per-token arrays (copied), e.g. read back from Parquet.
   *
   * @throws IllegalArgumentException if a token has no patch, patches are not strictly ascending or
   *     negative, or the weights do not match the patches or are not positive and finite
   */
  public static TokenProvenance of(int[][] patches, float[][] weights) {
    if (patches.length != weights.length) {
      throw new IllegalArgumentException(
          patches.length + " tokens of patches, " + weights.length + " of weights");
    }
    int[][] p = new int[patches.length][];
    float[][] w = new float[patches.length][];
    for (int t = 0; t < p.length; t++) {
      p[t] = patches[t].clone();
      w[t] = weights[t].clone();
      if (p[t].length == 0 || p[t].length != w[t].length) {
        throw new IllegalArgumentException(
            "token "
                + t
                + " has "
                + p[t].length
                + " patches and "
                + w[t].length
                + " weights; at least one of each, as many weights as patches");
      }
      for (int i = 0; i < p[t].length; i++) {
        if (p[t][i] < 0 || (i > 0 && p[t][i] <= p[t][i - 1])) {
          throw new IllegalArgumentException(
              "token "
                  + t
                  + ": patches must be non-negative and strictly "
                  + "ascending, got "
                  + Arrays.toString(p[t]));
        }
        if (!(w[t][i] > 0) || Float.isInfinite(w[t][i])) {
          throw new IllegalArgumentException(
              "token " + t + ": weight " + w[t][i] + " is not positive and finite");
        }
      }
    }
    return new TokenProvenance(p, w);
  }

  /** {@link #identity} of {@code 0..n-1}. */
  public static TokenProvenance identity(int n) {
    int[] idx = new int[n];
    for (int i = 0; i < n; i++) {
      idx[i] = i;
    }
    return identity(idx);
  }

  /**
   * The provenance after {@code reduction} over these tokens: weights combine as the weighted means
   * do.
   */
  public TokenProvenance apply(TokenReduction reduction) {
    if (reduction.inputCount() != count()) {
      throw new IllegalArgumentException(
          "reduction is over " + reduction.inputCount() + " tokens, provenance has " + count());
    }
    int n = reduction.outputCount();
    int[][] p = new int[n][];
    float[][] w = new float[n][];
    for (int o = 0; o < n; o++) {
      int[] g = reduction.group(o);
      if (g.length == 1) {
        p[o] = patches[g[0]];
        w[o] = weights[g[0]];
        continue;
      }
      float[] gw = reduction.weights(o);
      double sum = 0;
      int count = 0;
      for (int j = 0; j < g.length; j++) {
        sum += gw[j];
        count += patches[g[j]].length;
      }
      long[] keyed = new long[count];
      double[] byPatch = new double[count];
      int c = 0;
      for (int j = 0; j < g.length; j++) {
        int[] pp = patches[g[j]];
        for (int q = 0; q < pp.length; q++) {
          keyed[c] = ((long) pp[q] << 32) | c;
          byPatch[c] = gw[j] / sum * weights[g[j]][q];
          c++;
        }
      }
      Arrays.sort(keyed);
      p[o] = new int[count];
      w[o] = new float[count];
      for (int i = 0; i < count; i++) {
        p[o][i] = (int) (keyed[i] >>> 32);
        w[o][i] = (float) byPatch[(int) keyed[i]];
      }
    }
    return new TokenProvenance(p, w);
  }

  /** Number of tokens. */
  public int count() {
    return patches.length;
  }

  /** The patches token {@code t} stands for, ascending (copy). */
  public int[] patches(int t) {
    return patches[t].clone();
  }

  /** The weights of {@link #patches(int)} (copy); they sum to 1. */
  public float[] weights(int t) {
    return weights[t].clone();
  }

  /** Number of patches token {@code t} stands for (its size). */
  public int size(int t) {
    return patches[t].length;
  }

  /** The representative (smallest) patch of each token. */
  public int[] representatives() {
    int[] r = new int[patches.length];
    for (int t = 0; t < r.length; t++) {
      r[t] = patches[t][0];
    }
    return r;
  }

  /** Whether some token stands for more than one patch. */
  public boolean merged() {
    for (int[] p : patches) {
      if (p.length > 1) {
        return true;
      }
    }
    return false;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TokenProvenance t
        && Arrays.deepEquals(patches, t.patches)
        && Arrays.deepEquals(weights, t.weights);
  }

  @Override
  public int hashCode() {
    return Arrays.deepHashCode(patches);
  }

  @Override
  public String toString() {
    return "TokenProvenance[" + count() + " tokens" + (merged() ? ", merged" : "") + "]";
  }
}
