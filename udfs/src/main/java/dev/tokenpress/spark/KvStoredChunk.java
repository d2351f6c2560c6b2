package dev.tokenpress.spark;

import dev.tokenpress.operators.kv.KvTensor;
import java.util.Objects;

/**
 * One {@code kv_cache} chunk of a layer in its stored form: the layer entries its rows go to and
 * its K and V tensors with their quantisation metadata (codes, bits, scales, zeros, channel
 * scales; formats in {@code KvCodecs}). {@link KvTensor#dequantize()} gives its floats.
 *
 * @param entries the layer entry of each row, ascending
 * @param k the keys, {@code [rows, H_kv, D]}
 * @param v the values, {@code [rows, H_kv, D]}
 */
public record KvStoredChunk(int[] entries, KvTensor k, KvTensor v) {
  /** Rejects nulls and tensors whose row count differs from the entries'. */
  public KvStoredChunk {
    Objects.requireNonNull(entries, "entries");
    Objects.requireNonNull(k, "k");
    Objects.requireNonNull(v, "v");
    if (k.shape()[0] != entries.length || v.shape()[0] != entries.length) {
      throw new IllegalArgumentException("chunk of " + entries.length + " entries has k/v of " + k.shape()[0] + "/"
          + v.shape()[0] + " rows");
    }
  }
}
