package dev.tokenpress.runtime.vision;

import dev.tokenpress.operators.tensor.Kernels;

/**
 * The CLS token's attention row of a ViT layer, computed in Java from that layer's q and k (only
 * when an operator asks for it): per head {@code softmax_j(q_h[0] · k_h[j] / sqrt(Dh) + b_j)} over
 * all T tokens, then the mean over heads, with {@link Kernels#headMeanSoftmax}, the one
 * softmax/head-mean kernel of every attention signal.
 */
public final class ClsAttention {
  private ClsAttention() {}

  /**
   * @param q queries {@code [H, T, Dh]} row-major (batch of one); only row 0 of each head is read
   * @param k keys {@code [H, T, Dh]}
   * @param keyBias per key, added to the logits (proportional attention), or null
   * @return {@code [T]}: index 0 is CLS→CLS, then CLS→token j
   */
  public static float[] headAveraged(
      float[] q, float[] k, int heads, int tokens, int headDim, float[] keyBias) {
    return Kernels.meanOverHeads(perHead(q, k, heads, tokens, headDim, keyBias), heads, tokens);
  }

  /**
   * The CLS row of every head, before the mean of {@link #headAveraged} (which is exactly the mean
   * over heads of this; {@link Kernels#headMeanSoftmax} is the same two steps).
   *
   * @return {@code [H, T]} row-major: per head, index 0 is CLS→CLS, then CLS→token j; each row sums
   *     to 1
   */
  public static float[] perHead(
      float[] q, float[] k, int heads, int tokens, int headDim, float[] keyBias) {
    float[] logits = logits(q, k, heads, tokens, headDim, keyBias);
    float[] probs = new float[logits.length];
    for (int h = 0; h < heads; h++) {
      Kernels.softmax(logits, h * tokens, tokens, probs, h * tokens);
    }
    return probs;
  }

  /**
   * The pre-softmax CLS row of every head, {@code q_h[0]·k_h[j]/sqrt(Dh) + b_j}, of which {@link
   * #perHead} is the per-head softmax (signal {@code VitClsLogits}).
   *
   * @return {@code [H, T]} row-major: per head, index 0 is CLS→CLS, then CLS→token j
   */
  public static float[] logits(
      float[] q, float[] k, int heads, int tokens, int headDim, float[] keyBias) {
    long n = (long) heads * tokens * headDim;
    if (q.length != n || k.length != n) {
      throw new IllegalArgumentException(
          "q has "
              + q.length
              + " and k "
              + k.length
              + " values, expected "
              + heads
              + "x"
              + tokens
              + "x"
              + headDim
              + " = "
              + n);
    }
    double scale = 1.0 / Math.sqrt(headDim);
    float[] logits = new float[heads * tokens];
    for (int h = 0; h < heads; h++) {
      int qBase = h * tokens * headDim;
      for (int j = 0; j < tokens; j++) {
        int kBase = (h * tokens + j) * headDim;
        double dot = 0;
        for (int d = 0; d < headDim; d++) {
          dot += (double) q[qBase + d] * k[kBase + d];
        }
        logits[h * tokens + j] = (float) (dot * scale + (keyBias == null ? 0 : keyBias[j]));
      }
    }
    return logits;
  }

  /** {@link #headAveraged(float[], float[], int, int, int, float[])} without a bias. */
  public static float[] headAveraged(float[] q, float[] k, int heads, int tokens, int headDim) {
    return headAveraged(q, k, heads, tokens, headDim, null);
  }

  /** The patch part of a row from {@link #headAveraged}: indices 1..T-1 (not renormalised). */
  public static float[] patches(float[] row) {
    float[] p = new float[row.length - 1];
    System.arraycopy(row, 1, p, 0, p.length);
    return p;
  }
}
