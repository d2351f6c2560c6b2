package dev.tokenpress.operators.api;

/**
 * What an operator sees at {@link Hook#VISION_LAYER} of ViT layer {@link #layer()}: the current ViT
 * sequence of {@link #tokens()} rows (row 0 the CLS token when the ViT has one, then the patch
 * tokens in representative order), their sizes, provenance and the requested signals of this layer.
 *
 * <p><b>Where.</b> At {@link #point()}, the operator's {@link TokenOperator#visionPoint()}: after
 * the layer's attention and before its MLP (ToMe's merge point; the reduction is applied to the
 * residual stream and to the attention output alike, which equals merging the post-attention
 * residual stream exactly), or after the whole layer. Later computation runs on the reduced rows.
 * The CLS row must stay row 0, alone. Signals of the layer were computed from its input rows; after
 * a reduction earlier in the same layer they arrive reduced (see {@link Signal}).
 *
 * <p>Immutable; the runtime builds one per layer and operator call.
 *
 * @param shape the model
 * @param layer 0-based ViT layer, in {@code [0, visionFeatureLayer]}
 * @param point where in the layer
 * @param sizes per row, the number of original patches it stands for (CLS: 1); length {@code
 *     tokens}
 * @param provenance the patches each patch row stands for (rows {@code 1..} when there is a CLS)
 * @param signals values of the requested signals of this layer
 * @param seed the per-record seed
 */
public record VisionLayerContext(
    ModelShape shape,
    int layer,
    VisionPoint point,
    float[] sizes,
    TokenProvenance provenance,
    SignalValues signals,
    long seed) {

  /** Validates the layer and the row counts. */
  public VisionLayerContext {
    if (shape == null || point == null || sizes == null || provenance == null || signals == null) {
      throw new IllegalArgumentException(
          "shape, point, sizes, provenance and signals must not be null");
    }
    if (layer < 0 || layer > shape.visionFeatureLayer()) {
      throw new IllegalArgumentException(
          "layer must be in [0, visionFeatureLayer] = [0, "
              + shape.visionFeatureLayer()
              + "], got "
              + layer);
    }
    sizes = sizes.clone();
    int cls = shape.vitClsToken() ? 1 : 0;
    if (provenance.count() + cls != sizes.length) {
      throw new IllegalArgumentException(
          "provenance has "
              + provenance.count()
              + " patch tokens, sizes has "
              + sizes.length
              + " rows");
    }
  }

  /** Number of rows of the current ViT sequence (CLS included). */
  public int tokens() {
    return sizes.length;
  }

  /** Size of row {@code r}. */
  public float size(int r) {
    return sizes[r];
  }

  /** A copy of the sizes. */
  @Override
  public float[] sizes() {
    return sizes.clone();
  }

  /** Rows in front of the patch tokens: 1 with a CLS token, else 0. */
  public int prefixRows() {
    return shape.vitClsToken() ? 1 : 0;
  }
}
