package dev.tokenpress.operators.kernels;

import dev.tokenpress.operators.kv.KvSegment;
import dev.tokenpress.operators.kv.LayerKvCache;
import java.util.List;

/**
 * Attention of one query token over a layer's stored KV cache, read in its stored precision
 * (segments dequantize on the fly), with grouped-query attention: query head {@code h} uses KV
 * head {@code h / (numHeads / numKvHeads)}.
 *
 * <p>Holds a growable scratch row, so one instance serves a whole generation; not thread-safe.
 */
public final class DecodeAttention {
    private float[] scores = new float[256];

    /**
     * Computes {@code out[outOff + h*headDim + d]} for all query heads.
     *
     * @param q        query, {@code numHeads * headDim} floats from {@code qOff} (RoPE applied)
     * @param cache    the layer's cache (the current token's K/V already appended)
     * @param numHeads query heads; a multiple of the cache's KV heads
     * @param scale    score scale, usually {@code 1/sqrt(headDim)}
     * @param bias     additive bias per cache entry ({@code cache.length()} floats), or null
     * @param probs    if not null, receives the attention probabilities, {@code numHeads * length}
     */
    public void attend(float[] q, int qOff, LayerKvCache cache, int numHeads, float scale, float[] bias,
                       float[] out, int outOff, float[] probs) {
        int kvHeads = cache.layout().numKvHeads();
        int hd = cache.layout().headDim();
        if (numHeads % kvHeads != 0) {
            throw new IllegalArgumentException("numHeads " + numHeads + " is not a multiple of numKvHeads " + kvHeads);
        }
        int len = cache.length();
        if (len == 0) {
            throw new IllegalStateException("decode attention over an empty cache");
        }
        if (bias != null && bias.length < len) {
            throw new IllegalArgumentException("bias has " + bias.length + " entries, cache has " + len);
        }
        if (probs != null && probs.length < numHeads * len) {
            throw new IllegalArgumentException("probs has " + probs.length + " floats, need " + numHeads * len);
        }
        int group = numHeads / kvHeads;
        if (scores.length < group * len) {
            scores = new float[Math.max(group * len, scores.length * 2)];
        }
        List<KvSegment> segs = cache.segments();
        int nSegs = segs.size();
        for (int g = 0; g < kvHeads; g++) {
            int qo = qOff + g * group * hd;
            int o = 0;
            for (int s = 0; s < nSegs; s++) {
                KvSegment seg = segs.get(s);
                seg.keyScores(g, q, qo, group, scale, scores, o, len);
                o += seg.rows();
            }
            for (int h = 0; h < group; h++) {
                int so = h * len;
                if (bias != null) {
                    for (int j = 0; j < len; j++) {
                        scores[so + j] += bias[j];
                    }
                }
                Softmax.inPlace(scores, so, len);
                if (probs != null) {
                    System.arraycopy(scores, so, probs, (g * group + h) * len, len);
                }
            }
            int oo = outOff + g * group * hd;
            java.util.Arrays.fill(out, oo, oo + group * hd, 0f);
            o = 0;
            for (int s = 0; s < nSegs; s++) {
                KvSegment seg = segs.get(s);
                seg.accumulateValues(g, scores, o, group, len, out, oo);
                o += seg.rows();
            }
        }
    }
}
