package dev.tokenpress.runtime.lm;

import static dev.tokenpress.runtime.lm.LmGraphNames.ATTN;
import static dev.tokenpress.runtime.lm.LmGraphNames.BIAS;
import static dev.tokenpress.runtime.lm.LmGraphNames.K;
import static dev.tokenpress.runtime.lm.LmGraphNames.Q;
import static dev.tokenpress.runtime.lm.LmGraphNames.V;

import dev.tokenpress.operators.api.SparseAttention;
import dev.tokenpress.runtime.onnx.DirectTensor;
import dev.tokenpress.runtime.onnx.GraphSession;
import java.util.Map;

/**
 * Prefill attention of one layer restricted to a {@link SparseAttention} set (ZipVL): the set's
 * rows of K and V are gathered, and the generic attention graph runs on the gathered queries (the
 * set's rows, or every row when the others attend too) over the gathered keys only, so the work
 * falls with the set's size. The outputs are scattered back; rows that ran no attention get zeros.
 */
final class SparsePrefillAttention {
  private static final float MASKED = -1e9f;

  private SparsePrefillAttention() {}

  /**
   * @param tok token index of every row (causality)
   * @param hookBias the operators' additive bias {@code [t, t]}, or null
   * @return {@code {query rows, key rows}} that ran attention, for the FLOPs count
   */
  static int[] run(
      GraphSession attention,
      DirectTensor q,
      DirectTensor k,
      DirectTensor v,
      DirectTensor attn,
      int[] tok,
      SparseAttention set,
      float[] hookBias,
      int qW,
      int kvW) {
    int t = tok.length;
    int[] keys = set.rows();
    int[] queries = set.othersAttend() ? identity(t) : keys;
    int m = keys.length;
    int nq = queries.length;
    float[] b = new float[nq * m];
    for (int i = 0; i < nq; i++) {
      int qi = queries[i];
      for (int j = 0; j < m; j++) {
        float x = tok[keys[j]] <= tok[qi] ? 0f : MASKED;
        if (hookBias != null) {
          x += hookBias[qi * t + keys[j]];
        }
        b[i * m + j] = x;
      }
    }
    try (DirectTensor qg = gather(q, queries, qW);
        DirectTensor kg = gather(k, keys, kvW);
        DirectTensor vg = gather(v, keys, kvW);
        DirectTensor bias = DirectTensor.floats(1, 1, nq, m);
        DirectTensor out = DirectTensor.floats(1, nq, qW)) {
      bias.put(b, 0, b.length);
      attention.runInto(
          Map.of(Q, qg.tensor(), K, kg.tensor(), V, vg.tensor(), BIAS, bias.tensor()),
          Map.of(ATTN, out.tensor()));
      float[] o = new float[nq * qW];
      out.get(0, o, 0, o.length);
      float[] all = new float[t * qW];
      for (int i = 0; i < nq; i++) {
        System.arraycopy(o, i * qW, all, queries[i] * qW, qW);
      }
      attn.put(all, 0, all.length);
    }
    return new int[] {nq, m};
  }

  private static DirectTensor gather(DirectTensor from, int[] rows, int width) {
    float[] row = new float[width];
    float[] all = new float[rows.length * width];
    for (int i = 0; i < rows.length; i++) {
      from.get(rows[i] * width, row, 0, width);
      System.arraycopy(row, 0, all, i * width, width);
    }
    DirectTensor t = DirectTensor.floats(1, rows.length, width);
    t.put(all, 0, all.length);
    return t;
  }

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }
}
