package dev.tokenpress.operators.api;

import java.util.Arrays;

/**
 * An operator's decision at a hook that may <em>merge</em> rows as well as drop them: each output
 * row is a group of input rows combined by a weighted mean. A {@link TokenSelection} is the special
 * case where every group has one member.
 *
 * <p>Input rows are numbered {@code 0..inputCount-1}. Groups are non-empty, pairwise disjoint and
 * ascending inside; a group's first (smallest) member is its <em>representative</em>. Inputs in no
 * group are dropped. A reduction is {@linkplain #isOrdered() ordered} when its groups are ordered
 * by representative, so that merged rows take the representative's place and row order never
 * changes; only inside the ViT ({@link Hook#VISION_LAYER}, where order carries no position) may a
 * reduction reorder rows, e.g. ToMe's "unmerged, then merged" output. Output row {@code o} is
 * {@code Σ_i w_i x_i / Σ_i w_i} over its members {@code i} (accumulated in double); a merged
 * token's <em>size</em> (number of original patches it stands for) is the sum of its members'
 * sizes, whatever the weights. An operator may attach {@linkplain #labels() labels}, one integer
 * per input row (e.g. VMTC's cluster assignment), which the runtime records in the step's {@link
 * KeptMap} and writes to Parquet. Immutable, with value equality.
 */
public final class TokenReduction {

  private final int inputCount;
  private final int[] start;
  private final int[] members;
  private final float[] weights;
  private final PositionMode positions;
  private final boolean ordered;
  private final int[] labels;

  private TokenReduction(
      int inputCount, int[] start, int[] members, float[] weights, PositionMode positions) {
    this(inputCount, start, members, weights, positions, null);
  }

  private TokenReduction(
      int inputCount,
      int[] start,
      int[] members,
      float[] weights,
      PositionMode positions,
      int[] labels) {
    this.labels = labels;
    boolean o = true;
    for (int g = 1; g < start.length - 1; g++) {
      o &= members[start[g]] > members[start[g - 1]];
    }
    this.ordered = o;
    this.inputCount = inputCount;
    this.start = start;
    this.members = members;
    this.weights = weights;
    this.positions = positions;
  }

  /** The reduction that keeps exactly the rows of {@code selection}, merging nothing. */
  public static TokenReduction of(TokenSelection selection) {
    int k = selection.keptCount();
    int[] st = new int[k + 1];
    for (int i = 0; i <= k; i++) {
      st[i] = i;
    }
    float[] w = new float[k];
    Arrays.fill(w, 1f);
    return new TokenReduction(
        selection.inputCount(), st, selection.kept(), w, selection.positions());
  }

  /** Keeps every row: the "do nothing" answer. */
  public static TokenReduction keepAll(int inputCount) {
    return of(TokenSelection.keepAll(inputCount));
  }

  /**
   * A reduction with the given groups and member weights (both copied).
   *
   * @param groups output rows in order, each the ascending input rows it merges
   * @param weights per group, a positive finite weight per member; null for equal weights
   * @throws IllegalArgumentException if a group is empty or not ascending, groups overlap, an index
   *     is outside {@code [0, inputCount)}, or a weight is not positive and finite
   */
  public static TokenReduction of(
      int inputCount, int[][] groups, float[][] weights, PositionMode positions) {
    if (inputCount < 0) {
      throw new IllegalArgumentException("inputCount must be >= 0, got " + inputCount);
    }
    if (positions == null) {
      throw new IllegalArgumentException("positions must not be null");
    }
    if (weights != null && weights.length != groups.length) {
      throw new IllegalArgumentException(
          "weights has " + weights.length + " groups, groups has " + groups.length);
    }
    int total = 0;
    for (int[] g : groups) {
      total += g.length;
    }
    int[] st = new int[groups.length + 1];
    int[] m = new int[total];
    float[] w = new float[total];
    boolean[] used = new boolean[inputCount];
    int p = 0;
    for (int o = 0; o < groups.length; o++) {
      int[] g = groups[o];
      if (g.length == 0) {
        throw new IllegalArgumentException("group " + o + " is empty");
      }
      if (weights != null && weights[o].length != g.length) {
        throw new IllegalArgumentException(
            "group " + o + " has " + g.length + " members but " + weights[o].length + " weights");
      }
      st[o] = p;
      for (int j = 0; j < g.length; j++) {
        int i = g[j];
        if (i < 0 || i >= inputCount) {
          throw new IllegalArgumentException(
              "group " + o + " has row " + i + ", outside [0, " + inputCount + ")");
        }
        if (j > 0 && i <= g[j - 1]) {
          throw new IllegalArgumentException(
              "group " + o + " must be strictly ascending, got " + Arrays.toString(g));
        }
        if (used[i]) {
          throw new IllegalArgumentException("row " + i + " is in more than one group");
        }
        used[i] = true;
        float wt = weights == null ? 1f : weights[o][j];
        if (!(wt > 0) || Float.isInfinite(wt)) {
          throw new IllegalArgumentException(
              "weight of row " + i + " in group " + o + " must be positive and finite, got " + wt);
        }
        m[p] = i;
        w[p] = wt;
        p++;
      }
    }
    st[groups.length] = p;
    return new TokenReduction(inputCount, st, m, w, positions);
  }

  /**
   * This reduction with an operator-defined label per input row (copied), recorded in the {@link
   * KeptMap} of the step; e.g. VMTC's cluster of every token ({@code -1} primary).
   *
   * @throws IllegalArgumentException if {@code labels} does not have {@link #inputCount()} values
   */
  public TokenReduction withLabels(int[] labels) {
    if (labels == null || labels.length != inputCount) {
      throw new IllegalArgumentException(
          "labels must have one value per input row ("
              + inputCount
              + "), got "
              + (labels == null ? "null" : labels.length));
    }
    return new TokenReduction(inputCount, start, members, weights, positions, labels.clone());
  }

  /** The per-input-row labels the operator attached (copy), or null when it attached none. */
  public int[] labels() {
    return labels == null ? null : labels.clone();
  }

  /** Number of input rows. */
  public int inputCount() {
    return inputCount;
  }

  /** Number of output rows (groups). */
  public int outputCount() {
    return start.length - 1;
  }

  /** The input rows of output {@code o}, ascending (copy). */
  public int[] group(int o) {
    return Arrays.copyOfRange(members, start[o], start[o + 1]);
  }

  /** The member weights of output {@code o}, in member order (copy). */
  public float[] weights(int o) {
    return Arrays.copyOfRange(weights, start[o], start[o + 1]);
  }

  /** Number of members of output {@code o}. */
  public int groupSize(int o) {
    return start[o + 1] - start[o];
  }

  /** The representative (first member) of output {@code o}. */
  public int representative(int o) {
    return members[start[o]];
  }

  /** What happens to positions (applied to the representatives). */
  public PositionMode positions() {
    return positions;
  }

  /** Whether the groups are ordered by representative (row order kept). */
  public boolean isOrdered() {
    return ordered;
  }

  /** Whether some output merges more than one row. */
  public boolean merges() {
    return members.length > outputCount();
  }

  /** Whether every row is kept unmerged, in order. */
  public boolean keepsAll() {
    return outputCount() == inputCount && !merges() && ordered;
  }

  /**
   * The selection of the representatives, with this reduction's position mode.
   *
   * @throws IllegalStateException if the reduction is not {@linkplain #isOrdered() ordered}
   */
  public TokenSelection representatives() {
    if (!ordered) {
      throw new IllegalStateException("a reduction that reorders rows is not a selection: " + this);
    }
    int[] k = new int[outputCount()];
    for (int o = 0; o < k.length; o++) {
      k[o] = members[start[o]];
    }
    return TokenSelection.of(inputCount, k, positions);
  }

  /**
   * The reduced rows of a row-major {@code [inputCount, dim]} array: the weighted mean of each
   * group, accumulated in double.
   */
  public float[] apply(float[] rows, int dim) {
    if (rows.length != (long) inputCount * dim) {
      throw new IllegalArgumentException(
          "rows has " + rows.length + " values, expected " + inputCount + "x" + dim);
    }
    int n = outputCount();
    float[] out = new float[n * dim];
    double[] acc = new double[dim];
    for (int o = 0; o < n; o++) {
      int a = start[o];
      int b = start[o + 1];
      if (b - a == 1) {
        System.arraycopy(rows, members[a] * dim, out, o * dim, dim);
        continue;
      }
      Arrays.fill(acc, 0);
      double wsum = 0;
      for (int p = a; p < b; p++) {
        double w = weights[p];
        wsum += w;
        int base = members[p] * dim;
        for (int c = 0; c < dim; c++) {
          acc[c] += w * rows[base + c];
        }
      }
      for (int c = 0; c < dim; c++) {
        out[o * dim + c] = (float) (acc[c] / wsum);
      }
    }
    return out;
  }

  /** The sizes of the outputs: the sum of the members' {@code sizes}. */
  public float[] sumSizes(float[] sizes) {
    if (sizes.length != inputCount) {
      throw new IllegalArgumentException(
          "sizes has " + sizes.length + " values, expected " + inputCount);
    }
    float[] out = new float[outputCount()];
    for (int o = 0; o < out.length; o++) {
      double s = 0;
      for (int p = start[o]; p < start[o + 1]; p++) {
        s += sizes[members[p]];
      }
      out[o] = (float) s;
    }
    return out;
  }

  /**
   * This reduction followed by {@code next} (over this one's outputs), as one reduction over this
   * one's inputs (in {@code next}'s output order): member weights multiply, normalised per inner
   * group.
   */
  public TokenReduction then(TokenReduction next) {
    if (next.inputCount != outputCount()) {
      throw new IllegalArgumentException(
          "next reduction is over "
              + next.inputCount
              + " rows, this one has "
              + outputCount()
              + " outputs");
    }
    int n = next.outputCount();
    int[][] g = new int[n][];
    float[][] w = new float[n][];
    for (int o = 0; o < n; o++) {
      int count = 0;
      for (int p = next.start[o]; p < next.start[o + 1]; p++) {
        count += groupSize(next.members[p]);
      }
      long[] keyed = new long[count];
      float[] ww = new float[inputCount];
      int c = 0;
      for (int p = next.start[o]; p < next.start[o + 1]; p++) {
        int inner = next.members[p];
        double innerSum = 0;
        for (int q = start[inner]; q < start[inner + 1]; q++) {
          innerSum += weights[q];
        }
        for (int q = start[inner]; q < start[inner + 1]; q++) {
          keyed[c++] = members[q];
          ww[members[q]] = (float) (next.weights[p] * (weights[q] / innerSum));
        }
      }
      Arrays.sort(keyed);
      g[o] = new int[count];
      w[o] = new float[count];
      for (int i = 0; i < count; i++) {
        g[o][i] = (int) keyed[i];
        w[o][i] = ww[g[o][i]];
      }
    }
    PositionMode mode =
        positions == PositionMode.REPACK || next.positions == PositionMode.REPACK
            ? PositionMode.REPACK
            : PositionMode.KEEP_ORIGINAL;
    return of(inputCount, g, w, mode);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TokenReduction t
        && inputCount == t.inputCount
        && positions == t.positions
        && Arrays.equals(start, t.start)
        && Arrays.equals(members, t.members)
        && Arrays.equals(weights, t.weights)
        && Arrays.equals(labels, t.labels);
  }

  @Override
  public int hashCode() {
    return ((31 * inputCount + positions.hashCode()) * 31 + Arrays.hashCode(members)) * 31
        + Arrays.hashCode(start);
  }

  @Override
  public String toString() {
    return "TokenReduction["
        + outputCount()
        + "/"
        + inputCount
        + " out, "
        + (members.length - outputCount())
        + " merged away, "
        + positions
        + (ordered ? "" : ", reordered")
        + "]";
  }
}
