package dev.tokenpress.operators.api;

import dev.tokenpress.operators.kv.LayerKvCache;

/**
 * What an operator sees at {@link Hook#DECODE}: LM layer {@link #layer()} of decode step {@link
 * #step()}, after the new token's key and value were appended to the layer's cache. An operator may
 * return an additive bias over the {@code cache.length()} entries (the new token last); biases of
 * several operators add up. The cache must not be modified here.
 *
 * @param shape the model
 * @param layer 0-based LM layer
 * @param step 0-based decode step (step 0 feeds the first generated token)
 * @param cache the layer's cache, read-only by contract
 * @param seed the per-record seed
 */
public record DecodeContext(ModelShape shape, int layer, int step, LayerKvCache cache, long seed) {

  /** Rejects nulls and out-of-range layers. */
  public DecodeContext {
    if (shape == null || cache == null) {
      throw new IllegalArgumentException("shape and cache must not be null");
    }
    if (layer < 0 || layer >= shape.lmLayers()) {
      throw new IllegalArgumentException(
          "layer must be in [0, lmLayers-1] = [0, " + (shape.lmLayers() - 1) + "], got " + layer);
    }
  }
}
