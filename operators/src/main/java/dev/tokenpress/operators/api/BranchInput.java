package dev.tokenpress.operators.api;

import dev.tokenpress.operators.tensor.FloatTensor;

/**
 * The visual part of a second LM sequence an operator asks for at {@link Hook#BRANCH}: the runtime
 * builds {@code prefix + these visual tokens + suffix} (the same text as the main sequence), with
 * compact positions {@code 0..len-1}, runs it through the LM with its own KV cache, feeds it the
 * token the main sequence chose at every step, and hands its logits to the operator at {@link
 * Hook#LOGITS} ({@link LogitsContext#branchLogits()}).
 *
 * <p>The features are arbitrary rows of the LM's width: a subset of the record's visual tokens in
 * any order (DAMRO: the outlier tokens in score order) or features of another image (VCD).
 *
 * @param features {@code [k, lmHiddenSize]}, in the order they enter the branch; k may be 0
 * @param visualIndices for each row the visual index it came from (projector numbering), or -1 for
 *     a row that is not one of the record's visual tokens; recorded as provenance
 */
public record BranchInput(FloatTensor features, int[] visualIndices) {

  /** Checks shapes; copies the indices. */
  public BranchInput {
    if (features == null || visualIndices == null) {
      throw new IllegalArgumentException("features and visualIndices must not be null");
    }
    if (features.rank() != 2 || features.dim(0) != visualIndices.length) {
      throw new IllegalArgumentException(
          "branch features must be ["
              + visualIndices.length
              + ", dim] for "
              + visualIndices.length
              + " visual indices, got shape "
              + java.util.Arrays.toString(features.shape()));
    }
    visualIndices = visualIndices.clone();
  }

  /** Number of visual rows. */
  public int count() {
    return visualIndices.length;
  }

  /** The visual indices (copy). */
  @Override
  public int[] visualIndices() {
    return visualIndices.clone();
  }
}
