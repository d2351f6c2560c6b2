/**
 * The LLaVA-1.5 vision tower (CLIP ViT) and projector as ONNX graphs built in Java.
 *
 * <p>{@link dev.tokenpress.runtime.vision.VisionGraphs} builds, from checkpoint weights: the patch
 * embedding (Conv, CLS, positions, {@code pre_layrnorm}); per ViT layer a pre-attention graph
 * ({@code layer_norm1} → fused q|k|v, heads split) and a post-attention graph ({@code out_proj} +
 * residual → {@code layer_norm2} → {@code fc1} → activation → {@code fc2} + residual); a generic
 * attention graph (optionally with an additive bias); the projector (CLS dropped for the {@code
 * default} strategy, {@code linear_1} → GELU(erf) → {@code linear_2}); the "cut between attentions"
 * merges (embed+pre_0, post_i+pre_i+1, post_last+projector) that halve the calls; and the fused
 * whole-tower graph. Layers past {@code vision_feature_layer} are never built.
 *
 * <p>{@link dev.tokenpress.runtime.vision.VisionEncoder} chains the split graphs with tensors kept
 * in ONNX Runtime, computes a layer's signals (CLS attention, head-mean keys, hidden states) in
 * Java only when a plan's {@link dev.tokenpress.operators.api.HookRunner} asks, and applies the
 * {@code VISION_LAYER} reductions (drop/merge inside the ViT, with the {@code log(size)} attention
 * bias of proportional attention). {@link dev.tokenpress.runtime.vision.VisionBundle} writes/reads
 * the bundle's {@code vision/} graphs and manifest section.
 */
package dev.tokenpress.runtime.vision;
