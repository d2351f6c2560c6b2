package dev.tokenpress.operators.kernels;

/** Numerically stable softmax over float rows (max-subtracted, accumulated in double). */
public final class Softmax {
    private Softmax() {}

    /** Replaces {@code x[off .. off+len)} by its softmax. A row of all {@code -inf} becomes uniform zeros. */
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
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < len; i++) {
            x[off + i] *= inv;
        }
    }
}
