package dev.tokenpress.operators.api;

/**
 * What an operator sees at {@link Hook#PREFILL_AFTER} of LM layer {@link #layer()}: the rows that
 * went through that layer (after the earlier operators' drops) and the signals delivered at that
 * layer. A selection returned here removes rows from the hidden states entering layer {@code layer
 * + 1}; layers {@code <= layer} keep their full KV caches, so KV lengths become ragged across
 * layers.
 *
 * <p>Immutable; the runtime builds one per layer and operator call.
 *
 * @param shape the model
 * @param layer 0-based LM layer that just ran
 * @param layout the rows present at this layer
 * @param signals values of the requested signals delivered at this layer
 * @param seed the per-record seed (see {@link Seeds#recordSeed})
 */
public record PrefillLayerContext(
    ModelShape shape, int layer, SequenceLayout layout, SignalValues signals, long seed) {

  /** Validates the layer against the model. */
  public PrefillLayerContext {
    if (shape == null || layout == null || signals == null) {
      throw new IllegalArgumentException("shape, layout and signals must not be null");
    }
    if (layer < 0 || layer >= shape.lmLayers()) {
      throw new IllegalArgumentException(
          "layer must be in [0, lmLayers-1] = [0, " + (shape.lmLayers() - 1) + "], got " + layer);
    }
  }
}
