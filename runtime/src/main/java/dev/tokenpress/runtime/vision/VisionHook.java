package dev.tokenpress.runtime.vision;

import java.util.Set;

/**
 * What an operator may observe or change inside the ViT. The encoder computes a signal only when
 * a hook asks for it; with no hook the fastest graph chain runs.
 *
 * <p>Layer indices are 0-based ViT layers. The CLS attention of layer ℓ is the attention inside
 * layer ℓ: {@code softmax(q_CLS · k_j / sqrt(Dh))} over all tokens j (CLS included) per head,
 * averaged over heads, from the q and k of layer ℓ (after its {@code layer_norm1}).
 */
public interface VisionHook {
  /** Layers whose CLS attention row {@link #clsAttention} receives. */
  default Set<Integer> clsAttentionLayers() {
    return Set.of();
  }

  /** Layers after which {@link #afterLayer} may replace the token stream. */
  default Set<Integer> tokenLayers() {
    return Set.of();
  }

  /**
   * Layer {@code layer}'s head-averaged CLS attention, length T (index 0 = CLS to itself, then the
   * patches in their current order).
   */
  default void clsAttention(int layer, float[] row) {}

  /**
   * After layer {@code layer} (only for {@link #tokenLayers()}): the hidden states {@code [tokens, D]}
   * row-major. Return new hidden states {@code [T', D]} (row 0 must stay the CLS token; rows are
   * the tokens the next layers see) or {@code null} to keep them.
   */
  default float[] afterLayer(int layer, float[] hidden, int tokens) {
    return null;
  }
}
