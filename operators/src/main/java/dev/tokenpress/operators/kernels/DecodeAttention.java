package dev.tokenpress.operators.kernels;

import dev.tokenpress.operators.kv.KvSegment;
import dev.tokenpress.operators.kv.LayerKvCache;
import java.util.List;

/**
 * Attention of one query token over a layer's stored KV cache, read in its stored precision
 * (segments dequantize on the fly), with grouped-query attention: query head {@code h} uses KV head
 * {@code h / (numHeads / numKvHeads)}.
 *
 * <p>Holds a growable probability buffer, so one instance serves a whole generation (no allocation
 * per step); not thread-safe.
 */
public final class DecodeAttention {
  private float[] all = new float[1024]; // probabilities, [numHeads, length]

  /**
   * Changes the probabilities of every head of one decode query in place, between softmax and
   * values.
   */
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
   * As {@link #attend}, but all heads' probabilities are computed first and handed to {@code
   * editor}, then the values are read with the (possibly changed) probabilities: VAR's exact
   * redistribution and CMAI's focus rows. With an editor that changes nothing the output is
   * bit-identical to {@link #attend}'s.
   */
  public void attendEdited(
      float[] q,
      int qOff,
      LayerKvCache cache,
      int numHeads,
      float scale,
      float[] bias,
      float[] out,
      int outOff,
      ProbabilityEditor editor) {
    int kvHeads = cache.layout().numKvHeads();
    int len = checkedLength(cache, numHeads, bias);
    ensure(numHeads * len);
    for (int g = 0; g < kvHeads; g++) {
      probabilities(g, q, qOff, cache, numHeads, scale, bias, len);
    }
    editor.edit(all, len);
    for (int g = 0; g < kvHeads; g++) {
      values(g, cache, numHeads, len, out, outOff);
    }
  }

  /**
   * Computes {@code out[outOff + h*headDim + d]} for all query heads. Works per KV head: the query
   * heads of its group are scored and summed together ({@link KvSegment#keyScores(int, float[],
   * int, int, float, float[], int, int)}), so a quantised segment unpacks each row once per group.
   *
   * @param q query, {@code numHeads * headDim} floats from {@code qOff} (RoPE applied)
   * @param cache the layer's cache (the current token's K/V already appended)
   * @param numHeads query heads; a multiple of the cache's KV heads
   * @param scale score scale, usually {@code 1/sqrt(headDim)}
   * @param bias additive bias per cache entry ({@code cache.length()} floats), or null
   * @param probs if not null, receives the attention probabilities, {@code numHeads * length}
   */
  public void attend(
      float[] q,
      int qOff,
      LayerKvCache cache,
      int numHeads,
      float scale,
      float[] bias,
      float[] out,
      int outOff,
      float[] probs) {
    int kvHeads = cache.layout().numKvHeads();
    int len = checkedLength(cache, numHeads, bias);
    if (probs != null && probs.length < numHeads * len) {
      throw new IllegalArgumentException(
          "probs has " + probs.length + " floats, need " + numHeads * len);
    }
    ensure(numHeads * len);
    for (int g = 0; g < kvHeads; g++) {
      probabilities(g, q, qOff, cache, numHeads, scale, bias, len);
      values(g, cache, numHeads, len, out, outOff);
    }
    if (probs != null) {
      System.arraycopy(all, 0, probs, 0, numHeads * len);
    }
  }

  private void ensure(int n) {
    if (all.length < n) {
      all = new float[Math.max(n, all.length * 2)];
    }
  }

  /** Softmax probabilities of the query heads of KV head {@code g} into {@code all[h * len ..]}. */
  private void probabilities(
      int g,
      float[] q,
      int qOff,
      LayerKvCache cache,
      int numHeads,
      float scale,
      float[] bias,
      int len) {
    int hd = cache.layout().headDim();
    int group = numHeads / cache.layout().numKvHeads();
    int h0 = g * group;
    List<KvSegment> segs = cache.segments();
    int o = 0;
    for (int s = 0; s < segs.size(); s++) {
      KvSegment seg = segs.get(s);
      seg.keyScores(g, q, qOff + h0 * hd, group, scale, all, h0 * len + o, len);
      o += seg.rows();
    }
    for (int h = h0; h < h0 + group; h++) {
      if (bias != null) {
        for (int j = 0; j < len; j++) {
          all[h * len + j] += bias[j];
        }
      }
      Softmax.inPlace(all, h * len, len);
    }
  }

  /**
   * The attention outputs of the query heads of KV head {@code g} from the probabilities in {@code
   * all}.
   */
  private void values(int g, LayerKvCache cache, int numHeads, int len, float[] out, int outOff) {
    int hd = cache.layout().headDim();
    int group = numHeads / cache.layout().numKvHeads();
    int h0 = g * group;
    int oo = outOff + h0 * hd;
    for (int d = 0; d < group * hd; d++) {
      out[oo + d] = 0f;
    }
    List<KvSegment> segs = cache.segments();
    int o = 0;
    for (int s = 0; s < segs.size(); s++) {
      KvSegment seg = segs.get(s);
      seg.accumulateValues(g, all, h0 * len + o, len, group, out, oo);
      o += seg.rows();
    }
  }

  /**
   * The cache's length, after checking the head counts, that the cache is not empty and the bias
   * covers it.
   */
  private static int checkedLength(LayerKvCache cache, int numHeads, float[] bias) {
    int kvHeads = cache.layout().numKvHeads();
    if (numHeads % kvHeads != 0) {
      throw new IllegalArgumentException(
          "numHeads " + numHeads + " is not a multiple of numKvHeads " + kvHeads);
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
