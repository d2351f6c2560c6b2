package dev.tokenpress.operators.kv;

/**
 * Shape of one stored KV row: {@code numKvHeads} heads of {@code headDim} elements, stored head
 * after head ({@code width = numKvHeads * headDim}), the token-major layout the pre-attention
 * graphs emit.
 */
public record KvLayout(int numKvHeads, int headDim) {
  public KvLayout {
    if (numKvHeads < 1) {
      throw new IllegalArgumentException("numKvHeads must be >= 1, found " + numKvHeads);
    }
    if (headDim < 1) {
      throw new IllegalArgumentException("headDim must be >= 1, found " + headDim);
    }
  }

  /** Elements per row of K (and of V). */
  public int width() {
    return numKvHeads * headDim;
  }
}
