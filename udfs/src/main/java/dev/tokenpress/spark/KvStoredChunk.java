package dev.tokenpress.spark;

import dev.tokenpress.operators.kv.KvTensor;
import java.util.Objects;

/**
 * One {@code kv_cache} chunk of a layer in its stored form: the layer entries its rows go to, the
 * KV head it holds, and its K and V tensors with their quantisation metadata (codes, bits, scales,
 * zeros, channel scales; formats in {@code KvCodecs}). {@link KvTensor#dequantize()} gives its floats.
 *
 * @param entries the layer entry of each row, ascending
 * @param kvHead -1 for a chunk of every KV head, g for a chunk of KV head g only (column {@code kv_head})
 * @param k the keys, {@code [rows, H_kv, D]} ({@code [rows, 1, D]} for one KV head)
 * @param v the values, same shape
 */
public record KvStoredChunk(int[] entries, int kvHead, KvTensor k, KvTensor v) {
  /** Rejects nulls, tensors whose row count differs from the entries', and one-head chunks of several heads. */
  public KvStoredChunk {
    Objects.requireNonNull(entries, "entries");
    Objects.requireNonNull(k, "k");
    Objects.requireNonNull(v, "v");
    if (k.shape()[0] != entries.length || v.shape()[0] != entries.length) {
      throw new IllegalArgumentException("chunk of " + entries.length + " entries has k/v of " + k.shape()[0] + "/"
          + v.shape()[0] + " rows");
    }
    if (kvHead < -1 || (kvHead >= 0 && (k.shape().length != 3 || k.shape()[1] != 1))) {
      throw new IllegalArgumentException("a chunk of kv_head " + kvHead + " must have k of shape [rows, 1, D], found "
          + java.util.Arrays.toString(k.shape()));
    }
  }

  /** A chunk of every KV head. */
  public KvStoredChunk(int[] entries, KvTensor k, KvTensor v) {
    this(entries, -1, k, v);
  }
}
