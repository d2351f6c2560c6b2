package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.LayerKvCache;

/**
 * Call sites of the LM half of the generation loop (architecture §3), for compression operators.
 * Every method has a no-op default; {@link #NONE} is the empty plan. This narrow interface is
 * what the operator API ({@code dev.tokenpress.operators.api}) is adapted onto.
 *
 * <p>Order per generation: for each layer ℓ, {@link #prefillAttentionBias} (PREFILL) then
 * {@link #keepAfterLayer} (PREFILL_AFTER); {@link #kvFinalize} (KV_FINALIZE); then per step
 * {@link #logits} (LOGITS), and for each layer {@link #decodeAttentionBias} (DECODE), then
 * {@link #kvAppended} (KV_APPEND).
 */
public interface LmHooks {
    LmHooks NONE = new LmHooks() {};

    /**
     * PREFILL: an additive attention bias for layer {@code layer}, {@code rows x cacheLength}
     * row-major over the layer's cache entries (earlier entries first, then this prefill's rows),
     * added on top of the causal mask; or null. {@code view.attentionRows} is available.
     */
    default float[] prefillAttentionBias(int layer, PrefillLayer view) {
        return null;
    }

    /**
     * PREFILL_AFTER: after layer {@code layer} (its KV already stored), the rows to keep for the
     * following layers — ascending indices into the current rows, which must include the last
     * row — or null to keep all. Kept rows keep their original position ids and token indices.
     */
    default int[] keepAfterLayer(int layer, PrefillLayer view) {
        return null;
    }

    /** KV_FINALIZE: after prefill, before decoding (keep sets, quantization, mixed precision). */
    default void kvFinalize(KvCache cache) {}

    /** LOGITS: may change the logits in place before the next token is chosen. */
    default void logits(int step, float[] logits) {}

    /**
     * DECODE: an additive bias over the entries of layer {@code layer}'s cache
     * ({@code cache.length()} floats, the new token's entry last), or null.
     */
    default float[] decodeAttentionBias(int layer, int step, LayerKvCache cache) {
        return null;
    }

    /** KV_APPEND: after each decode step appended the new token to every layer. */
    default void kvAppended(int step, KvCache cache) {}
}
