package dev.tokenpress.operators.kernels;

/**
 * Rotary position embedding helpers in the Hugging Face "half-split" convention: element {@code j}
 * of a head rotates with element {@code j + headDim/2} by angle {@code position * invFreq[j]}.
 * (llama2.c and Meta checkpoints rotate adjacent pairs instead; converters permute the q/k
 * projection rows so both agree.)
 */
public final class Rope {
  private Rope() {}

  /**
   * {@code invFreq[j] = theta^(-2j/headDim)} for {@code j < headDim/2}, as Hugging Face computes it
   * in float32.
   */
  public static float[] inverseFrequencies(int headDim, double theta) {
    if (headDim < 2 || headDim % 2 != 0) {
      throw new IllegalArgumentException("headDim must be even and >= 2, found " + headDim);
    }
    float[] inv = new float[headDim / 2];
    for (int j = 0; j < inv.length; j++) {
      float exponent = (float) (2 * j) / headDim;
      inv[j] = (float) (1.0 / Math.pow(theta, exponent));
    }
    return inv;
  }

  /** Rotates {@code numHeads} consecutive heads of {@code x} starting at {@code off}, in place. */
  public static void applyHalfSplit(
      float[] x, int off, int numHeads, int headDim, int position, float[] invFreq) {
    int half = headDim / 2;
    for (int j = 0; j < half; j++) {
      float angle = position * invFreq[j];
      float c = (float) Math.cos(angle);
      float s = (float) Math.sin(angle);
      for (int h = 0; h < numHeads; h++) {
        int a = off + h * headDim + j;
        int b = a + half;
        float x1 = x[a];
        float x2 = x[b];
        x[a] = x1 * c - x2 * s;
        x[b] = x2 * c + x1 * s;
      }
    }
  }
}
