package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.kv.KvPrecision;
import java.util.Arrays;

/**
 * One greedy generation over input embeddings (text tokens embedded by {@link TokenEmbedding}, or a
 * VLM sequence with projected visual tokens spliced in), with explicit position ids. Arrays are
 * copied on construction.
 */
public final class LmRequest {
  private final float[] inputEmbeds;
  private final int rows;
  private final int[] positions;
  private final int[] tokenIndices;
  private final int[] stopTokens;
  private final int maxNewTokens;
  private final KvPrecision kvPrecision;
  private final boolean recordLogits;

  /**
   * @param inputEmbeds {@code rows x hidden} row-major
   * @param positions position id of every row (usually {@code 0..rows-1})
   * @param stopTokens generation ends when one of these is chosen (not included in the output)
   * @param maxNewTokens generated tokens at most
   * @param kvPrecision precision new KV entries are stored in
   * @param recordLogits keep the logits of every step in the result (tests, parity checks)
   */
  public LmRequest(
      float[] inputEmbeds,
      int[] positions,
      int[] stopTokens,
      int maxNewTokens,
      KvPrecision kvPrecision,
      boolean recordLogits) {
    this(
        inputEmbeds,
        positions,
        sequentialPositions(positions.length),
        stopTokens,
        maxNewTokens,
        kvPrecision,
        recordLogits);
  }

  /**
   * As above, with the original token index of every row (its index in the uncompressed sequence,
   * e.g. {@code SequenceLayout.originalIndices()} after visual-token selection): strictly
   * ascending, stored with each KV entry; causality follows it.
   */
  public LmRequest(
      float[] inputEmbeds,
      int[] positions,
      int[] tokenIndices,
      int[] stopTokens,
      int maxNewTokens,
      KvPrecision kvPrecision,
      boolean recordLogits) {
    if (positions.length == 0) {
      throw new IllegalArgumentException("a request needs at least one input row");
    }
    if (inputEmbeds.length % positions.length != 0) {
      throw new IllegalArgumentException(
          "inputEmbeds has "
              + inputEmbeds.length
              + " floats, not a multiple of "
              + positions.length
              + " rows");
    }
    if (maxNewTokens < 0) {
      throw new IllegalArgumentException("maxNewTokens must be >= 0, found " + maxNewTokens);
    }
    if (tokenIndices.length != positions.length) {
      throw new IllegalArgumentException(
          "tokenIndices has " + tokenIndices.length + " entries, positions " + positions.length);
    }
    for (int i = 0; i < tokenIndices.length; i++) {
      if (tokenIndices[i] < 0 || (i > 0 && tokenIndices[i] <= tokenIndices[i - 1])) {
        throw new IllegalArgumentException(
            "tokenIndices must be non-negative and strictly ascending, found "
                + tokenIndices[i]
                + " at row "
                + i);
      }
      if (positions[i] < 0) {
        throw new IllegalArgumentException(
            "positions must be >= 0, found " + positions[i] + " at row " + i);
      }
    }
    this.inputEmbeds = inputEmbeds.clone();
    this.tokenIndices = tokenIndices.clone();
    this.rows = positions.length;
    this.positions = positions.clone();
    this.stopTokens = stopTokens.clone();
    this.maxNewTokens = maxNewTokens;
    this.kvPrecision = kvPrecision;
    this.recordLogits = recordLogits;
  }

  /** Positions {@code 0..n-1}. */
  public static int[] sequentialPositions(int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    return p;
  }

  public float[] inputEmbeds() {
    return inputEmbeds.clone();
  }

  float[] inputEmbedsShared() {
    return inputEmbeds;
  }

  public int rows() {
    return rows;
  }

  public int[] positions() {
    return positions.clone();
  }

  int[] positionsShared() {
    return positions;
  }

  /** Original token index of every row. */
  public int[] tokenIndices() {
    return tokenIndices.clone();
  }

  int[] tokenIndicesShared() {
    return tokenIndices;
  }

  public boolean isStop(int token) {
    for (int s : stopTokens) {
      if (s == token) {
        return true;
      }
    }
    return false;
  }

  public int[] stopTokens() {
    return stopTokens.clone();
  }

  public int maxNewTokens() {
    return maxNewTokens;
  }

  public KvPrecision kvPrecision() {
    return kvPrecision;
  }

  public boolean recordLogits() {
    return recordLogits;
  }

  @Override
  public String toString() {
    return "LmRequest(rows="
        + rows
        + ", stop="
        + Arrays.toString(stopTokens)
        + ", maxNewTokens="
        + maxNewTokens
        + ", kv="
        + kvPrecision
        + ")";
  }
}
