package dev.tokenpress.operators.api;

/**
 * What an operator sees at {@link Hook#PREFILL} of LM layer {@link #layer()}: the rows about to run
 * through that layer and the requested signals of that layer. An operator may return an additive
 * attention bias {@code [rows, keys]} (row-major, {@code keys = cacheLength}: the layer's cache
 * entries, earlier entries first, then these rows) that is added to the causal mask of this layer's
 * attention; biases of several operators add up.
 *
 * @param shape the model
 * @param layer 0-based LM layer about to run
 * @param layout the rows present at this layer
 * @param cacheLength number of keys the layer attends over
 * @param signals values of the requested signals of this layer
 * @param seed the per-record seed
 */
public record PrefillContext(
    ModelShape shape,
    int layer,
    SequenceLayout layout,
    int cacheLength,
    SignalValues signals,
    long seed) {

  /** Validates the layer against the model. */
  public PrefillContext {
    if (shape == null || layout == null || signals == null) {
      throw new IllegalArgumentException("shape, layout and signals must not be null");
    }
    if (layer < 0 || layer >= shape.lmLayers()) {
      throw new IllegalArgumentException(
          "layer must be in [0, lmLayers-1] = [0, " + (shape.lmLayers() - 1) + "], got " + layer);
    }
    if (cacheLength < layout.length()) {
      throw new IllegalArgumentException(
          "cacheLength "
              + cacheLength
              + " is below the "
              + layout.length()
              + " rows of the layout");
    }
  }
}
