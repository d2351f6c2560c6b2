/**
 * The VLM pipeline over a model bundle ({@link dev.tokenpress.runtime.vlm.VlmRuntime}): decode →
 * preprocess → vision (+ requested ViT signals) → {@code VISUAL_TOKENS} operators → LM sequence
 * built from a {@code SequenceLayout} (text embeddings with the kept visual tokens at the image
 * placeholder, explicit position ids) → LM prefill with {@code PREFILL_AFTER} operators → greedy
 * decode → {@link dev.tokenpress.runtime.vlm.VlmResult}. {@link
 * dev.tokenpress.runtime.vlm.VlmCommands} holds the {@code generate} and {@code bench runtime}
 * commands.
 */
package dev.tokenpress.runtime.vlm;
