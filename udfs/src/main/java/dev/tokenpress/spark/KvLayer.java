package dev.tokenpress.spark;

import dev.tokenpress.operators.kv.KvCompressionInfo;
import java.util.Objects;

/**
 * One LM layer of a record's KV cache as float32: keys and values {@code [T, H_kv, D]} in C order
 * (token-major, as stored), with each entry's original token index and position id.
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
}
