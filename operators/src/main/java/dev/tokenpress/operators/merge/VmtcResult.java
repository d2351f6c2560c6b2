package dev.tokenpress.operators.merge;

import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.Arrays;

/**
 * What {@link Vmtc} returns for one image: the new token sequence and its provenance.
 *
 * <p>Provenance is stored compactly (CSR): output token {@code r} stands for the input tokens
 * {@code sources[offsets[r] .. offsets[r+1])} (ascending input index) with the weights at the same
 * positions of {@code weights}, which sum to 1 (within float rounding); its value is {@code Σ
 * weight·input row}, computed in double and rounded once. A primary token has one source with
 * weight exactly 1 and its value is the input row bit for bit; so has a merged token whose cluster
 * holds one token.
 *
 * <p>Per input token: {@link #cluster(int)} is {@value #PRIMARY} for a primary token (kept as it
 * is), {@value #DROPPED} for a token that no output stands for (only when {@code C = 0} with
 * non-primary tokens left), otherwise the cluster id {@code 0..clusters()-1}; clusters are numbered
 * by ascending smallest member index, whatever order k-means found them in, so the ids are
 * canonical. {@link #outputOf(int)} is the output row the token went into ({@code -1} if dropped).
 */
public final class VmtcResult {

  /** {@link #cluster(int)} of a primary token. */
  public static final int PRIMARY = -1;

  /** {@link #cluster(int)} of a token that was dropped. */
  public static final int DROPPED = -2;

  private final int inputCount;
  private final int dim;
  private final float[] tokens;
  private final int[] offsets;
  private final int[] sources;
  private final float[] weights;
  private final float[] sizes;
  private final boolean[] primary;
  private final int[] cluster;
  private final int[] outputOf;
  private final int clusters;
  private final int iterations;

  VmtcResult(
      int inputCount,
      int dim,
      float[] tokens,
      int[] offsets,
      int[] sources,
      float[] weights,
      float[] sizes,
      boolean[] primary,
      int[] cluster,
      int[] outputOf,
      int clusters,
      int iterations) {
    this.inputCount = inputCount;
    this.dim = dim;
    this.tokens = tokens;
    this.offsets = offsets;
    this.sources = sources;
    this.weights = weights;
    this.sizes = sizes;
    this.primary = primary;
    this.cluster = cluster;
    this.outputOf = outputOf;
    this.clusters = clusters;
    this.iterations = iterations;
  }

  /** Number of input tokens {@code N}. */
  public int inputCount() {
    return inputCount;
  }

  /** Number of output tokens. */
  public int count() {
    return offsets.length - 1;
  }

  /** Width of a token row. */
  public int dim() {
    return dim;
  }

  /** The output tokens, {@code [count, dim]}. */
  public FloatTensor tokens() {
    return FloatTensor.copyOf(tokens, count(), dim);
  }

  /** Whether output token {@code r} is a primary token (kept unchanged). */
  public boolean isPrimary(int r) {
    return primary[checkOut(r)];
  }

  /** The input indices output token {@code r} stands for, ascending. */
  public int[] sources(int r) {
    checkOut(r);
    return Arrays.copyOfRange(sources, offsets[r], offsets[r + 1]);
  }

  /** The weights of {@link #sources(int)}, in the same order; they sum to 1. */
  public float[] weights(int r) {
    checkOut(r);
    return Arrays.copyOfRange(weights, offsets[r], offsets[r + 1]);
  }

  /**
   * The size of output token {@code r}: the sum of its sources' sizes (the patches it stands for).
   */
  public float size(int r) {
    return sizes[checkOut(r)];
  }

  /** Output sizes, {@code [count]}, for size tracking in later layers. */
  public float[] sizes() {
    return sizes.clone();
  }

  /** CSR offsets into {@link #allSources()} / {@link #allWeights()}, {@code [count + 1]}. */
  public int[] offsets() {
    return offsets.clone();
  }

  /** Every output token's sources, concatenated in output order. */
  public int[] allSources() {
    return sources.clone();
  }

  /** Every output token's weights, concatenated in output order. */
  public float[] allWeights() {
    return weights.clone();
  }

  /**
   * The cluster of input token {@code i}: an id {@code >= 0}, {@link #PRIMARY} or {@link #DROPPED}.
   */
  public int cluster(int i) {
    return cluster[checkIn(i)];
  }

  /** {@link #cluster(int)} of every input token, {@code [N]}: the assignment stored in Parquet. */
  public int[] clusters() {
    return cluster.clone();
  }

  /** The output row input token {@code i} went into, or {@code -1} if it was dropped. */
  public int outputOf(int i) {
    return outputOf[checkIn(i)];
  }

  /** Number of merged tokens (non-empty clusters that yielded a token). */
  public int clusterCount() {
    return clusters;
  }

  /** Lloyd iterations run after the k-means++ initialisation (0 when nothing was clustered). */
  public int iterations() {
    return iterations;
  }

  private int checkOut(int r) {
    if (r < 0 || r >= count()) {
      throw new IndexOutOfBoundsException("output token " + r + " of " + count());
    }
    return r;
  }

  private int checkIn(int i) {
    if (i < 0 || i >= inputCount) {
      throw new IndexOutOfBoundsException("input token " + i + " of " + inputCount);
    }
    return i;
  }

  @Override
  public String toString() {
    return "VmtcResult["
        + inputCount
        + " -> "
        + count()
        + " tokens, "
        + clusters
        + " merged, "
        + iterations
        + " iterations]";
  }
}
