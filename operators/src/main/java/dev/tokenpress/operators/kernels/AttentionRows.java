package dev.tokenpress.operators.kernels;

import dev.tokenpress.operators.tensor.Kernels;

/**
 * Attention probabilities of chosen query rows over a set of keys, computed from Q and K in Java:
 * the signal that FastV, MustDrop, ZipVL and others read, computed only for the rows they ask for
 * instead of materializing a full {@code T x S} attention map. The probabilities come from {@link
 * Kernels#softmax(float[], int, int, float[], int)}, the one softmax of every attention signal
 * (head means: {@link Kernels#meanOverHeads}).
 *
 * <p>Causality follows sequence order: query row {@code i} sees key {@code j} iff {@code
 * keyOrder[j] <= queryOrder[i]} (original token indices, which survive dropping).
 */
public final class AttentionRows {
  private AttentionRows() {}

  /**
   * @param q queries, {@code qRows x (numHeads*headDim)} row-major (RoPE applied)
   * @param queryRows rows of {@code q} to compute
   * @param queryOrder sequence order (token index) of every row of {@code q}
   * @param k keys, {@code kRows x (numKvHeads*headDim)} row-major (RoPE applied)
   * @param keyOrder sequence order of every key row ({@code kRows} entries)
   * @param bias optional additive bias, {@code qRows x kRows} row-major, or null
   * @return probabilities, {@code queryRows.length x numHeads x kRows} row-major
   */
  public static float[] compute(
      float[] q,
      int[] queryRows,
      int[] queryOrder,
      float[] k,
      int[] keyOrder,
      int numHeads,
      int numKvHeads,
      int headDim,
      float scale,
      float[] bias) {
    float[] out =
        logits(q, queryRows, queryOrder, k, keyOrder, numHeads, numKvHeads, headDim, scale, bias);
    int kRows = keyOrder.length;
    for (int row = 0; row < queryRows.length * numHeads; row++) {
      Kernels.softmax(out, row * kRows, kRows, out, row * kRows);
    }
    return out;
  }

  /**
   * The attention output of rows from their probabilities: {@code out[i, h*headDim + d] = Σ_j
   * probs[i, h, j] · v[j, g(h)*headDim + d]} with grouped-query heads {@code g(h) = h / (numHeads /
   * numKvHeads)}, accumulated in double.
   *
   * @param probs {@code rows x numHeads x vRows} row-major (e.g. {@link #compute}, changed by an
   *     operator)
   * @param v values, {@code vRows x (numKvHeads*headDim)} row-major
   * @return {@code rows x (numHeads*headDim)} row-major
   */
  public static float[] weightedValues(
      float[] probs, int rows, float[] v, int vRows, int numHeads, int numKvHeads, int headDim) {
    if (probs.length != rows * numHeads * vRows) {
      throw new IllegalArgumentException(
          "probs has " + probs.length + " values, expected " + rows + "x" + numHeads + "x" + vRows);
    }
    int kWidth = numKvHeads * headDim;
    if (v.length < vRows * kWidth) {
      throw new IllegalArgumentException("v has " + v.length + " floats, need " + vRows * kWidth);
    }
    int group = numHeads / numKvHeads;
    float[] out = new float[rows * numHeads * headDim];
    double[] acc = new double[headDim];
    for (int i = 0; i < rows; i++) {
      for (int h = 0; h < numHeads; h++) {
        java.util.Arrays.fill(acc, 0);
        int po = (i * numHeads + h) * vRows;
        int vo0 = (h / group) * headDim;
        for (int j = 0; j < vRows; j++) {
          float p = probs[po + j];
          if (p == 0f) {
            continue;
          }
          int vo = j * kWidth + vo0;
          for (int d = 0; d < headDim; d++) {
            acc[d] += p * v[vo + d];
          }
        }
        int oo = (i * numHeads + h) * headDim;
        for (int d = 0; d < headDim; d++) {
          out[oo + d] = (float) acc[d];
        }
      }
    }
    return out;
  }

  /**
   * The scaled, biased logits {@code q·k/√d + bias} that {@link #compute} turns into probabilities,
   * with {@code -Infinity} at causally masked keys; the input of {@link Kernels#headMeanSoftmax}
   * for head-mean signals.
   *
   * @return {@code queryRows.length x numHeads x kRows} row-major
   */
  public static float[] logits(
      float[] q,
      int[] queryRows,
      int[] queryOrder,
      float[] k,
      int[] keyOrder,
      int numHeads,
      int numKvHeads,
      int headDim,
      float scale,
      float[] bias) {
    if (numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "numHeads " + numHeads + " is not a multiple of numKvHeads " + numKvHeads);
    }
    int kRows = keyOrder.length;
    int qWidth = numHeads * headDim;
    int kWidth = numKvHeads * headDim;
    if (k.length < kRows * kWidth) {
      throw new IllegalArgumentException("k has " + k.length + " floats, need " + kRows * kWidth);
    }
    int group = numHeads / numKvHeads;
    float[] out = new float[queryRows.length * numHeads * kRows];
    for (int qi = 0; qi < queryRows.length; qi++) {
      int row = queryRows[qi];
      if (row < 0 || row >= queryOrder.length) {
        throw new IllegalArgumentException(
            "query row " + row + " outside [0, " + queryOrder.length + ")");
      }
      int order = queryOrder[row];
      for (int h = 0; h < numHeads; h++) {
        int qo = row * qWidth + h * headDim;
        int ko0 = (h / group) * headDim;
        int oo = (qi * numHeads + h) * kRows;
        for (int j = 0; j < kRows; j++) {
          if (keyOrder[j] > order) {
            out[oo + j] = Float.NEGATIVE_INFINITY;
            continue;
          }
          int ko = j * kWidth + ko0;
          float acc = 0f;
          for (int d = 0; d < headDim; d++) {
            acc += q[qo + d] * k[ko + d];
          }
          float s = acc * scale;
          if (bias != null) {
            s += bias[row * kRows + j];
          }
          out[oo + j] = s;
        }
      }
    }
    return out;
  }
}
