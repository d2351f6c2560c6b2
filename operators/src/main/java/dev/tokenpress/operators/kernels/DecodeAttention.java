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
    private float[] all = new float[1024];

    /** Changes the probabilities of every head of one decode query in place, between softmax and values. */
    @FunctionalInterface
    public interface ProbabilityEditor {
        /**
         * @param probs {@code [numHeads, length]} row-major (the array may be longer)
         * @param length the cache length
         * @return whether a probability changed
         */
        boolean edit(float[] probs, int length);
    }

    /**
     * As {@link #attend}, but all heads' probabilities are computed first and handed to
     * {@code editor}, then the values are read with the (possibly changed) probabilities: VAR's
     * exact redistribution and CMAI's focus rows. With an editor that changes nothing the output
     * is bit-identical to {@link #attend}'s.
     */
    public void attendEdited(float[] q, int qOff, LayerKvCache cache, int numHeads, float scale, float[] bias,
                             float[] out, int outOff, ProbabilityEditor editor) {
        int kvHeads = cache.layout().numKvHeads();
        int hd = cache.layout().headDim();
        int len = checkedLength(cache, numHeads, bias);
        if (all.length < numHeads * len) {
            all = new float[Math.max(numHeads * len, all.length * 2)];
        }
        int group = numHeads / kvHeads;
        List<KvSegment> segs = cache.segments();
        int nSegs = segs.size();
        for (int h = 0; h < numHeads; h++) {
            int g = h / group;
            int qo = qOff + h * hd;
            int o = h * len;
            for (int s = 0; s < nSegs; s++) {
                KvSegment seg = segs.get(s);
                seg.keyScores(g, q, qo, scale, all, o);
                o += seg.rows();
            }
            if (bias != null) {
                for (int j = 0; j < len; j++) {
                    all[h * len + j] += bias[j];
                }
            }
            Softmax.inPlace(all, h * len, len);
        }
        editor.edit(all, len);
        for (int h = 0; h < numHeads; h++) {
            int g = h / group;
            int oo = outOff + h * hd;
            for (int d = 0; d < hd; d++) {
                out[oo + d] = 0f;
            }
            int o = 0;
            for (int s = 0; s < nSegs; s++) {
                KvSegment seg = segs.get(s);
                seg.accumulateValues(g, all, h * len + o, out, oo);
                o += seg.rows();
            }
        }
    }

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
        int len = checkedLength(cache, numHeads, bias);
        if (probs != null && probs.length < numHeads * len) {
            throw new IllegalArgumentException("probs has " + probs.length + " floats, need " + numHeads * len);
        }
        if (scores.length < len) {
            scores = new float[Math.max(len, scores.length * 2)];
        }
        int group = numHeads / kvHeads;
        List<KvSegment> segs = cache.segments();
        int nSegs = segs.size();
        for (int h = 0; h < numHeads; h++) {
            int g = h / group;
            int qo = qOff + h * hd;
            int o = 0;
            for (int s = 0; s < nSegs; s++) {
                KvSegment seg = segs.get(s);
                seg.keyScores(g, q, qo, scale, scores, o);
                o += seg.rows();
            }
            if (bias != null) {
                for (int j = 0; j < len; j++) {
                    scores[j] += bias[j];
                }
            }
            Softmax.inPlace(scores, 0, len);
            if (probs != null) {
                System.arraycopy(scores, 0, probs, h * len, len);
            }
            int oo = outOff + h * hd;
            for (int d = 0; d < hd; d++) {
                out[oo + d] = 0f;
            }
            o = 0;
            for (int s = 0; s < nSegs; s++) {
                KvSegment seg = segs.get(s);
                seg.accumulateValues(g, scores, o, out, oo);
                o += seg.rows();
            }
        }
    }

    /** The cache's length, after checking the head counts, that the cache is not empty and the bias covers it. */
    private static int checkedLength(LayerKvCache cache, int numHeads, float[] bias) {
        int kvHeads = cache.layout().numKvHeads();
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
        return len;
    }
}
