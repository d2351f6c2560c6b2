package dev.tokenpress.spark;

import dev.tokenpress.operators.kv.KvCodecs;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvPrecision;
import java.util.List;
import java.util.Objects;

/**
 * One LM layer of a record's KV cache as float32: keys and values {@code [T, H_kv, D]} in C order
 * (token-major, as stored), with each entry's original token index and position id, and, when
 * read from a job's output, the stored chunks ({@link #chunks()}: codes and quantisation metadata).
 */
public final class KvLayer {
  private final int layer;
  private final float[] k;
  private final int[] kShape;
  private final float[] v;
  private final int[] vShape;
  private final int[] tokenIndex;
  private final int[] position;
  private final KvCompressionInfo compression;
  private final int trailingFloat;
  private final List<KvStoredChunk> chunks;

  /** Takes ownership of the arrays; no compression record, no trailing float entries counted. */
  public KvLayer(int layer, float[] k, int[] kShape, float[] v, int[] vShape, int[] tokenIndex, int[] position) {
    this(layer, k, kShape, v, vShape, tokenIndex, position, null, 0);
  }

  /**
   * Takes ownership of the arrays.
   *
   * @param compression what a KV-quantising operator decided for the layer (column {@code compression}), or null
   * @param trailingFloat entries at the end of the layer still in a float precision (column {@code trailing_float})
   */
  public KvLayer(int layer, float[] k, int[] kShape, float[] v, int[] vShape, int[] tokenIndex, int[] position,
                 KvCompressionInfo compression, int trailingFloat) {
    this(layer, k, kShape, v, vShape, tokenIndex, position, compression, trailingFloat, List.of());
  }

  /**
   * Takes ownership of the arrays.
   *
   * @param chunks the layer's chunks in stored form (empty when unknown); their entries cover the layer
   */
  public KvLayer(int layer, float[] k, int[] kShape, float[] v, int[] vShape, int[] tokenIndex, int[] position,
                 KvCompressionInfo compression, int trailingFloat, List<KvStoredChunk> chunks) {
    this.chunks = List.copyOf(Objects.requireNonNull(chunks, "chunks"));
    this.layer = layer;
    this.k = Objects.requireNonNull(k, "k");
    this.kShape = Objects.requireNonNull(kShape, "kShape");
    this.v = Objects.requireNonNull(v, "v");
    this.vShape = Objects.requireNonNull(vShape, "vShape");
    this.tokenIndex = Objects.requireNonNull(tokenIndex, "tokenIndex");
    this.position = Objects.requireNonNull(position, "position");
    this.compression = compression;
    this.trailingFloat = trailingFloat;
    if (count(kShape) != k.length || count(vShape) != v.length) {
      throw new IllegalArgumentException("layer " + layer + ": k/v lengths do not match their shapes");
    }
  }

  private static long count(int[] shape) {
    long n = 1;
    for (int d : shape) {
      n *= d;
    }
    return n;
  }

  public int layer() {
    return layer;
  }

  /** Not copied: do not modify. */
  public float[] k() {
    return k;
  }

  public int[] kShape() {
    return kShape.clone();
  }

  /** Not copied: do not modify. */
  public float[] v() {
    return v;
  }

  public int[] vShape() {
    return vShape.clone();
  }

  /** Entries (T). */
  public int length() {
    return tokenIndex.length;
  }

  /** Not copied: do not modify. */
  public int[] tokenIndex() {
    return tokenIndex;
  }

  /** Not copied: do not modify. */
  public int[] position() {
    return position;
  }

  /** What a KV-quantising operator (ZipVL) decided for this layer: τ, p, probe seed, bits; or null. */
  public KvCompressionInfo compression() {
    return compression;
  }

  /** Entries at the end of the layer still stored in a float precision (generated, not yet re-encoded). */
  public int trailingFloat() {
    return trailingFloat;
  }

  /** The layer's chunks in stored form, as in Parquet {@code kv_cache} rows; empty when not known. */
  public List<KvStoredChunk> chunks() {
    return chunks;
  }

  /**
   * The entries stored at the compression's {@code bits_high} (ZipVL's important tokens, apart
   * from the trailing float entries), ascending; for a per-KV-head cache the entries stored at
   * {@code bits_high} in at least one KV head (the union of the heads' sets); null without a
   * compression record or chunks.
   */
  public int[] importantEntries() {
    if (compression == null || chunks.isEmpty()) {
      return null;
    }
    int b = compression.bitsHigh();
    String dtype = KvCodecs.dtype(b == 16 ? KvPrecision.FP16 : KvPrecision.ofBits(b));
    int end = length() - trailingFloat;
    boolean[] high = new boolean[length()];
    int n = 0;
    for (KvStoredChunk c : chunks) {
      if (c.k().dtype().equals(dtype)) {
        for (int e : c.entries()) {
          if (e < end && !high[e]) {
            high[e] = true;
            n++;
          }
        }
      }
    }
    int[] out = new int[n];
    int i = 0;
    for (int e = 0; e < high.length; e++) {
      if (high[e]) {
        out[i++] = e;
      }
    }
    return out;
  }
}
