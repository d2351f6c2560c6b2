package dev.tokenpress.operators.kv;

/**
 * What a KV-quantising operator decided for one layer after prefill, kept beside the layer's
 * cache ({@link LayerKvCache#compressionInfo}) and written with every Parquet {@code kv_cache}
 * row of the layer (ZipVL: τ, the dynamic ratio, the probe seed).
 *
 * @param operator the operator's name, e.g. {@code "zipvl"}
 * @param mode the operator's mode, e.g. {@code "sparse"} or {@code "kv-only"}
 * @param tau the threshold of the dynamic ratio (Eq. 6)
 * @param scored rows scored at this layer in prefill ({@code n})
 * @param ratioCount {@code p}: the smallest count of tokens holding {@code tau} of the mass (Eq. 6)
 * @param important tokens stored at {@code bitsHigh} after prefill ({@code p} plus forced rows)
 * @param probeSeed the seed that drew this layer's random probe rows
 * @param bitsHigh bits of important tokens (16 = float16)
 * @param bitsLow bits of the other tokens
 */
public record KvCompressionInfo(String operator, String mode, double tau, int scored, int ratioCount, int important,
        long probeSeed, int bitsHigh, int bitsLow) {

    /** Rejects a null operator or mode and negative counts. */
    public KvCompressionInfo {
        if (operator == null || mode == null) {
            throw new IllegalArgumentException("operator and mode must not be null");
        }
        if (scored < 0 || ratioCount < 0 || important < 0 || important > scored) {
            throw new IllegalArgumentException("counts must satisfy 0 <= important <= scored, got important "
                    + important + ", scored " + scored + ", ratio count " + ratioCount);
        }
    }

    /** {@code important / scored}, or 1 when nothing was scored. */
    public double importantRatio() {
        return scored == 0 ? 1.0 : important / (double) scored;
    }
}
