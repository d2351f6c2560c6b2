package dev.tokenpress.operators.kv;

/**
 * Encodes KV rows into {@link KvSegment}s of one {@link KvPrecision}.
 *
 * <p>This is the seam for the ZipCache integer codecs ({@link ZipCacheCodec}, int8/int4/int2: keys
 * per channel, values per token after channel scaling, group metadata beside the packed bytes).
 * Such a codec implements {@link #encode} over a whole token group and refuses {@link #allocate}
 * ({@link #appendable()} is false): a cache appends new tokens with a float codec and re-encodes
 * groups later ({@link LayerKvCache#recode}, {@link LayerKvCache#recodeMixed}).
 */
public interface KvCodec {
  KvPrecision precision();

  /**
   * Whether {@link #allocate} gives segments open for appends, so the codec can be a {@link
   * LayerKvCache}'s append codec. True for FP32/FP16, false for the ZipCache codecs.
   */
  default boolean appendable() {
    return true;
  }

  /** An empty segment open for appends; refused by codecs that are not {@link #appendable()}. */
  KvSegment allocate(KvLayout layout, int capacity);

  /**
   * Encodes {@code rows} rows. {@code k} and {@code v} hold {@code rows * layout.width()} floats
   * from offset 0; token indices and positions hold {@code rows} entries from offset 0.
   */
  KvSegment encode(
      KvLayout layout, float[] k, float[] v, int rows, int[] tokenIndex, int[] position);

  /** The codec of a precision. */
  static KvCodec of(KvPrecision precision) {
    switch (precision) {
      case FP32:
        return Fp32Codec.INSTANCE;
      case FP16:
        return Fp16Codec.INSTANCE;
      case INT8:
        return ZipCacheCodec.INT8;
      case INT4:
        return ZipCacheCodec.INT4;
      case INT2:
        return ZipCacheCodec.INT2;
      default:
        throw new IllegalArgumentException("no codec for KV precision " + precision);
    }
  }
}
