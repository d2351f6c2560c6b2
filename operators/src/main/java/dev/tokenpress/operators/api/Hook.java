package dev.tokenpress.operators.api;

/**
 * The points in the generation loop where an operator may act (architecture §3).
 *
 * <pre>
 * ViT embed → for each ViT layer ℓ: pre → [VISION_LAYER] → attention → post
 *   → projector → [VISUAL_TOKENS]
 *   → LM sequence = prefix + visual tokens + prompt
 *   → for each LM layer ℓ: pre → [PREFILL] → attention → post → [PREFILL_AFTER]
 *   → [KV_FINALIZE]
 *   → decode step: per layer pre → [DECODE] → attention over cache → post
 *       → logits → [LOGITS] → next token → [KV_APPEND]
 * </pre>
 *
 * <p>Operators declare their hooks in {@link TokenOperator#hooks()}. Today the API defines a
 * callback for {@link #VISUAL_TOKENS} ({@link TokenOperator#selectVisualTokens}) and
 * {@link #PREFILL_AFTER} ({@link TokenOperator#afterPrefillLayer}); the others are reserved names
 * whose context and callback are added with the first operator that needs them (ToMe and
 * MustDrop stage A: {@code VISION_LAYER}; VAR and CMAI: {@code PREFILL}/{@code DECODE}; MustDrop
 * stage C and ZipVL: {@code KV_FINALIZE}/{@code KV_APPEND}; DAMRO: {@code LOGITS}).
 * {@link #hasCallback()} tells a runtime which is which, so it can reject a plan it cannot run.
 */
public enum Hook {
    /** Inside the ViT, between the pre-attention graph and attention of layer ℓ (merge/drop in the ViT). */
    VISION_LAYER(false),
    /**
     * After the projector, before the LM sequence is built: select (later: merge) projected
     * visual tokens. Called once per image with every requested ViT signal.
     */
    VISUAL_TOKENS(true),
    /** Inside LM layer ℓ during prefill, before attention (attention bias, sparse attention sets). */
    PREFILL(false),
    /**
     * After LM layer ℓ during prefill: drop rows from the hidden states, so that layers
     * {@code > ℓ} run on fewer tokens and hold shorter KV caches. Called after every layer.
     */
    PREFILL_AFTER(true),
    /** After prefill, before decoding: per-layer keep sets, quantisation, mixed precision of the KV cache. */
    KV_FINALIZE(false),
    /** Inside each decode step and layer, before attention over the cache (attention bias). */
    DECODE(false),
    /** After the LM head in each decode step (e.g. DAMRO's contrastive combination). */
    LOGITS(false),
    /** After a decode step appended to the KV cache (periodic re-compression, e.g. ZipVL). */
    KV_APPEND(false);

    private final boolean hasCallback;

    Hook(boolean hasCallback) {
        this.hasCallback = hasCallback;
    }

    /** Whether {@link TokenOperator} defines a callback for this hook yet. */
    public boolean hasCallback() {
        return hasCallback;
    }
}
