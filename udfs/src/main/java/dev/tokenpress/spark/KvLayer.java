package dev.tokenpress.spark;

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

  /** Takes ownership of the arrays. */
  public KvLayer(int layer, float[] k, int[] kShape, float[] v, int[] vShape, int[] tokenIndex, int[] position) {
    this.layer = layer;
    this.k = Objects.requireNonNull(k, "k");
    this.kShape = Objects.requireNonNull(kShape, "kShape");
    this.v = Objects.requireNonNull(v, "v");
    this.vShape = Objects.requireNonNull(vShape, "vShape");
    this.tokenIndex = Objects.requireNonNull(tokenIndex, "tokenIndex");
    this.position = Objects.requireNonNull(position, "position");
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
}
