package dev.tokenpress.operators.kv;

import java.util.Arrays;
import java.util.List;

/**
 * The KV cache of one sequence: one {@link LayerKvCache} per decoder layer (ragged lengths
 * allowed), plus the decode state — the original token index and the position id the next generated
 * token gets.
 *
 * <p>Not thread-safe; a cache belongs to one generation.
 */
public final class KvCache {
  private final KvLayout layout;
  private final LayerKvCache[] layers;
  private int nextTokenIndex;
  private int nextPosition;

  public KvCache(int numLayers, KvLayout layout, KvCodec appendCodec) {
    if (numLayers < 1) {
      throw new IllegalArgumentException("numLayers must be >= 1, found " + numLayers);
    }
    this.layout = layout;
    this.layers = new LayerKvCache[numLayers];
    for (int i = 0; i < numLayers; i++) {
      layers[i] = new LayerKvCache(layout, appendCodec);
    }
  }

  private KvCache(KvLayout layout, LayerKvCache[] layers, int nextTokenIndex, int nextPosition) {
    this.layout = layout;
    this.layers = layers;
    this.nextTokenIndex = nextTokenIndex;
    this.nextPosition = nextPosition;
  }

  /**
   * A cache stored as chunks ({@link LayerKvCache#chunks()} of every layer, read back), each layer
   * rebuilt by {@link LayerKvCache#fromChunks} without re-quantising. The layout comes from the
   * chunks' shapes ({@code [rows, kv_heads, head_dim]}, or {@code [rows, 1, head_dim]} for KV head
   * g of {@code kv_heads} = largest g + 1 when no chunk holds every head); the next token index is
   * one past the largest token index stored (the stored form does not keep it).
   *
   * @param layerChunks the chunks of layer 0, 1, ... (a layer may have none: it is empty)
   * @param compressions per layer what a KV-quantising operator recorded, or null (the list or an
   *     element)
   * @param nextPosition the position id the next generated token gets
   * @throws IllegalArgumentException naming the layer, and the entry and KV head or the chunk at
   *     fault
   */
  public static KvCache fromChunks(
      KvCodec appendCodec,
      List<List<KvChunk>> layerChunks,
      List<KvCompressionInfo> compressions,
      int nextPosition) {
    if (layerChunks.isEmpty()) {
      throw new IllegalArgumentException(
          "a KV cache needs at least one layer, found no layer chunks");
    }
    if (compressions != null && compressions.size() != layerChunks.size()) {
      throw new IllegalArgumentException(
          layerChunks.size()
              + " layers of chunks but "
              + compressions.size()
              + " compression records");
    }
    KvLayout layout = layoutOf(layerChunks);
    LayerKvCache[] layers = new LayerKvCache[layerChunks.size()];
    int nextToken = 0;
    for (int l = 0; l < layers.length; l++) {
      try {
        layers[l] =
            LayerKvCache.fromChunks(
                layout,
                appendCodec,
                layerChunks.get(l),
                compressions == null ? null : compressions.get(l));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("layer " + l + ": " + e.getMessage(), e);
      }
      for (int t : layers[l].tokenIndices()) {
        nextToken = Math.max(nextToken, t + 1);
      }
    }
    return new KvCache(layout, layers, nextToken, nextPosition);
  }

  private static KvLayout layoutOf(List<List<KvChunk>> layerChunks) {
    int heads = -1;
    int maxHead = -1;
    int headDim = -1;
    for (int l = 0; l < layerChunks.size(); l++) {
      for (KvChunk c : layerChunks.get(l)) {
        int[] shape = c.k().shape();
        if (shape.length != 3
            || (headDim >= 0 && shape[2] != headDim)
            || (c.kvHead() < 0 && heads >= 0 && shape[1] != heads)) {
          throw new IllegalArgumentException(
              "layer "
                  + l
                  + ": chunk "
                  + c
                  + " has shape "
                  + Arrays.toString(shape)
                  + "; all chunks must be [rows, kv_heads, head_dim] (or [rows, 1,"
                  + " head_dim] for one KV head) of one layout"
                  + (headDim < 0 ? "" : ", head_dim " + headDim)
                  + (heads < 0 ? "" : ", kv_heads " + heads));
        }
        headDim = shape[2];
        if (c.kvHead() < 0) {
          heads = shape[1];
        } else {
          maxHead = Math.max(maxHead, c.kvHead());
        }
      }
    }
    if (headDim < 0) {
      throw new IllegalArgumentException(
          "no layer has a chunk: the layout of the cache is unknown");
    }
    return new KvLayout(heads < 0 ? maxHead + 1 : heads, headDim);
  }

  public KvLayout layout() {
    return layout;
  }

  public int numLayers() {
    return layers.length;
  }

  public LayerKvCache layer(int i) {
    return layers[i];
  }

  /** Original token index the next appended token gets (its index in the full sequence). */
  public int nextTokenIndex() {
    return nextTokenIndex;
  }

  /** Position id the next generated token gets. */
  public int nextPosition() {
    return nextPosition;
  }

  /** Advances the decode state after tokens were appended to every layer. */
  public void advance(int nextTokenIndex, int nextPosition) {
    if (nextTokenIndex < this.nextTokenIndex) {
      throw new IllegalArgumentException(
          "token index cannot go back: " + nextTokenIndex + " < " + this.nextTokenIndex);
    }
    this.nextTokenIndex = nextTokenIndex;
    this.nextPosition = nextPosition;
  }

  /** Stored K and V bytes over all layers. */
  public long storedBytes() {
    long b = 0;
    for (LayerKvCache l : layers) {
      b += l.storedBytes();
    }
    return b;
  }

  /** Entries per layer. */
  public int[] lengths() {
    int[] out = new int[layers.length];
    for (int i = 0; i < layers.length; i++) {
      out[i] = layers[i].length();
    }
    return out;
  }

  @Override
  public String toString() {
    return "KvCache(layers="
        + layers.length
        + ", "
        + layout
        + ", nextPosition="
        + nextPosition
        + ")";
  }
}
