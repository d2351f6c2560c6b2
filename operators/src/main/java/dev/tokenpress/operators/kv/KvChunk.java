package dev.tokenpress.operators.kv;

import java.util.Arrays;

/**
 * A run of one layer's KV entries in one stored form: the payload of one Parquet {@code kv_cache}
 * row (per id, layer and chunk). {@link LayerKvCache#chunks()} gives a layer as chunks; a reader
 * puts row {@code i} of a chunk at entry {@code entries()[i]} of the layer, so the chunks of a
 * mixed-precision group (whose entries interleave) restore the original order.
 *
 * <p>Immutable: accessors return copies.
 */
public final class KvChunk {
  private final int[] entries;
  private final int[] tokenIndex;
  private final int[] position;
  private final KvPrecision precision;
  private final KvTensor k;
  private final KvTensor v;
  private final int kvHead;

  /** A chunk holding every KV head ({@link #kvHead()} -1). */
  KvChunk(
      int[] entries,
      int[] tokenIndex,
      int[] position,
      KvPrecision precision,
      KvTensor k,
      KvTensor v) {
    this(entries, tokenIndex, position, precision, k, v, -1);
  }

  /**
   * {@code kvHead} -1: every KV head; {@code g >= 0}: only KV head g (tensors of shape [rows, 1,
   * head_dim]).
   */
  KvChunk(
      int[] entries,
      int[] tokenIndex,
      int[] position,
      KvPrecision precision,
      KvTensor k,
      KvTensor v,
      int kvHead) {
    if (entries.length != k.rows()
        || tokenIndex.length != k.rows()
        || position.length != k.rows()
        || v.rows() != k.rows()) {
      throw new IllegalArgumentException(
          "chunk of "
              + k.rows()
              + " rows has "
              + entries.length
              + " entries, "
              + tokenIndex.length
              + " token indices, "
              + position.length
              + " positions, "
              + v.rows()
              + " value rows");
    }
    this.entries = entries;
    this.tokenIndex = tokenIndex;
    this.position = position;
    this.precision = precision;
    this.k = k;
    this.v = v;
    if (kvHead < -1 || (kvHead >= 0 && (k.shape().length != 3 || k.shape()[1] != 1))) {
      throw new IllegalArgumentException(
          "a chunk of KV head "
              + kvHead
              + " must have shape [rows, 1, head_dim], found "
              + Arrays.toString(k.shape()));
    }
    this.kvHead = kvHead;
  }

  /**
   * A chunk read back from its stored form (a Parquet {@code kv_cache} row; arrays are copied), for
   * {@link LayerKvCache#fromChunks}.
   *
   * @param entries the layer entry of each row, ascending, {@code >= 0}
   * @param precision must be the precision of both tensors' dtype
   * @param kvHead -1 for a chunk of every KV head, g for KV head g only (tensors {@code [rows, 1,
   *     head_dim]})
   * @throws IllegalArgumentException naming the field when the parts disagree
   */
  public static KvChunk of(
      int[] entries,
      int[] tokenIndex,
      int[] position,
      KvPrecision precision,
      KvTensor k,
      KvTensor v,
      int kvHead) {
    if (entries == null
        || tokenIndex == null
        || position == null
        || precision == null
        || k == null
        || v == null) {
      throw new IllegalArgumentException(
          "entries, tokenIndex, position, precision, k and v must not be null");
    }
    if (KvCodecs.precision(k.dtype()) != precision || KvCodecs.precision(v.dtype()) != precision) {
      throw new IllegalArgumentException(
          "precision "
              + precision
              + " does not match the dtypes k "
              + k.dtype()
              + ", v "
              + v.dtype());
    }
    if (!Arrays.equals(k.shape(), v.shape())) {
      throw new IllegalArgumentException(
          "k shape "
              + Arrays.toString(k.shape())
              + " and v shape "
              + Arrays.toString(v.shape())
              + " differ");
    }
    for (int i = 0; i < entries.length; i++) {
      if (entries[i] < 0 || (i > 0 && entries[i] <= entries[i - 1])) {
        throw new IllegalArgumentException(
            "entries must be ascending and >= 0, found "
                + entries[i]
                + (i > 0 ? " after " + entries[i - 1] : "")
                + " at row "
                + i);
      }
    }
    return new KvChunk(
        entries.clone(), tokenIndex.clone(), position.clone(), precision, k, v, kvHead);
  }

  /**
   * This chunk tagged as holding only KV head {@code g} (its tensors must be [rows, 1, head_dim]).
   */
  KvChunk ofKvHead(int g) {
    return new KvChunk(entries, tokenIndex, position, precision, k, v, g);
  }

  /**
   * The KV head this chunk holds (the Parquet {@code kv_head} column): -1 for a chunk of every KV
   * head (tensors {@code [rows, kv_heads, head_dim]}), {@code g >= 0} for a chunk of KV head g only
   * (tensors {@code [rows, 1, head_dim]}), as a per-head mixed-precision group exports. Every
   * (entry, KV head) pair of a layer is in exactly one chunk.
   */
  public int kvHead() {
    return kvHead;
  }

  public int rows() {
    return entries.length;
  }

  /** Index of each row among the layer's entries (ascending within a chunk). */
  public int[] entries() {
    return entries.clone();
  }

  /** Original token index of each row (the Parquet {@code token_index} column). */
  public int[] tokenIndex() {
    return tokenIndex.clone();
  }

  /** Position id of each row (the Parquet {@code position} column). */
  public int[] position() {
    return position.clone();
  }

  public KvPrecision precision() {
    return precision;
  }

  public KvTensor k() {
    return k;
  }

  public KvTensor v() {
    return v;
  }

  /** Same entries, KV head, token indices, positions, precision and stored tensors. */
  @Override
  public boolean equals(Object o) {
    return o instanceof KvChunk c
        && kvHead == c.kvHead
        && precision == c.precision
        && Arrays.equals(entries, c.entries)
        && Arrays.equals(tokenIndex, c.tokenIndex)
        && Arrays.equals(position, c.position)
        && k.equals(c.k)
        && v.equals(c.v);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * Arrays.hashCode(entries) + kvHead) + k.hashCode();
  }

  @Override
  public String toString() {
    return "KvChunk("
        + precision
        + (kvHead >= 0 ? ", kvHead=" + kvHead : "")
        + ", rows="
        + entries.length
        + ", entries="
        + (entries.length <= 8
            ? Arrays.toString(entries)
            : entries[0] + ".." + entries[entries.length - 1])
        + ")";
  }
}
