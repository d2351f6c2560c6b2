package dev.tokenpress.operators.kv;

/**
 * Storage precision of a KV-cache entry. Every entry of a {@link LayerKvCache} carries one; a cache
 * may mix precisions (mixed-precision schemes such as ZipVL keep important tokens wider).
 *
 * <p>The integer precisions are the ZipCache scheme ({@link ZipCacheCodec}: keys quantised per
 * channel, values per token after channel scaling, group metadata beside the packed codes); their
 * groups are sealed once encoded, so a cache appends in FP32/FP16 and re-encodes groups. How each
 * precision is stored and read back is in {@link KvCodecs}.
 */
public enum KvPrecision {
  FP32(32),
  FP16(16),
  /** ZipCache 8-bit codes, one per byte (dtype {@code uint8}). */
  INT8(8),
  /** ZipCache 4-bit codes, two per byte (dtype {@code uint4x2}). */
  INT4(4),
  /** ZipCache 2-bit codes, four per byte (dtype {@code uint2x4}). */
  INT2(2);

  private final int bits;

  KvPrecision(int bits) {
    this.bits = bits;
  }

  /** Bits per stored element (before any group metadata). */
  public int bits() {
    return bits;
  }

  /** Whether this is a ZipCache integer precision (INT8, INT4, INT2). */
  public boolean quantized() {
    return bits <= 8;
  }

  /** The precision of a bit width: 32, 16, 8, 4 or 2. */
  public static KvPrecision ofBits(int bits) {
    for (KvPrecision p : values()) {
      if (p.bits == bits) {
        return p;
      }
    }
    throw new IllegalArgumentException("no KV precision has " + bits + " bits (32, 16, 8, 4, 2)");
  }
}
