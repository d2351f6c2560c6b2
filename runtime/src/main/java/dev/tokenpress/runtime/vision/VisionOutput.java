package dev.tokenpress.runtime.vision;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * The projected visual tokens of one image, plus what was measured on the way.
 *
 * <p>{@code features} is {@code [tokens, dim]} row-major float32 (LM embedding width); {@code
 * clsAttention} holds the CLS rows (over the current ViT tokens) a plan asked for; {@code
 * tokensPerLayer[ℓ]} the tokens ViT layer ℓ ran on; {@code flops} the analytic FLOPs (2 per
 * multiply-add) of the patch embedding, the layers with their actual token counts, and the
 * projector.
 */
public final class VisionOutput {
  private final float[] features;
  private final int tokens;
  private final int dim;
  private final Map<Integer, float[]> clsAttention;
  private final int[] tokensPerLayer;
  private final long flops;
  private final double millis;

  VisionOutput(
      float[] features,
      int tokens,
      int dim,
      Map<Integer, float[]> clsAttention,
      int[] tokensPerLayer,
      long flops,
      double millis) {
    if (features.length != tokens * dim) {
      throw new IllegalArgumentException(
          "features has " + features.length + " values, expected " + tokens + "x" + dim);
    }
    this.features = features;
    this.tokens = tokens;
    this.dim = dim;
    this.clsAttention = Collections.unmodifiableMap(new TreeMap<>(clsAttention));
    this.tokensPerLayer = tokensPerLayer.clone();
    this.flops = flops;
    this.millis = millis;
  }

  public int tokens() {
    return tokens;
  }

  public int dim() {
    return dim;
  }

  /** A copy of the {@code [tokens, dim]} features. */
  public float[] features() {
    return features.clone();
  }

  /** Row {@code t} of the features (a copy). */
  public float[] token(int t) {
    float[] r = new float[dim];
    System.arraycopy(features, t * dim, r, 0, dim);
    return r;
  }

  /**
   * CLS attention rows by layer (copies are the caller's business: arrays are not shared
   * elsewhere).
   */
  public Map<Integer, float[]> clsAttention() {
    return clsAttention;
  }

  public int[] tokensPerLayer() {
    return tokensPerLayer.clone();
  }

  public long flops() {
    return flops;
  }

  public double millis() {
    return millis;
  }
}
