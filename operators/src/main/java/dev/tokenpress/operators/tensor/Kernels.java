package dev.tokenpress.operators.tensor;

import java.util.Arrays;

/**
 * Scalar numeric kernels over row-major {@code float[]} used by the operators and by the runtime
 * when it computes signals.
 *
 * <p>Conventions: inputs are never modified unless the method name ends in {@code InPlace};
 * reductions accumulate in {@code double} and round once to {@code float}; hot loops are indexed
 * {@code for} loops without streams or boxing. {@code exp} is {@link Math#exp} (not {@code
 * StrictMath}), so the last bit can differ across platforms; tests compare with a tolerance, never
 * bit for bit.
 *
 * <p><b>Top-k order.</b> Every selection in tokenpress ranks by <em>higher score first and, on
 * equal scores, lower index first</em>. {@code -0.0f} and {@code 0.0f} are equal. NaN scores are
 * rejected. This is deterministic, unlike {@code torch.topk}, whose tie order is unspecified.
 */
public final class Kernels {

  private Kernels() {}

  /**
   * Numerically stable softmax of {@code len} values of {@code x} from {@code off}, written to
   * {@code out} from {@code outOff} ({@code out} may be {@code x} for an in-place softmax).
   * Subtracts the row maximum, exponentiates and divides by the sum, accumulated in double. {@code
   * -Infinity} logits (masked positions) give exactly 0.
   *
   * @throws IllegalArgumentException if {@code len == 0}, a value is NaN or {@code +Infinity}, or
   *     every value is {@code -Infinity}
   */
  public static void softmax(float[] x, int off, int len, float[] out, int outOff) {
    if (len <= 0) {
      throw new IllegalArgumentException("softmax over " + len + " values");
    }
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < len; i++) {
      float v = x[off + i];
      if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
        throw new IllegalArgumentException("softmax input " + i + " is " + v);
      }
      if (v > max) {
        max = v;
      }
    }
    if (max == Float.NEGATIVE_INFINITY) {
      throw new IllegalArgumentException("softmax over " + len + " values that are all -Infinity");
    }
    double sum = 0;
    double[] e = new double[len];
    for (int i = 0; i < len; i++) {
      double v = Math.exp((double) x[off + i] - max);
      e[i] = v;
      sum += v;
    }
    double inv = 1.0 / sum;
    for (int i = 0; i < len; i++) {
      out[outOff + i] = (float) (e[i] * inv);
    }
  }

  /**
   * Softmax of a whole vector into a new array. See {@link #softmax(float[], int, int, float[],
   * int)}.
   */
  public static float[] softmax(float[] x) {
    float[] out = new float[x.length];
    softmax(x, 0, x.length, out, 0);
    return out;
  }

  /**
   * Mean over heads of a row-major {@code [heads, len]} array: {@code out[j] = Σ_h x[h, j] /
   * heads}.
   *
   * @throws IllegalArgumentException if {@code x.length != heads * len} or {@code heads < 1}
   */
  public static float[] meanOverHeads(float[] x, int heads, int len) {
    checkHeads(x, heads, len);
    double[] acc = new double[len];
    for (int h = 0; h < heads; h++) {
      int base = h * len;
      for (int j = 0; j < len; j++) {
        acc[j] += x[base + j];
      }
    }
    float[] out = new float[len];
    for (int j = 0; j < len; j++) {
      out[j] = (float) (acc[j] / heads);
    }
    return out;
  }

  /**
   * Head-averaged attention probabilities from per-head logits: softmax of each row of the
   * row-major {@code [heads, len]} logits, then the mean over heads. This is how the runtime turns
   * one query row's scaled {@code q·kᵀ} (with {@code -Infinity} at causally masked keys) into the
   * value of an attention signal.
   */
  public static float[] headMeanSoftmax(float[] logits, int heads, int len) {
    checkHeads(logits, heads, len);
    float[] probs = new float[logits.length];
    for (int h = 0; h < heads; h++) {
      softmax(logits, h * len, len, probs, h * len);
    }
    return meanOverHeads(probs, heads, len);
  }

  private static void checkHeads(float[] x, int heads, int len) {
    if (heads < 1 || len < 0 || (long) heads * len != x.length) {
      throw new IllegalArgumentException(
          "array of " + x.length + " values is not [heads=" + heads + ", len=" + len + "]");
    }
  }

  /**
   * Indices of the {@code k} largest scores, in rank order: higher score first, lower index first
   * on equal scores. {@code k} is clamped to {@code [0, scores.length]}.
   *
   * @throws IllegalArgumentException if {@code k < 0} or a score is NaN
   */
  public static int[] topK(float[] scores, int k) {
    if (k < 0) {
      throw new IllegalArgumentException("k must be >= 0, got " + k);
    }
    int n = scores.length;
    int kk = Math.min(k, n);
    long[] keys = new long[n];
    for (int i = 0; i < n; i++) {
      float s = scores[i];
      if (Float.isNaN(s)) {
        throw new IllegalArgumentException("score " + i + " is NaN");
      }
      // Monotone float -> int map (adding 0.0f turns -0.0f into 0.0f), then negated so that
      // ascending long order is descending score, ties broken by ascending index.
      int bits = Float.floatToIntBits(s + 0.0f);
      int sortable = bits ^ ((bits >> 31) & 0x7fffffff);
      keys[i] = ((long) ~sortable << 32) | i;
    }
    Arrays.sort(keys);
    int[] out = new int[kk];
    for (int i = 0; i < kk; i++) {
      out[i] = (int) keys[i];
    }
    return out;
  }

  /**
   * The same set as {@link #topK} but sorted by ascending index, i.e. with the original (spatial or
   * sequence) order restored.
   */
  public static int[] topKInIndexOrder(float[] scores, int k) {
    int[] idx = topK(scores, k);
    Arrays.sort(idx);
    return idx;
  }

  /**
   * Rounds half up ({@code floor(x + 0.5)}), the one rounding rule for every "fraction of N tokens"
   * in tokenpress. Python's {@code round} rounds half to even and so differs at exact halves (6.5
   * gives 6 there, 7 here).
   *
   * @throws IllegalArgumentException if {@code x} is NaN, infinite or outside the int range
   */
  public static int roundHalfUp(double x) {
    double r = Math.floor(x + 0.5);
    if (Double.isNaN(r) || r < Integer.MIN_VALUE || r > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("cannot round " + x + " to an int");
    }
    return (int) r;
  }

  /** Whether {@code a} is strictly increasing (true for length 0 and 1). */
  public static boolean isStrictlyIncreasing(int[] a) {
    for (int i = 1; i < a.length; i++) {
      if (a[i] <= a[i - 1]) {
        return false;
      }
    }
    return true;
  }
}
