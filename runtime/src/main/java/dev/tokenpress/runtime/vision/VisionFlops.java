package dev.tokenpress.runtime.vision;

/**
 * Analytic FLOPs of the vision tower, 2 per multiply-add, counted the same way for every plan:
 * matrix products only (norms, softmax and activations are ignored as lower order).
 */
public final class VisionFlops {
  private VisionFlops() {}

  /** Patch embedding: a {@code (C·P·P) → D} product per patch. */
  public static long embedding(VisionConfig c) {
    return 2L * c.numPatches() * c.numChannels() * c.patchSize() * c.patchSize() * c.hiddenSize();
  }

  /** One ViT layer over {@code t} tokens: q/k/v/out projections, scores, weighted sum, MLP. */
  public static long layer(VisionConfig c, int t) {
    return layer(c, t, t);
  }

  /**
   * One ViT layer whose attention runs over {@code t} tokens and whose output projection and MLP
   * run over {@code tAfter} (fewer when an operator merged tokens between attention and MLP).
   */
  public static long layer(VisionConfig c, int t, int tAfter) {
    long d = c.hiddenSize();
    long proj = 2L * t * d * d * 3 + 2L * tAfter * d * d;
    long attn = 2L * t * t * d * 2;
    long mlp = 2L * tAfter * d * c.intermediateSize() * 2;
    return proj + attn + mlp;
  }

  /** Projector over {@code n} tokens (intermediate width = LM width, as in LLaVA-1.5). */
  public static long projector(VisionConfig c, int n) {
    long h = c.textHiddenSize();
    return 2L * n * (c.hiddenSize() * h + h * h);
  }

  public static long total(VisionConfig c, int[] tokensPerLayer, int projectedTokens) {
    return total(c, tokensPerLayer, tokensPerLayer, projectedTokens);
  }

  /** As {@link #total(VisionConfig, int[], int)} with per-layer MLP token counts. */
  public static long total(
      VisionConfig c, int[] tokensPerLayer, int[] mlpTokensPerLayer, int projectedTokens) {
    long f = embedding(c);
    for (int l = 0; l < tokensPerLayer.length; l++) {
      f += layer(c, tokensPerLayer[l], mlpTokensPerLayer[l]);
    }
    return f + projector(c, projectedTokens);
  }
}
