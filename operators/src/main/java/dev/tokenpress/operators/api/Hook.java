package dev.tokenpress.operators.api;

/**
 * The points in the generation loop where an operator may act (architecture §3).
 *
 * <pre>
 * ViT embed → for each ViT layer ℓ: pre → attention → [VISION_LAYER] → post (out proj, MLP)
 *   → projector → [BRANCH] → [VISUAL_TOKENS]
 *   → LM sequence = prefix + visual tokens + prompt
 *   → for each LM layer ℓ: pre → [PREFILL] → attention → post → [PREFILL_AFTER]
 *   → [KV_FINALIZE]
 *   → decode step: per layer pre → [DECODE] → attention over cache → post
 *       → logits (plus each branch's logits) → [LOGITS] → next token → [KV_APPEND]
 * </pre>
 *
 * <p>Every hook has a context record and a {@link TokenOperator} callback; operators declare their
 * hooks in {@link TokenOperator#hooks()} and the runtime ({@link HookRunner}) calls each operator
 * at exactly those, in plan order. {@code VISION_LAYER} sits after the layer's attention and before
 * its MLP (ToMe's merge point; see {@link VisionLayerContext}).
 */
public enum Hook {
  /**
   * Inside ViT layer ℓ, after attention and before the MLP: merge or drop ViT tokens ({@link
   * TokenOperator#reduceVisionLayer}). Called at every ViT layer run.
   */
  VISION_LAYER,
  /**
   * Once per image, on the projected visual tokens <em>before</em> the {@link #VISUAL_TOKENS}
   * operators: the input of a second sequence the runtime runs through the LM beside the main one,
   * with its own KV cache and in step with it ({@link TokenOperator#branch}); the operator reads
   * that sequence's logits at {@link #LOGITS} ({@link LogitsContext#branchLogits()}). Contrastive
   * decoding (DAMRO's outlier-only branch, VCD's distorted image) uses it.
   */
  BRANCH,
  /**
   * After the projector, before the LM sequence is built: select or merge projected visual tokens
   * ({@link TokenOperator#reduceVisualTokens}). Called once per image.
   */
  VISUAL_TOKENS,
  /**
   * Inside LM layer ℓ during prefill, before attention: an attention bias ({@link
   * TokenOperator#prefillBias}).
   */
  PREFILL,
  /**
   * After LM layer ℓ during prefill: drop rows from the hidden states, so that layers {@code > ℓ}
   * run on fewer tokens and hold shorter KV caches ({@link TokenOperator#afterPrefillLayer}).
   * Called after every layer but the last.
   */
  PREFILL_AFTER,
  /**
   * After prefill, before decoding: per-layer keep sets, quantisation ({@link
   * TokenOperator#finalizeKv}).
   */
  KV_FINALIZE,
  /**
   * Inside each decode step and layer, before attention over the cache: a bias ({@link
   * TokenOperator#decodeBias}).
   */
  DECODE,
  /** After the LM head, before the next token is chosen ({@link TokenOperator#logits}). */
  LOGITS,
  /** After a decode step appended to the KV cache ({@link TokenOperator#kvAppended}). */
  KV_APPEND
}
