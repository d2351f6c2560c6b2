package dev.tokenpress.spark;

/**
 * Token counts around one compression stage (e.g. {@code vision_layer_0}, {@code visual_tokens},
 * {@code prefill_after_2}): tokens that entered it and tokens that left it.
 */
public record StageCount(String stage, int tokensIn, int tokensOut) {}
