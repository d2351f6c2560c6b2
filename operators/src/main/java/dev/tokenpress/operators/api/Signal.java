package dev.tokenpress.operators.api;

import java.io.Serializable;

/**
 * A quantity an operator asks the runtime to compute ({@link TokenOperator#signals}). The runtime
 * computes a signal only when an active operator requests it, and hands its value to the
 * operator in the {@link SignalValues} of the context at {@link #deliveredAt()}.
 *
 * <p>Signals are value objects (records), usable as map keys; two operators asking for the same
 * signal get one computation. Each record documents the exact value and its shape. New kinds
 * (hidden states of LM layer ℓ for VAR, ViT keys of layer ℓ for ToMe, probe-row attention for
 * ZipVL) are added here as further records.
 */
public sealed interface Signal extends Serializable permits Signal.ClsAttention, Signal.QueryRowAttention {

    /** The hook whose context carries this signal's value. */
    Hook deliveredAt();

    /**
     * Checks that the model can provide this signal.
     *
     * @throws IllegalArgumentException naming the signal, the bad value and the allowed range
     */
    void validate(ModelShape shape);

    /**
     * CLS→patch attention of ViT layer {@code vitLayer} (0-based; HF {@code attentions[vitLayer]}).
     *
     * <p><b>Value</b>: a rank-1 {@link dev.tokenpress.operators.tensor.FloatTensor} of
     * {@link ModelShape#numPatches()} floats. Per head, the CLS query row's softmax over
     * <em>all</em> ViT tokens (CLS included) of {@code q·kᵀ/√d_head}; then the mean over heads;
     * then the CLS column is dropped, so entry {@code j} is patch {@code j} in row-major grid
     * order ({@code r * patchCols + c}). Entries sum to {@code 1 - mean_h p_h(CLS→CLS)}.
     * The runtime can compute it with
     * {@link dev.tokenpress.operators.tensor.Kernels#headMeanSoftmax} on the CLS row's logits.
     *
     * <p><b>Delivered</b> at {@link Hook#VISUAL_TOKENS}, all requested layers together. The
     * runtime computes it while it runs layer {@code vitLayer}; a layer above
     * {@link ModelShape#visionFeatureLayer()} needs at least that layer's pre-attention graph.
     */
    record ClsAttention(int vitLayer) implements Signal {
        /** Rejects negative layers. */
        public ClsAttention {
            if (vitLayer < 0) {
                throw new IllegalArgumentException("ClsAttention.vitLayer must be >= 0, got " + vitLayer);
            }
        }

        @Override
        public Hook deliveredAt() {
            return Hook.VISUAL_TOKENS;
        }

        @Override
        public void validate(ModelShape shape) {
            if (!shape.vitClsToken()) {
                throw new IllegalArgumentException("ClsAttention needs a ViT with a CLS token; this model has none");
            }
            if (vitLayer >= shape.vitLayers()) {
                throw new IllegalArgumentException("ClsAttention.vitLayer must be in [0, vitLayers-1] = [0, "
                        + (shape.vitLayers() - 1) + "], got " + vitLayer);
            }
        }
    }

    /**
     * Attention rows of chosen queries in LM layer {@code lmLayer} (0-based) during prefill.
     *
     * <p><b>Value</b>: a rank-2 {@link dev.tokenpress.operators.tensor.FloatTensor}
     * {@code [rows, keys]}, where {@code rows} are {@code rows.resolve(layout)} of the layout in
     * the context (in that order) and {@code keys = layout.length()}, i.e. every row present at
     * layer {@code lmLayer}. Per query head, the softmax over all keys of
     * {@code q·kᵀ/√d_head} with the causal mask (keys after the query get probability exactly
     * 0), post-RoPE, without any operator bias; then the mean over all {@link ModelShape#lmHeads()}
     * query heads (under GQA, each query head uses its group's key head). Each row sums to 1.
     *
     * <p><b>Delivered</b> at {@link Hook#PREFILL_AFTER} of layer {@code lmLayer}, i.e. before
     * the rows of that hook's selection are dropped.
     */
    record QueryRowAttention(int lmLayer, QueryRows rows) implements Signal {
        /** Rejects negative layers and null rows. */
        public QueryRowAttention {
            if (lmLayer < 0) {
                throw new IllegalArgumentException("QueryRowAttention.lmLayer must be >= 0, got " + lmLayer);
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
        public void validate(ModelShape shape) {
            if (lmLayer >= shape.lmLayers()) {
                throw new IllegalArgumentException("QueryRowAttention.lmLayer must be in [0, lmLayers-1] = [0, "
                        + (shape.lmLayers() - 1) + "], got " + lmLayer);
            }
        }
    }
}
