package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.kernels.AttentionRows;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.runtime.bundle.LmSpec;

/**
 * What a hook sees of one prefill layer: the current rows (with original position ids and
 * token indices), this layer's Q and K for them (RoPE applied), the layer's cache after the rows
 * were stored, and attention rows computed on request (signals are computed only when asked for).
 */
public final class PrefillLayer {
    private final int layer;
    private final LmSpec spec;
    private final int[] positions;
    private final int[] tokenIndices;
    private final float[] q;
    private final LayerKvCache cache;
    private float[] cacheKeys;
    private int[] cacheOrder;

    PrefillLayer(int layer, LmSpec spec, int[] positions, int[] tokenIndices, float[] q, LayerKvCache cache) {
        this.layer = layer;
        this.spec = spec;
        this.positions = positions;
        this.tokenIndices = tokenIndices;
        this.q = q;
        this.cache = cache;
    }

    public int layer() {
        return layer;
    }

    public int rows() {
        return positions.length;
    }

    public int[] positions() {
        return positions.clone();
    }

    /** Original token index (index in the full input sequence) of every current row. */
    public int[] tokenIndices() {
        return tokenIndices.clone();
    }

    /** Queries of the current rows, {@code rows x (heads*headDim)}. A copy. */
    public float[] q() {
        return q.clone();
    }

    /** The layer's cache (earlier entries, then the current rows). */
    public LayerKvCache cache() {
        return cache;
    }

    /**
     * Causal attention probabilities of the chosen query rows over every cache entry of this
     * layer: {@code queryRows.length x heads x cache.length()} row-major (no operator bias).
     */
    public float[] attentionRows(int[] queryRows) {
        if (cacheKeys == null) {
            cacheKeys = cache.keys();
            cacheOrder = cache.tokenIndices();
        }
        return AttentionRows.compute(q, queryRows, tokenIndices, cacheKeys, cacheOrder, spec.numHeads(),
                spec.numKvHeads(), spec.headDim(), (float) (1.0 / Math.sqrt(spec.headDim())), null);
    }
}
