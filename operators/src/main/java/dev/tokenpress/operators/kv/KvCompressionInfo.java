package dev.tokenpress.operators.kv;

import java.util.Arrays;
import java.util.Objects;

/**
 * What a KV-quantising operator decided for one layer after prefill, kept beside the layer's cache
 * ({@link LayerKvCache#compressionInfo}) and written with every Parquet {@code kv_cache} row of the
 * layer (ZipVL: τ, the dynamic ratio, the probe seed).
 *
 * <p>With {@code heads = "per_kv_head"} every KV head g chose its own important set (of {@code
 * headImportant[g]} tokens, {@code headRatioCounts[g]} = its p); {@code ratioCount} is then the
 * largest p of any head and {@code important} the size of the union of the heads' sets (the tokens
 * sparse prefill attends over). With {@code heads = "shared"} one set serves every head and both
 * arrays are empty.
 *
 * @param operator the operator's name, e.g. {@code "zipvl"}
 * @param mode the operator's mode, e.g. {@code "sparse"} or {@code "kv-only"}
 * @param tau the threshold of the dynamic ratio (Eq. 6)
 * @param scored rows scored at this layer in prefill ({@code n})
 * @param ratioCount {@code p}: the smallest count of tokens holding {@code tau} of the mass (Eq.
 *     6); per KV head: the largest head's p
 * @param important tokens stored at {@code bitsHigh} after prefill ({@code p} plus forced rows);
 *     per KV head: the union over the heads
 * @param probeSeed the seed that drew this layer's random probe rows
 * @param bitsHigh bits of important tokens (16 = float16)
 * @param bitsLow bits of the other tokens
 * @param heads {@value #HEADS_SHARED} or {@value #HEADS_PER_KV_HEAD}
 * @param headRatioCounts per KV head its p (per_kv_head), else empty
 * @param headImportant per KV head its count of tokens stored at {@code bitsHigh} (per_kv_head),
 *     else empty
 */
public record KvCompressionInfo(
    String operator,
    String mode,
    double tau,
    int scored,
    int ratioCount,
    int important,
    long probeSeed,
    int bitsHigh,
    int bitsLow,
    String heads,
    int[] headRatioCounts,
    int[] headImportant) {

  /** One important set shared by every KV head. */
  public static final String HEADS_SHARED = "shared";

  /** One important set per KV head. */
  public static final String HEADS_PER_KV_HEAD = "per_kv_head";

  /**
   * Rejects a null operator, mode or heads, negative counts, and inconsistent per-head arrays;
   * copies them.
   */
  public KvCompressionInfo {
    if (operator == null || mode == null || heads == null) {
      throw new IllegalArgumentException("operator, mode and heads must not be null");
    }
    if (scored < 0 || ratioCount < 0 || important < 0 || important > scored) {
      throw new IllegalArgumentException(
          "counts must satisfy 0 <= important <= scored, got important "
              + important
              + ", scored "
              + scored
              + ", ratio count "
              + ratioCount);
    }
    headRatioCounts = headRatioCounts == null ? new int[0] : headRatioCounts.clone();
    headImportant = headImportant == null ? new int[0] : headImportant.clone();
    if (headRatioCounts.length != headImportant.length) {
      throw new IllegalArgumentException(
          "headRatioCounts has "
              + headRatioCounts.length
              + " entries, headImportant "
              + headImportant.length
              + "; they must have one per KV head");
    }
    if (HEADS_SHARED.equals(heads)) {
      if (headImportant.length != 0) {
        throw new IllegalArgumentException(
            "heads \"shared\" takes no per-head counts, found " + headImportant.length);
      }
    } else if (HEADS_PER_KV_HEAD.equals(heads)) {
      if (headImportant.length == 0) {
        throw new IllegalArgumentException(
            "heads \"per_kv_head\" needs per-head counts, found none");
      }
    } else {
      throw new IllegalArgumentException(
          "heads must be \""
              + HEADS_SHARED
              + "\" or \""
              + HEADS_PER_KV_HEAD
              + "\", found \""
              + heads
              + "\"");
    }
    for (int g = 0; g < headImportant.length; g++) {
      if (headRatioCounts[g] < 0
          || headRatioCounts[g] > scored
          || headImportant[g] < 0
          || headImportant[g] > scored) {
        throw new IllegalArgumentException(
            "KV head "
                + g
                + ": ratio count "
                + headRatioCounts[g]
                + " and important "
                + headImportant[g]
                + " must be within [0, scored = "
                + scored
                + "]");
      }
    }
  }

  /** The shared form ({@code heads = "shared"}, no per-head counts). */
  public KvCompressionInfo(
      String operator,
      String mode,
      double tau,
      int scored,
      int ratioCount,
      int important,
      long probeSeed,
      int bitsHigh,
      int bitsLow) {
    this(
        operator,
        mode,
        tau,
        scored,
        ratioCount,
        important,
        probeSeed,
        bitsHigh,
        bitsLow,
        HEADS_SHARED,
        new int[0],
        new int[0]);
  }

  /** A copy. */
  @Override
  public int[] headRatioCounts() {
    return headRatioCounts.clone();
  }

  /** A copy. */
  @Override
  public int[] headImportant() {
    return headImportant.clone();
  }

  /** Whether every KV head chose its own important set. */
  public boolean perKvHead() {
    return HEADS_PER_KV_HEAD.equals(heads);
  }

  /**
   * The share of (entry, KV head) pairs of the scored rows stored at {@code bitsHigh}: shared,
   * {@code important / scored}; per KV head, {@code sum(headImportant) / (heads * scored)}; 1 when
   * nothing was scored.
   */
  public double importantRatio() {
    if (scored == 0) {
      return 1.0;
    }
    if (!perKvHead()) {
      return important / (double) scored;
    }
    long sum = 0;
    for (int n : headImportant) {
      sum += n;
    }
    return sum / ((double) headImportant.length * scored);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof KvCompressionInfo c
        && operator.equals(c.operator)
        && mode.equals(c.mode)
        && Double.compare(tau, c.tau) == 0
        && scored == c.scored
        && ratioCount == c.ratioCount
        && important == c.important
        && probeSeed == c.probeSeed
        && bitsHigh == c.bitsHigh
        && bitsLow == c.bitsLow
        && heads.equals(c.heads)
        && Arrays.equals(headRatioCounts, c.headRatioCounts)
        && Arrays.equals(headImportant, c.headImportant);
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        operator,
        mode,
        tau,
        scored,
        ratioCount,
        important,
        probeSeed,
        bitsHigh,
        bitsLow,
        heads,
        Arrays.hashCode(headRatioCounts),
        Arrays.hashCode(headImportant));
  }

  @Override
  public String toString() {
    return "KvCompressionInfo[operator="
        + operator
        + ", mode="
        + mode
        + ", tau="
        + tau
        + ", scored="
        + scored
        + ", ratioCount="
        + ratioCount
        + ", important="
        + important
        + ", probeSeed="
        + probeSeed
        + ", bitsHigh="
        + bitsHigh
        + ", bitsLow="
        + bitsLow
        + ", heads="
        + heads
        + ", headRatioCounts="
        + Arrays.toString(headRatioCounts)
        + ", headImportant="
        + Arrays.toString(headImportant)
        + "]";
  }
}
