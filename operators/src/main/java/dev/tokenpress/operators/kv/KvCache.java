package dev.tokenpress.operators.kv;

/**
 * The KV cache of one sequence: one {@link LayerKvCache} per decoder layer (ragged lengths
 * allowed), plus the decode state — the original token index and the position id the next
 * generated token gets.
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
            throw new IllegalArgumentException("token index cannot go back: " + nextTokenIndex + " < " + this.nextTokenIndex);
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
        return "KvCache(layers=" + layers.length + ", " + layout + ", nextPosition=" + nextPosition + ")";
    }
}
