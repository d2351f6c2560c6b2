package dev.tokenpress.spark;

import java.util.List;
import java.util.Objects;

/** One record's whole KV cache as float32, layer by layer (ragged: each layer has its own T). */
public final class KvCache {
  private final String id;
  private final int nextPosition;
  private final List<KvLayer> layers;

  public KvCache(String id, int nextPosition, List<KvLayer> layers) {
    this.id = Objects.requireNonNull(id, "id");
    this.nextPosition = nextPosition;
    this.layers = List.copyOf(layers);
  }

  public String id() {
    return id;
  }

  /** Position id of the next token to decode on top of this cache. */
  public int nextPosition() {
    return nextPosition;
  }

  /** Layers in ascending layer order. */
  public List<KvLayer> layers() {
    return layers;
  }

  public KvLayer layer(int layer) {
    for (KvLayer l : layers) {
      if (l.layer() == layer) {
        return l;
      }
    }
    throw new IllegalArgumentException("record " + id + " has no KV for layer " + layer);
  }
}
