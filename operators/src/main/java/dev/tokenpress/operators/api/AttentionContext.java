package dev.tokenpress.operators.api;

/**
 * What an operator that rewrites attention after the softmax ({@link
 * TokenOperator#rewriteAttention}) sees: the per-head probabilities of some query rows of LM layer
 * {@link #layer()} over the layer's keys, which it may change in place. The runtime then computes
 * those rows' attention output from the changed probabilities ({@code out = A'·V}) instead of the
 * unchanged ones, so the change is exact, not a bias approximation.
 *
 * <p>In prefill ({@link #step()} {@code == -1}), {@code probs} is {@code [queryRows.length, heads,
 * keys]} for the layout rows {@link #queryRows()}; in decode step {@code step} it is {@code [1,
 * heads, keys]} for the step's token. Every {@code (row, head)} sums to 1 and includes the causal
 * mask and every operator's additive bias.
 *
 * @param shape the model
 * @param layer 0-based LM layer
 * @param step -1 in prefill, else the 0-based decode step
 * @param layout prefill: the rows present at this layer; decode: null
 * @param queryRows prefill: the layout rows of {@code probs}, ascending; decode: empty
 * @param keyTokenIndices the original token index of every key (cache entry) of the layer
 * @param heads query heads ({@link ModelShape#lmHeads()})
 * @param probs the probabilities, row-major, changed in place
 * @param seed the per-record seed
 */
public record AttentionContext(
    ModelShape shape,
    int layer,
    int step,
    SequenceLayout layout,
    int[] queryRows,
    int[] keyTokenIndices,
    int heads,
    float[] probs,
    long seed) {

  /** Checks the shapes. */
  public AttentionContext {
    if (shape == null || queryRows == null || keyTokenIndices == null || probs == null) {
      throw new IllegalArgumentException(
          "shape, queryRows, keyTokenIndices and probs must not be null");
    }
    int rows = step < 0 ? queryRows.length : 1;
    if (step < 0 && layout == null) {
      throw new IllegalArgumentException("a prefill attention context needs the layout");
    }
    if ((long) rows * heads * keyTokenIndices.length != probs.length) {
      throw new IllegalArgumentException(
          "probs has "
              + probs.length
              + " values, expected "
              + rows
              + " rows x "
              + heads
              + " heads x "
              + keyTokenIndices.length
              + " keys");
    }
  }

  /** Number of query rows in {@link #probs()}. */
  public int rows() {
    return step < 0 ? queryRows.length : 1;
  }

  /** Number of keys. */
  public int keys() {
    return keyTokenIndices.length;
  }

  /** Offset of {@code (row, head)} in {@link #probs()}. */
  public int offset(int row, int head) {
    return (row * heads + head) * keyTokenIndices.length;
  }
}
