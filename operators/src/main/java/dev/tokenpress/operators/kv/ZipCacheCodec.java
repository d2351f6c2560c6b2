package dev.tokenpress.operators.kv;

/**
 * ZipCache integer KV codec (int8, int4, int2): keys quantised per channel, values per token after
 * channel scaling, over the token group being encoded; group metadata stored beside the packed
 * codes. The exact arithmetic, rounding, zero-range and NaN/Inf rules and the packing are in {@link
 * ZipCacheQuantizer}'s documentation, the stored form in {@link KvCodecs}.
 *
 * <p>A group is sealed once encoded ({@link #appendable()} is false): a cache appends new tokens
 * with a float codec and re-encodes groups with {@link LayerKvCache#recode}; mixed precision per
 * token is {@link MixedPrecisionEncoder} ({@link LayerKvCache#recodeMixed}).
 */
public final class ZipCacheCodec implements KvCodec {
  static final ZipCacheCodec INT8 = new ZipCacheCodec(8);
  static final ZipCacheCodec INT4 = new ZipCacheCodec(4);
  static final ZipCacheCodec INT2 = new ZipCacheCodec(2);

  private final int bits;

  private ZipCacheCodec(int bits) {
    this.bits = bits;
  }

  /** The codec of 8, 4 or 2 bits. */
  public static ZipCacheCodec ofBits(int bits) {
    switch (bits) {
      case 8:
        return INT8;
      case 4:
        return INT4;
      case 2:
        return INT2;
      default:
        throw new IllegalArgumentException("ZipCache bits must be 8, 4 or 2, found " + bits);
    }
  }

  public int bits() {
    return bits;
  }

  @Override
  public KvPrecision precision() {
    return KvPrecision.ofBits(bits);
  }

  @Override
  public boolean appendable() {
    return false;
  }

  /** Refused: ZipCache statistics are per group, so a group cannot grow row by row. */
  @Override
  public KvSegment allocate(KvLayout layout, int capacity) {
    throw new UnsupportedOperationException(
        precision()
            + " KV segments are quantised per group and cannot"
            + " take appends: append with an fp32/fp16 codec and re-encode groups with LayerKvCache.recode");
  }

  /**
   * Quantises {@code rows} rows as one group (inputs unchanged).
   *
   * @throws IllegalArgumentException on short arrays or non-finite K/V values
   */
  @Override
  public KvSegment encode(
      KvLayout layout, float[] k, float[] v, int rows, int[] tokenIndex, int[] position) {
    return QuantizedKvSegment.encode(layout, bits, k, v, rows, tokenIndex, position, null);
  }

  @Override
  public String toString() {
    return "ZipCacheCodec(int" + bits + ")";
  }
}
