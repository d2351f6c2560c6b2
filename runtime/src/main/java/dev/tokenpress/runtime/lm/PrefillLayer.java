package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.kernels.AttentionRows;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.bundle.LmSpec;
import java.util.function.Supplier;

/**
 * The runtime's view of one prefill layer, and the source of its signals: the rows the layer ran
 * on (with original position ids and token indices), this layer's Q and K for them (RoPE applied),
 * the layer's cache after the rows were stored, and the layer's input hidden states on request.
 * Signals are computed only when an operator asks for them, over the rows the
 * {@link HookRunner} names (the rows left by earlier operators at the same hook).
 */
final class PrefillLayer implements HookRunner.SignalSource {
    private final int layer;
    private final LmSpec spec;
    private final int[] tokenIndices;
    private final float[] q;
    private final LayerKvCache cache;
    private final Supplier<float[]> hidden;
    private float[] cacheKeys;
    private int[] cacheOrder;

    PrefillLayer(int layer, LmSpec spec, int[] tokenIndices, float[] q, LayerKvCache cache, Supplier<float[]> hidden) {
        this.layer = layer;
        this.spec = spec;
        this.tokenIndices = tokenIndices;
        this.q = q;
        this.cache = cache;
        this.hidden = hidden;
    }

    int rows() {
        return tokenIndices.length;
    }

    @Override
    public FloatTensor compute(Signal signal, SequenceLayout layout, int[] rows) {
        if (signal.layer() != layer) {
            throw new IllegalStateException("signal " + signal + " requested at LM layer " + layer);
        }
        if (signal instanceof Signal.LmHiddenStates) {
            int d = spec.hiddenSize();
            float[] all = hidden.get();
            float[] out = new float[rows.length * d];
            for (int i = 0; i < rows.length; i++) {
                System.arraycopy(all, rows[i] * d, out, i * d, d);
            }
            return FloatTensor.wrap(out, rows.length, d);
        }
        int heads = spec.numHeads();
        if (signal instanceof Signal.QueryRowAttention a) {
            int[] qr = a.rows().resolve(layout);
            float[] probs = attention(qr, rows);
            int keys = rows.length;
            float[] mean = new float[qr.length * keys];
            for (int i = 0; i < qr.length; i++) {
                float[] one = new float[heads * keys];
                System.arraycopy(probs, i * heads * keys, one, 0, one.length);
                System.arraycopy(Kernels.meanOverHeads(one, heads, keys), 0, mean, i * keys, keys);
            }
            return FloatTensor.wrap(mean, qr.length, keys);
        }
        if (signal instanceof Signal.QueryRowHeadAttention a) {
            int[] qr = a.rows().resolve(layout);
            return FloatTensor.wrap(attention(qr, rows), qr.length, heads, rows.length);
        }
        throw new IllegalArgumentException("signal " + signal + " is not computed in LM prefill");
    }

    /** Per-head probabilities {@code [qr, heads, rows]} of layout rows {@code qr} over the keys of {@code rows}. */
    private float[] attention(int[] layoutRows, int[] rows) {
        if (cache.length() != tokenIndices.length) {
            throw new IllegalStateException("attention signals need a cache of the layer's " + tokenIndices.length
                    + " rows at layer " + layer + ", found " + cache.length() + " entries");
        }
        if (cacheKeys == null) {
            cacheKeys = cache.keys();
            cacheOrder = cache.tokenIndices();
        }
        int[] viewRows = new int[layoutRows.length];
        for (int i = 0; i < viewRows.length; i++) {
            viewRows[i] = rows[layoutRows[i]];
        }
        int heads = spec.numHeads();
        int all = tokenIndices.length;
        float[] p = AttentionRows.compute(q, viewRows, tokenIndices, cacheKeys, cacheOrder, heads,
                spec.numKvHeads(), spec.headDim(), (float) (1.0 / Math.sqrt(spec.headDim())), null);
        if (rows.length == all) {
            return p;
        }
        // keys of rows dropped by earlier operators at this hook are left out, without renormalising
        float[] out = new float[viewRows.length * heads * rows.length];
        for (int qh = 0; qh < viewRows.length * heads; qh++) {
            for (int j = 0; j < rows.length; j++) {
                out[qh * rows.length + j] = p[qh * all + rows[j]];
            }
        }
        return out;
    }
}
