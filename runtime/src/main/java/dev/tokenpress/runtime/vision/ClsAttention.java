package dev.tokenpress.runtime.vision;

/**
 * The CLS token's attention row of a ViT layer, computed in Java from that layer's q and k
 * (only when an operator asks for it): per head {@code softmax_j(q_h[0] · k_h[j] / sqrt(Dh))} over
 * all T tokens, then the mean over heads.
 */
public final class ClsAttention {
  private ClsAttention() {}

  /**
   * @param q queries {@code [H, T, Dh]} row-major (batch of one); only row 0 of each head is read
   * @param k keys {@code [H, T, Dh]}
   * @return {@code [T]}: index 0 is CLS→CLS, then CLS→token j
   */
  public static float[] headAveraged(float[] q, float[] k, int heads, int tokens, int headDim) {
    long n = (long) heads * tokens * headDim;
    if (q.length != n || k.length != n) {
      throw new IllegalArgumentException("q has " + q.length + " and k " + k.length + " values, expected "
          + heads + "x" + tokens + "x" + headDim + " = " + n);
    }
    double scale = 1.0 / Math.sqrt(headDim);
    double[] avg = new double[tokens];
    double[] s = new double[tokens];
    for (int h = 0; h < heads; h++) {
      int qBase = h * tokens * headDim;
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < tokens; j++) {
        int kBase = (h * tokens + j) * headDim;
        double dot = 0;
        for (int d = 0; d < headDim; d++) {
          dot += (double) q[qBase + d] * k[kBase + d];
        }
        s[j] = dot * scale;
        max = Math.max(max, s[j]);
      }
      double sum = 0;
      for (int j = 0; j < tokens; j++) {
        s[j] = Math.exp(s[j] - max);
        sum += s[j];
      }
      for (int j = 0; j < tokens; j++) {
        avg[j] += s[j] / sum / heads;
      }
    }
    float[] out = new float[tokens];
    for (int j = 0; j < tokens; j++) {
      out[j] = (float) avg[j];
    }
    return out;
  }

  /** The patch part of a row from {@link #headAveraged}: indices 1..T-1 (not renormalised). */
  public static float[] patches(float[] row) {
    float[] p = new float[row.length - 1];
    System.arraycopy(row, 1, p, 0, p.length);
    return p;
  }
}
