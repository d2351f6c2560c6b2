package dev.tokenpress.operators.kv;

/**
 * Storage precision of a KV-cache entry. Every entry of a {@link LayerKvCache} carries one; a
 * cache may mix precisions (mixed-precision schemes such as ZipVL keep important tokens wider).
 *
 * <p>Only the float codecs exist today. The integer precisions of the ZipCache scheme (keys
 * quantized per channel, values per token after channel scaling) plug in as further constants
 * with their own {@link KvCodec}; nothing else in the cache or the kernels needs to change.
 */
public enum KvPrecision {
    FP32(32),
    FP16(16);

    private final int bits;

    KvPrecision(int bits) {
        this.bits = bits;
    }

    /** Bits per stored element (before any group metadata). */
    public int bits() {
        return bits;
    }
}
