package dev.tokenpress.runtime.lm;

import static dev.tokenpress.runtime.lm.LmGraphNames.ATTN;
import static dev.tokenpress.runtime.lm.LmGraphNames.BIAS;
import static dev.tokenpress.runtime.lm.LmGraphNames.HIDDEN;
import static dev.tokenpress.runtime.lm.LmGraphNames.HIDDEN_OUT;
import static dev.tokenpress.runtime.lm.LmGraphNames.K;
import static dev.tokenpress.runtime.lm.LmGraphNames.POSITION_IDS;
import static dev.tokenpress.runtime.lm.LmGraphNames.Q;
import static dev.tokenpress.runtime.lm.LmGraphNames.V;

import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.onnx.DirectTensor;
import java.util.Map;

/**
 * The probe prefill some operators need before the real one ({@code TokenOperator.probeDepth}, e.g.
 * CMAI when it inhibits at or before its focus layers): layers {@code 0..depth} run once on the
 * prefill rows with the causal mask only (no operator bias, drop or rewrite; the same graphs as
 * prefill), and after each layer {@link HookRunner#probeLayer} hands the operators the signals they
 * request of it, computed from that layer's queries and keys ({@link PrefillLayer}). Nothing of it
 * is kept: the real prefill then starts from the embeddings again. Costs {@code depth + 1} extra
 * layers of prefill.
 */
final class ProbePrefill {
  private ProbePrefill() {}

  static void run(
      LlamaRuntime rt,
      HookRunner hooks,
      float[] embeds,
      int[] positions,
      int[] tokenIndices,
      int depth) {
    LmSpec spec = rt.spec();
    int t = positions.length;
    int d = spec.hiddenSize();
    int qW = spec.qWidth();
    int kvW = spec.kvWidth();
    DirectTensor hidCur = DirectTensor.floats(1, t, d);
    DirectTensor hidNext = DirectTensor.floats(1, t, d);
    DirectTensor pos = DirectTensor.longs(1, t);
    DirectTensor q = DirectTensor.floats(1, t, qW);
    DirectTensor k = DirectTensor.floats(1, t, kvW);
    DirectTensor v = DirectTensor.floats(1, t, kvW);
    DirectTensor attn = DirectTensor.floats(1, t, qW);
    DirectTensor bias = SplitGeneration.causalBias(tokenIndices, tokenIndices, null);
    try {
      hidCur.put(embeds, 0, t * d);
      for (int i = 0; i < t; i++) {
        pos.setLong(i, positions[i]);
      }
      rt.pre0()
          .runInto(
              Map.of(HIDDEN, hidCur.tensor(), POSITION_IDS, pos.tensor()),
              Map.of(Q, q.tensor(), K, k.tensor(), V, v.tensor()));
      for (int l = 0; l <= depth; l++) {
        float[] qRows = new float[t * qW];
        float[] kRows = new float[t * kvW];
        float[] vRows = new float[t * kvW];
        q.get(0, qRows, 0, qRows.length);
        k.get(0, kRows, 0, kRows.length);
        v.get(0, vRows, 0, vRows.length);
        LayerKvCache lc =
            new LayerKvCache(
                new KvLayout(spec.numKvHeads(), spec.headDim()), KvCodec.of(KvPrecision.FP32));
        lc.appendRows(kRows, 0, vRows, 0, t, tokenIndices, positions, 0);
        DirectTensor in = hidCur;
        hooks.probeLayer(
            l,
            new PrefillLayer(
                l,
                spec,
                tokenIndices,
                qRows,
                lc,
                () -> {
                  float[] h = new float[t * d];
                  in.get(0, h, 0, h.length);
                  return h;
                }));
        if (l == depth || l == spec.numLayers() - 1) {
          break;
        }
        rt.attention()
            .runInto(
                Map.of(Q, q.tensor(), K, k.tensor(), V, v.tensor(), BIAS, bias.tensor()),
                Map.of(ATTN, attn.tensor()));
        rt.mid(l)
            .runInto(
                Map.of(ATTN, attn.tensor(), HIDDEN, hidCur.tensor(), POSITION_IDS, pos.tensor()),
                Map.of(HIDDEN_OUT, hidNext.tensor(), Q, q.tensor(), K, k.tensor(), V, v.tensor()));
        DirectTensor swap = hidCur;
        hidCur = hidNext;
        hidNext = swap;
      }
    } finally {
      hidCur.close();
      hidNext.close();
      pos.close();
      q.close();
      k.close();
      v.close();
      attn.close();
      bias.close();
    }
  }
}
