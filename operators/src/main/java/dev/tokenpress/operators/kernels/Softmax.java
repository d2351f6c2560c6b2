package dev.tokenpress.operators.kernels;

/**
 * Numerically stable softmax over float rows (max-subtracted, normalised in double), with a float
 * exponential accurate to a few ulp ({@link #exp}) instead of {@code Math.exp}, which is the
 * largest cost of decode attention on small heads.
 */
public final class Softmax {
  private static final float LOG2E = 1.44269504088896341f;
  private static final float LN2_HI =
      0.693359375f; // exact in float: r = x - n*ln2 without cancellation error
  private static final float LN2_LO = -2.12194440e-4f;
  private static final float MIN_ARG = -87.3f; // below: the result is a float subnormal or 0

  private Softmax() {}

  /** Replaces {@code x[off .. off+len)} by its softmax. A row of all {@code -inf} becomes zeros. */
  public static void inPlace(float[] x, int off, int len) {
    if (len <= 0) {
      return;
    }
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < len; i++) {
      if (x[off + i] > max) {
        max = x[off + i];
      }
    }
    if (max == Float.NEGATIVE_INFINITY) {
      java.util.Arrays.fill(x, off, off + len, 0f);
      return;
    }
    double sum = 0;
    for (int i = 0; i < len; i++) {
      float e = exp(x[off + i] - max);
      x[off + i] = e;
      sum += e;
    }
    float inv = (float) (1.0 / sum);
    for (int i = 0; i < len; i++) {
      x[off + i] *= inv;
    }
  }

  /**
   * {@code e^x} for {@code x <= 0} (softmax arguments), relative error below 4e-7: range reduction
   * {@code x = n ln2 + r}, {@code |r| <= ln2/2}, a degree-7 Taylor polynomial for {@code e^r}, and
   * {@code 2^n} from the exponent bits. Returns 0 below {@value #MIN_ARG} and for {@code -inf}; NaN
   * stays NaN.
   */
  public static float exp(float x) {
    if (!(x >= MIN_ARG)) {
      return Float.isNaN(x) ? x : 0f;
    }
    if (x > 0f) {
      return (float) Math.exp(x);
    }
    float n = Math.round(x * LOG2E);
    float r = (x - n * LN2_HI) - n * LN2_LO;
    float p =
        1f
            + r
                * (1f
                    + r
                        * (0.5f
                            + r
                                * (1f / 6
                                    + r
                                        * (1f / 24
                                            + r * (1f / 120 + r * (1f / 720 + r * (1f / 5040)))))));
    return p * Float.intBitsToFloat(((int) n + 127) << 23);
  }
}
