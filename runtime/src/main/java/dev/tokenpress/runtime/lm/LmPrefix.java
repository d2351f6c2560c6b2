package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.kv.LayerKvCache;

/**
 * The prefilled start of a sequence, shared by several generations that continue it with their own
 * rows ({@link LlamaRuntime#prefillPrefix}, {@link LlamaRuntime#generate(LmPrefix, LmRequest)}):
 * every layer's keys and values of the prefix rows in float32, as the prefill computed them, with
 * their token indices and positions. Causal attention makes these rows independent of what follows,
 * so a continuation that prefills its rows against them (one chunk with past keys and values) gets
 * the entries a prefill of the whole sequence gives, and its cache is built from the same float32
 * rows in the request's KV precision.
 *
 * <p>Immutable; safe to share between threads.
 */
public final class LmPrefix {
  private final float[][] keys;
  private final float[][] values;
  private final int[] tokenIndices;
  private final int[] positions;
  private final int nextTokenIndex;
  private final int nextPosition;
  private final long prefillNanos;

  LmPrefix(
      float[][] keys,
      float[][] values,
      int[] tokenIndices,
      int[] positions,
      int nextTokenIndex,
      int nextPosition,
      long prefillNanos) {
    this.keys = keys;
    this.values = values;
    this.tokenIndices = tokenIndices.clone();
    this.positions = positions.clone();
    this.nextTokenIndex = nextTokenIndex;
    this.nextPosition = nextPosition;
    this.prefillNanos = prefillNanos;
  }

  /** Number of prefix rows (every layer holds all of them: a prefix prefill drops none). */
  public int rows() {
    return tokenIndices.length;
  }

  /** Wall time of the prefix prefill. */
  public double prefillMs() {
    return prefillNanos / 1e6;
  }

  /** Original token index the first continuation row must exceed or equal. */
  public int nextTokenIndex() {
    return nextTokenIndex;
  }

  /** Copies layer {@code layer}'s float32 keys ({@code rows x kvWidth}) into {@code dst} from 0. */
  void copyKeys(int layer, float[] dst) {
    System.arraycopy(keys[layer], 0, dst, 0, keys[layer].length);
  }

  /** Copies layer {@code layer}'s float32 values into {@code dst} from 0. */
  void copyValues(int layer, float[] dst) {
    System.arraycopy(values[layer], 0, dst, 0, values[layer].length);
  }

  /**
   * Appends the prefix rows to {@code cache} (empty) in its append codec, as a prefill stores them.
   */
  void appendTo(LayerKvCache cache, int layer) {
    if (cache.length() != 0) {
      throw new IllegalStateException(
          "a prefix starts an empty cache; layer "
              + layer
              + " holds "
              + cache.length()
              + " entries");
    }
    cache.appendRows(keys[layer], 0, values[layer], 0, rows(), tokenIndices, positions, 0);
  }

  int nextPosition() {
    return nextPosition;
  }

  int layers() {
    return keys.length;
  }
}
