package dev.tokenpress.operators.kv;

/**
 * Encodes KV rows into {@link KvSegment}s of one {@link KvPrecision}.
 *
 * <p>This is the seam for the ZipCache integer codecs (int8/int4/int2: keys per channel, values
 * per token after channel scaling, group metadata beside the packed bytes). Such a codec
 * implements {@link #encode} over a whole token group and may refuse {@link #allocate}: the
 * cache then appends new tokens into a float segment and re-encodes groups later
 * ({@link LayerKvCache#recode}).
 */
public interface KvCodec {
    KvPrecision precision();

    /** An empty segment open for appends. */
    KvSegment allocate(KvLayout layout, int capacity);

    /**
     * Encodes {@code rows} rows. {@code k} and {@code v} hold {@code rows * layout.width()} floats
     * from offset 0; token indices and positions hold {@code rows} entries from offset 0.
     */
    KvSegment encode(KvLayout layout, float[] k, float[] v, int rows, int[] tokenIndex, int[] position);

    /** The codec of a precision. */
    static KvCodec of(KvPrecision precision) {
        switch (precision) {
            case FP32:
                return Fp32Codec.INSTANCE;
            case FP16:
                return Fp16Codec.INSTANCE;
            default:
                throw new IllegalArgumentException("no codec for KV precision " + precision);
        }
    }
}
