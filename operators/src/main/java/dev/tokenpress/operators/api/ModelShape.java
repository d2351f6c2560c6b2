package dev.tokenpress.operators.api;

import java.io.Serializable;

/**
 * The dimensions of a VLM that operators validate themselves against at plan start ({@link
 * TokenOperator#validate}). The runtime builds it from the model bundle's manifest.
 *
 * <p>Layers are numbered from 0 in both towers. For LLaVA-1.5 (CLIP ViT-L/14-336, Vicuna-7B):
 * {@code new ModelShape(24, 16, 24, 24, true, 22, 32, 32, 32, 4096)}.
 *
 * @param vitLayers number of ViT encoder layers in the checkpoint ({@code L} of the vision tower)
 * @param vitHeads attention heads per ViT layer
 * @param patchRows rows of the patch grid
 * @param patchCols columns of the patch grid
 * @param vitClsToken whether the ViT prepends a CLS token (CLIP yes; SigLIP no)
 * @param visionFeatureLayer 0-based ViT layer whose output feeds the projector; LLaVA's {@code
 *     vision_feature_layer = -2} is {@code vitLayers - 2} (HF {@code hidden_states[-2]} is the
 *     output of layer {@code L-2})
 * @param lmLayers number of decoder layers of the language model
 * @param lmHeads query heads per LM layer
 * @param lmKvHeads key/value heads per LM layer (GQA); divides {@code lmHeads}
 * @param lmHiddenSize hidden size of the language model
 * @param lmSinkDims the LM's visual-sink hidden dimensions (VAR's {@code D_sink}) as discovered
 *     from sample images and stored in the bundle manifest ({@code tokenpress var sinks}),
 *     ascending; null when they were never discovered, empty when the discovery found none
 */
public record ModelShape(
    int vitLayers,
    int vitHeads,
    int patchRows,
    int patchCols,
    boolean vitClsToken,
    int visionFeatureLayer,
    int lmLayers,
    int lmHeads,
    int lmKvHeads,
    int lmHiddenSize,
    java.util.List<Integer> lmSinkDims)
    implements Serializable {

  /** A shape whose sink dimensions were never discovered. */
  public ModelShape(
      int vitLayers,
      int vitHeads,
      int patchRows,
      int patchCols,
      boolean vitClsToken,
      int visionFeatureLayer,
      int lmLayers,
      int lmHeads,
      int lmKvHeads,
      int lmHiddenSize) {
    this(
        vitLayers,
        vitHeads,
        patchRows,
        patchCols,
        vitClsToken,
        visionFeatureLayer,
        lmLayers,
        lmHeads,
        lmKvHeads,
        lmHiddenSize,
        null);
  }

  /** Validates every field; messages name the field, the value and the allowed range. */
  public ModelShape {
    positive("vitLayers", vitLayers);
    positive("vitHeads", vitHeads);
    positive("patchRows", patchRows);
    positive("patchCols", patchCols);
    positive("lmLayers", lmLayers);
    positive("lmHeads", lmHeads);
    positive("lmKvHeads", lmKvHeads);
    positive("lmHiddenSize", lmHiddenSize);
    if (visionFeatureLayer < 0 || visionFeatureLayer >= vitLayers) {
      throw new IllegalArgumentException(
          "modelShape.visionFeatureLayer must be in [0, vitLayers-1] = [0, "
              + (vitLayers - 1)
              + "], got "
              + visionFeatureLayer);
    }
    if (lmHeads % lmKvHeads != 0) {
      throw new IllegalArgumentException(
          "modelShape.lmKvHeads must divide lmHeads=" + lmHeads + ", got " + lmKvHeads);
    }
    if (lmSinkDims != null) {
      lmSinkDims = java.util.List.copyOf(lmSinkDims);
      for (int d : lmSinkDims) {
        if (d < 0 || d >= lmHiddenSize) {
          throw new IllegalArgumentException(
              "modelShape.lmSinkDims must lie in [0, lmHiddenSize-1] = [0, "
                  + (lmHiddenSize - 1)
                  + "], got "
                  + lmSinkDims);
        }
      }
    }
    if ((long) patchRows * patchCols > Integer.MAX_VALUE / 2) {
      throw new IllegalArgumentException(
          "modelShape patch grid " + patchRows + "x" + patchCols + " is too large");
    }
  }

  private static void positive(String field, int v) {
    if (v < 1) {
      throw new IllegalArgumentException("modelShape." + field + " must be >= 1, got " + v);
    }
  }

  /** This shape with the given sink dimensions ({@link #lmSinkDims()}). */
  public ModelShape withLmSinkDims(java.util.List<Integer> dims) {
    return new ModelShape(
        vitLayers,
        vitHeads,
        patchRows,
        patchCols,
        vitClsToken,
        visionFeatureLayer,
        lmLayers,
        lmHeads,
        lmKvHeads,
        lmHiddenSize,
        dims);
  }

  /**
   * Number of patches, {@code patchRows * patchCols}; the number of visual tokens per image for
   * LLaVA-1.5.
   */
  public int numPatches() {
    return patchRows * patchCols;
  }

  /** Number of ViT tokens: patches plus the CLS token if there is one. */
  public int vitTokens() {
    return numPatches() + (vitClsToken ? 1 : 0);
  }
}
