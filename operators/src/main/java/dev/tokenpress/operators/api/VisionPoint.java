package dev.tokenpress.operators.api;

/**
 * Where inside a ViT layer an operator's {@link Hook#VISION_LAYER} callback runs ({@link
 * TokenOperator#visionPoint()}).
 */
public enum VisionPoint {
  /**
   * After the layer's attention, before its output projection, residual and MLP (ToMe). The
   * reduction is applied to the residual stream and the attention output alike, which equals
   * reducing the post-attention residual stream exactly (only row-wise affine maps lie between).
   */
  AFTER_ATTENTION,
  /**
   * After the whole layer (MLP included), before the next layer's {@code layer_norm1} (MustDrop
   * stage A).
   */
  AFTER_LAYER
}
