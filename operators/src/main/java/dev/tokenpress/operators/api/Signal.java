package dev.tokenpress.operators.api;

import java.io.Serializable;

/**
 * A quantity an operator asks the runtime to compute ({@link TokenOperator#signals}). The runtime
 * computes a signal only when an active operator requests it, and hands its value to the operator
 * in the {@link SignalValues} of the context at {@link #deliveredAt()}.
 *
 * <p>Signals are value objects (records), usable as map keys; two operators asking for the same
 * signal get one computation. Each record documents the exact value and its shape. Every attention
 * probability is computed by one kernel, {@link
 * dev.tokenpress.operators.tensor.Kernels#softmax(float[], int, int, float[], int)} per head
 * followed by {@link dev.tokenpress.operators.tensor.Kernels#meanOverHeads} for head means ({@link
 * dev.tokenpress.operators.tensor.Kernels#headMeanSoftmax} is the two together).
 *
 * <p>When several operators act at the same hook and layer, each gets the signals of the sequence
 * as the operators before it left it: at {@link Hook#PREFILL_AFTER} the runtime recomputes the rows
 * over the remaining rows (keys of dropped rows are left out, rows are not renormalised); at {@link
 * Hook#VISION_LAYER} the values are reduced with the earlier reduction (hidden states and keys: the
 * weighted mean of a group; attention: the sum over a group).
 */
public sealed interface Signal extends Serializable
    permits Signal.ClsAttention,
        Signal.QueryRowAttention,
        Signal.QueryRowHeadAttention,
        Signal.LmHiddenStates,
        Signal.LmQueries,
        Signal.LmKeys,
        Signal.VitClsAttention,
        Signal.VitClsHeadAttention,
        Signal.VitKeys,
        Signal.VitHiddenStates,
        Signal.VitLayerOutput,
        Signal.VitClsLogits {

  /** The hook whose context carries this signal's value. */
  Hook deliveredAt();

  /** The layer (ViT or LM, as the record says) the signal is computed at. */
  int layer();

  /**
   * Checks that the model can provide this signal.
   *
   * @throws IllegalArgumentException naming the signal, the bad value and the allowed range
   */
  void validate(ModelShape shape);

  /**
   * CLS→patch attention of ViT layer {@code vitLayer} (0-based; HF {@code attentions[vitLayer]}).
   *
   * <p><b>Value</b>: a rank-1 {@link dev.tokenpress.operators.tensor.FloatTensor} of {@link
   * ModelShape#numPatches()} floats. Per head, the CLS query row's softmax over <em>all</em> ViT
   * tokens (CLS included) of {@code q·kᵀ/√d_head}; then the mean over heads; then the CLS column is
   * dropped, so entry {@code j} is patch {@code j} in row-major grid order ({@code r * patchCols +
   * c}). Entries sum to {@code 1 - mean_h p_h(CLS→CLS)}. The runtime can compute it with {@link
   * dev.tokenpress.operators.tensor.Kernels#headMeanSoftmax} on the CLS row's logits.
   *
   * <p><b>Delivered</b> at {@link Hook#VISUAL_TOKENS}, all requested layers together. The runtime
   * computes it while it runs layer {@code vitLayer}; a layer above {@link
   * ModelShape#visionFeatureLayer()} needs at least that layer's pre-attention graph. If {@link
   * Hook#VISION_LAYER} operators merged tokens before that layer, a merged token's value sits at
   * its representative (smallest) patch and the other patches it stands for get 0; with
   * proportional attention the logits include the {@code log(size)} bias.
   */
  record ClsAttention(int vitLayer) implements Signal {
    /** Rejects negative layers. */
    public ClsAttention {
      if (vitLayer < 0) {
        throw new IllegalArgumentException("ClsAttention.vitLayer must be >= 0, got " + vitLayer);
      }
    }

    @Override
    public int layer() {
      return vitLayer;
    }

    @Override
    public Hook deliveredAt() {
      return Hook.VISUAL_TOKENS;
    }

    @Override
    public void validate(ModelShape shape) {
      if (!shape.vitClsToken()) {
        throw new IllegalArgumentException(
            "ClsAttention needs a ViT with a CLS token; this model has none");
      }
      if (vitLayer >= shape.vitLayers()) {
        throw new IllegalArgumentException(
            "ClsAttention.vitLayer must be in [0, vitLayers-1] = [0, "
                + (shape.vitLayers() - 1)
                + "], got "
                + vitLayer);
      }
    }
  }

  /**
   * Attention rows of chosen queries in LM layer {@code lmLayer} (0-based) during prefill.
   *
   * <p><b>Value</b>: a rank-2 {@link dev.tokenpress.operators.tensor.FloatTensor} {@code [rows,
   * keys]}, where {@code rows} are {@code rows.resolve(layout)} of the layout in the context (in
   * that order) and {@code keys = layout.length()}, i.e. every row present at layer {@code
   * lmLayer}. Per query head, the softmax over all keys of {@code q·kᵀ/√d_head} with the causal
   * mask (keys after the query get probability exactly 0), post-RoPE, without any operator bias;
   * then the mean over all {@link ModelShape#lmHeads()} query heads (under GQA, each query head
   * uses its group's key head). Each row sums to 1.
   *
   * <p><b>Delivered</b> at {@link Hook#PREFILL_AFTER} of layer {@code lmLayer}, i.e. before the
   * rows of that hook's selection are dropped.
   */
  record QueryRowAttention(int lmLayer, QueryRows rows) implements Signal {
    /** Rejects negative layers and null rows. */
    public QueryRowAttention {
      if (lmLayer < 0) {
        throw new IllegalArgumentException(
            "QueryRowAttention.lmLayer must be >= 0, got " + lmLayer);
      }
      if (rows == null) {
        throw new IllegalArgumentException("QueryRowAttention.rows must not be null");
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.PREFILL_AFTER;
    }

    @Override
    public int layer() {
      return lmLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkLm("QueryRowAttention", lmLayer, shape);
    }
  }

  /**
   * Per-head attention rows of chosen queries in LM layer {@code lmLayer} during prefill: as {@link
   * QueryRowAttention} without the mean over heads.
   *
   * <p><b>Value</b>: rank 3 {@code [rows, lmHeads, keys]}; each {@code (row, head)} sums to 1.
   * <b>Delivered</b> at {@link Hook#PREFILL_AFTER} of layer {@code lmLayer}.
   */
  record QueryRowHeadAttention(int lmLayer, QueryRows rows) implements Signal {
    /** Rejects negative layers and null rows. */
    public QueryRowHeadAttention {
      if (lmLayer < 0) {
        throw new IllegalArgumentException(
            "QueryRowHeadAttention.lmLayer must be >= 0, got " + lmLayer);
      }
      if (rows == null) {
        throw new IllegalArgumentException("QueryRowHeadAttention.rows must not be null");
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.PREFILL_AFTER;
    }

    @Override
    public int layer() {
      return lmLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkLm("QueryRowHeadAttention", lmLayer, shape);
    }
  }

  /**
   * The LM hidden states at the input of layer {@code lmLayer} during prefill (layer 0: the input
   * embeddings), for the rows present at that layer.
   *
   * <p><b>Value</b>: rank 2 {@code [rows, lmHiddenSize]}. <b>Delivered</b> at {@link Hook#PREFILL}
   * of layer {@code lmLayer}.
   */
  record LmHiddenStates(int lmLayer) implements Signal {
    /** Rejects negative layers. */
    public LmHiddenStates {
      if (lmLayer < 0) {
        throw new IllegalArgumentException("LmHiddenStates.lmLayer must be >= 0, got " + lmLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.PREFILL;
    }

    @Override
    public int layer() {
      return lmLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkLm("LmHiddenStates", lmLayer, shape);
    }
  }

  /**
   * The queries of LM layer {@code lmLayer} during prefill, after the projection and RoPE: the
   * input of attention, for operators that compute their own attention rows (ZipVL's probes) with
   * {@link dev.tokenpress.operators.kernels.AttentionRows}.
   *
   * <p><b>Value</b>: rank 2 {@code [rows, lmHeads * headDim]} for the rows of the layout in the
   * context, head after head. <b>Delivered</b> at {@link Hook#PREFILL} of {@code lmLayer}.
   */
  record LmQueries(int lmLayer) implements Signal {
    /** Rejects negative layers. */
    public LmQueries {
      if (lmLayer < 0) {
        throw new IllegalArgumentException("LmQueries.lmLayer must be >= 0, got " + lmLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.PREFILL;
    }

    @Override
    public int layer() {
      return lmLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkLm("LmQueries", lmLayer, shape);
    }
  }

  /**
   * The keys of LM layer {@code lmLayer} during prefill, after the projection and RoPE, as the
   * layer's cache holds them (one prefill chunk: the keys of the layout's rows).
   *
   * <p><b>Value</b>: rank 2 {@code [rows, lmKvHeads * headDim]} for the rows of the layout in the
   * context, KV head after KV head. <b>Delivered</b> at {@link Hook#PREFILL} of {@code lmLayer}.
   */
  record LmKeys(int lmLayer) implements Signal {
    /** Rejects negative layers. */
    public LmKeys {
      if (lmLayer < 0) {
        throw new IllegalArgumentException("LmKeys.lmLayer must be >= 0, got " + lmLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.PREFILL;
    }

    @Override
    public int layer() {
      return lmLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkLm("LmKeys", lmLayer, shape);
    }
  }

  /**
   * CLS attention of ViT layer {@code vitLayer} over the <em>current</em> ViT sequence (after the
   * merges and drops of earlier layers): per head the CLS query's softmax of {@code q·kᵀ/√d_head}
   * (plus {@code log(size)} of each key under proportional attention), then the mean over heads.
   *
   * <p><b>Value</b>: rank 1 {@code [T]}, index 0 = CLS→CLS, then the current patch tokens in order;
   * sums to 1. <b>Delivered</b> at {@link Hook#VISION_LAYER} of {@code vitLayer}.
   */
  record VitClsAttention(int vitLayer) implements Signal {
    /** Rejects negative layers. */
    public VitClsAttention {
      if (vitLayer < 0) {
        throw new IllegalArgumentException(
            "VitClsAttention.vitLayer must be >= 0, got " + vitLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.VISION_LAYER;
    }

    @Override
    public int layer() {
      return vitLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      if (!shape.vitClsToken()) {
        throw new IllegalArgumentException(
            "VitClsAttention needs a ViT with a CLS token; this model has none");
      }
      checkVit("VitClsAttention", vitLayer, shape);
    }
  }

  /**
   * {@link VitClsAttention} before the mean over heads: per head the CLS query's softmax over the
   * current ViT sequence (VMTC's {@code importance_heads: "max"} takes the maximum over heads).
   *
   * <p><b>Value</b>: rank 2 {@code [heads, T]}, per head index 0 = CLS→CLS, then the current patch
   * tokens in order; each row sums to 1, and the mean over heads is {@link VitClsAttention}.
   * <b>Delivered</b> at {@link Hook#VISION_LAYER} of {@code vitLayer}.
   */
  record VitClsHeadAttention(int vitLayer) implements Signal {
    /** Rejects negative layers. */
    public VitClsHeadAttention {
      if (vitLayer < 0) {
        throw new IllegalArgumentException(
            "VitClsHeadAttention.vitLayer must be >= 0, got " + vitLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.VISION_LAYER;
    }

    @Override
    public int layer() {
      return vitLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      if (!shape.vitClsToken()) {
        throw new IllegalArgumentException(
            "VitClsHeadAttention needs a ViT with a CLS token; this model has none");
      }
      checkVit("VitClsHeadAttention", vitLayer, shape);
    }
  }

  /**
   * The pre-softmax CLS row of ViT layer {@code vitLayer} per head: {@code q_h(CLS)·k_h(j)/√d_head}
   * (plus {@code log(size)} of each key under proportional attention) over the current ViT
   * sequence, the logits {@link VitClsHeadAttention} is the per-head softmax of. Both of DAMRO's
   * ranking rules come from it: the sum over heads (LLaVA's full-width {@code q·kᵀ} without a head
   * split, up to the common factor {@code 1/√d_head}) and {@link
   * dev.tokenpress.operators.tensor.Kernels#headMeanSoftmax} (InstructBLIP's head mean).
   *
   * <p><b>Value</b>: rank 2 {@code [heads, T]}, per head index 0 = CLS→CLS, then the current patch
   * tokens in order. After an earlier reduction at the same layer a group's value is the
   * log-sum-exp of its members' (so that its softmax is the summed attention). <b>Delivered</b> at
   * {@link Hook#VISION_LAYER} of {@code vitLayer}.
   */
  record VitClsLogits(int vitLayer) implements Signal {
    /** Rejects negative layers. */
    public VitClsLogits {
      if (vitLayer < 0) {
        throw new IllegalArgumentException("VitClsLogits.vitLayer must be >= 0, got " + vitLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.VISION_LAYER;
    }

    @Override
    public int layer() {
      return vitLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      if (!shape.vitClsToken()) {
        throw new IllegalArgumentException(
            "VitClsLogits needs a ViT with a CLS token; this model has none");
      }
      checkVit("VitClsLogits", vitLayer, shape);
    }
  }

  /**
   * The keys of ViT layer {@code vitLayer} (after {@code layer_norm1} and the key projection),
   * averaged over heads: ToMe's similarity metric.
   *
   * <p><b>Value</b>: rank 2 {@code [T, headDim]} over the current ViT sequence (CLS first).
   * <b>Delivered</b> at {@link Hook#VISION_LAYER} of {@code vitLayer}.
   */
  record VitKeys(int vitLayer) implements Signal {
    /** Rejects negative layers. */
    public VitKeys {
      if (vitLayer < 0) {
        throw new IllegalArgumentException("VitKeys.vitLayer must be >= 0, got " + vitLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.VISION_LAYER;
    }

    @Override
    public int layer() {
      return vitLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkVit("VitKeys", vitLayer, shape);
    }
  }

  /**
   * The hidden states entering ViT layer {@code vitLayer} (the residual stream before its {@code
   * layer_norm1}).
   *
   * <p><b>Value</b>: rank 2 {@code [T, vitHiddenSize]} over the current ViT sequence (CLS first).
   * <b>Delivered</b> at {@link Hook#VISION_LAYER} of {@code vitLayer}.
   */
  record VitHiddenStates(int vitLayer) implements Signal {
    /** Rejects negative layers. */
    public VitHiddenStates {
      if (vitLayer < 0) {
        throw new IllegalArgumentException(
            "VitHiddenStates.vitLayer must be >= 0, got " + vitLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.VISION_LAYER;
    }

    @Override
    public int layer() {
      return vitLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkVit("VitHiddenStates", vitLayer, shape);
    }
  }

  /**
   * The hidden states leaving ViT layer {@code vitLayer} (after its MLP residual), i.e. the rows a
   * {@link VisionPoint#AFTER_LAYER} reduction of that layer applies to; for {@link
   * ModelShape#visionFeatureLayer()} the rows the projector takes (CLS included).
   *
   * <p><b>Value</b>: rank 2 {@code [T, vitHiddenSize]} over the ViT sequence at {@link
   * VisionPoint#AFTER_LAYER} of {@code vitLayer} (after the layer's {@link
   * VisionPoint#AFTER_ATTENTION} reductions; reduced by the earlier operators' reductions at {@code
   * AFTER_LAYER}), CLS first. <b>Delivered</b> at {@link Hook#VISION_LAYER} of {@code vitLayer}, to
   * operators acting {@link VisionPoint#AFTER_LAYER} only.
   */
  record VitLayerOutput(int vitLayer) implements Signal {
    /** Rejects negative layers. */
    public VitLayerOutput {
      if (vitLayer < 0) {
        throw new IllegalArgumentException("VitLayerOutput.vitLayer must be >= 0, got " + vitLayer);
      }
    }

    @Override
    public Hook deliveredAt() {
      return Hook.VISION_LAYER;
    }

    @Override
    public int layer() {
      return vitLayer;
    }

    @Override
    public void validate(ModelShape shape) {
      checkVit("VitLayerOutput", vitLayer, shape);
    }
  }

  private static void checkLm(String name, int layer, ModelShape shape) {
    if (layer >= shape.lmLayers()) {
      throw new IllegalArgumentException(
          name
              + ".lmLayer must be in [0, lmLayers-1] = [0, "
              + (shape.lmLayers() - 1)
              + "], got "
              + layer);
    }
  }

  private static void checkVit(String name, int layer, ModelShape shape) {
    if (layer > shape.visionFeatureLayer()) {
      throw new IllegalArgumentException(
          name
              + ".vitLayer must be in [0, visionFeatureLayer] = [0, "
              + shape.visionFeatureLayer()
              + "] (the ViT layers the model runs), got "
              + layer);
    }
  }
}
