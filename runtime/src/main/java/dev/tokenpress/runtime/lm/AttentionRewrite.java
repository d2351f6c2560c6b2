package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.kernels.AttentionRows;
import dev.tokenpress.operators.kernels.DecodeAttention;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.onnx.DirectTensor;

/**
 * Attention rows that operators change after the softmax ({@code TokenOperator.rewriteAttention}:
 * VAR's redistribution, CMAI's decode focus rows), computed exactly: the rows' probabilities come
 * from {@link AttentionRows#compute} (causal mask by token order plus the layer's hook bias, the
 * one softmax of every attention signal), the operators change them, and the rows' attention output
 * is recomputed from them ({@link AttentionRows#weightedValues}) and written over what the prefill
 * attention graph produced. In decode, {@link DecodeAttention#attendEdited} hands the step's
 * probabilities to the operators between its softmax and its value sum.
 */
final class AttentionRewrite {
  private AttentionRewrite() {}

  /**
   * Prefill of {@code layer}, after the attention graph wrote {@code attn}.
   *
   * @param q the layer's queries of the rows it runs on, {@code [t, qWidth]}
   * @param queryOrder token index of each row
   * @param k keys the graph attended over, {@code [s, kvWidth]}
   * @param v values, {@code [s, kvWidth]}
   * @param keyOrder token index of each key
   * @param hookBias the operators' bias {@code [t, s]} the graph added, or null
   * @param attn the graph's output {@code [1, t, qWidth]}; changed rows are overwritten
   * @return the number of rows recomputed
   */
  static int prefill(
      HookRunner hooks,
      LmSpec spec,
      int layer,
      float[] q,
      int[] queryOrder,
      float[] k,
      float[] v,
      int[] keyOrder,
      float[] hookBias,
      DirectTensor attn) {
    int[] rows = hooks.prefillAttentionRows(layer, keyOrder.length);
    if (rows == null) {
      return 0;
    }
    int heads = spec.numHeads();
    float scale = (float) (1.0 / Math.sqrt(spec.headDim()));
    float[] probs =
        AttentionRows.compute(
            q,
            rows,
            queryOrder,
            k,
            keyOrder,
            heads,
            spec.numKvHeads(),
            spec.headDim(),
            scale,
            hookBias);
    if (!hooks.rewritePrefillAttention(layer, rows, keyOrder, heads, probs)) {
      return 0;
    }
    float[] out =
        AttentionRows.weightedValues(
            probs, rows.length, v, keyOrder.length, heads, spec.numKvHeads(), spec.headDim());
    int qW = spec.qWidth();
    for (int i = 0; i < rows.length; i++) {
      attn.putAt(rows[i] * qW, out, i * qW, qW);
    }
    return rows.length;
  }

  /**
   * One decode step's attention at {@code layer} with the operators' rewrite between softmax and
   * values.
   */
  static void decode(
      HookRunner hooks,
      DecodeAttention kernel,
      int layer,
      int step,
      float[] q,
      LayerKvCache cache,
      int heads,
      float scale,
      float[] bias,
      float[] out) {
    int[] keys = cache.tokenIndices();
    kernel.attendEdited(
        q,
        0,
        cache,
        heads,
        scale,
        bias,
        out,
        0,
        (p, len) -> {
          float[] probs = java.util.Arrays.copyOf(p, heads * len);
          if (!hooks.rewriteDecodeAttention(layer, step, keys, heads, probs)) {
            return false;
          }
          System.arraycopy(probs, 0, p, 0, probs.length);
          return true;
        });
  }
}
