package dev.tokenpress.spark;

import java.util.Arrays;
import java.util.Objects;

/**
 * A run of KV entries of one LM layer that share one storage codec: keys and values as
 * {@code [H_kv, T, D]} tensors (T = entries in this chunk), the original token index and the
 * position id of every entry, and the quantisation metadata (null when stored as floats).
 * A layer's cache is the concatenation of its chunks in chunk order.
 */
public final class KvChunk {
  private final int layer;
  private final int chunk;
  private final TensorData k;
  private final TensorData v;
  private final KvQuant quant;
  private final int[] tokenIndex;
  private final int[] position;

  /** Takes ownership of the arrays; checks that K, V, token indices and positions agree on T. */
  public KvChunk(int layer, int chunk, TensorData k, TensorData v, KvQuant quant, int[] tokenIndex, int[] position) {
    this.layer = layer;
    this.chunk = chunk;
    this.k = Objects.requireNonNull(k, "k");
    this.v = Objects.requireNonNull(v, "v");
    this.quant = quant;
    this.tokenIndex = Objects.requireNonNull(tokenIndex, "tokenIndex");
    this.position = Objects.requireNonNull(position, "position");
    if (layer < 0 || chunk < 0) {
      throw new IllegalArgumentException("layer and chunk must be >= 0, got " + layer + ", " + chunk);
    }
    if (k.rank() != 3 || v.rank() != 3) {
      throw new IllegalArgumentException("k and v must be [H_kv, T, D], got " + k + " and " + v);
    }
    int t = k.dim(1);
    if (v.dim(1) != t || tokenIndex.length != t || position.length != t) {
      throw new IllegalArgumentException(
          "layer " + layer + " chunk " + chunk + ": k has " + t + " entries, v " + v.dim(1)
              + ", token_index " + tokenIndex.length + ", position " + position.length);
    }
    if (quant == null && (!k.dtype().isFloat() || !v.dtype().isFloat())) {
      throw new IllegalArgumentException(
          "layer " + layer + " chunk " + chunk + ": integer k/v need quantisation metadata");
    }
  }

  public int layer() {
    return layer;
  }

  public int chunk() {
    return chunk;
  }

  public TensorData k() {
    return k;
  }

  public TensorData v() {
    return v;
  }

  /** Null when k and v are stored as floats. */
  public KvQuant quant() {
    return quant;
  }

  /** Entries in this chunk. */
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

  /** Stored bytes of k, v and their quantisation metadata. */
  public long storedBytes() {
    long n = (long) k.data().length + v.data().length;
    if (quant != null) {
      n += quant.kScales().data().length + quant.vScales().data().length;
      n += quant.kZeros() == null ? 0 : quant.kZeros().data().length;
      n += quant.vZeros() == null ? 0 : quant.vZeros().data().length;
    }
    return n;
  }

  @Override
  public String toString() {
    return "KvChunk(layer=" + layer + ", chunk=" + chunk + ", k=" + k + ", v=" + v
        + ", quant=" + (quant == null ? "none" : quant.bits() + "bit") + ", tokens="
        + Arrays.toString(Arrays.copyOf(tokenIndex, Math.min(8, tokenIndex.length))) + ")";
  }
}
