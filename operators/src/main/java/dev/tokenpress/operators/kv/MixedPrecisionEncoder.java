package dev.tokenpress.operators.kv;

/**
 * ZipCache / ZipVL mixed-precision KV quantisation (ZipCache {@code mixed_channelwiseQ} for keys,
 * {@code channel_separate_mixed_tokenwiseQ} for values; ZipVL v1 arXiv 2410.08584, Alg. 1 with b_h
 * = 4, b_l = 2): important tokens at {@code bitsHigh}, the others at {@code bitsLow}.
 *
 * <p>For a group of rows and an important mask:
 *
 * <ul>
 *   <li>the important rows (ascending) and the other rows (ascending) are quantised as two separate
 *       subsets, so each subset has its own per-channel key scale and zero;
 *   <li>the value channel scales {@code s_c = sqrt(max_t |V[t,c]|)} are taken over the whole group
 *       (both subsets) and shared, as ZipCache does; values are then quantised per token at the
 *       subset's bit width (per-token statistics do not depend on the split);
 *   <li>the resulting segment keeps the original row order for every reader ({@link
 *       KvSegment#keyScores}, {@link KvSegment#decodeKeys}, token indices, positions), and {@link
 *       KvSegment#precision(int)} gives each row's precision. Exported ({@link KvSegment#export})
 *       it becomes two {@link KvChunk}s whose {@link KvChunk#entries()} give each stored row's
 *       index among the layer's entries.
 * </ul>
 *
 * An all-important or all-unimportant mask gives a plain single-precision segment. {@link
 * #encodePerHead} does the same for each KV head with its own mask.
 *
 * @param bitsHigh bits of important tokens: 8, 4 or 2
 * @param bitsLow bits of the other tokens: 8, 4 or 2, at most {@code bitsHigh}
 */
public record MixedPrecisionEncoder(int bitsHigh, int bitsLow) {
  /** ZipVL's and ZipCache's setting: 4 bits for important tokens, 2 for the rest. */
  public static final MixedPrecisionEncoder ZIPVL = new MixedPrecisionEncoder(4, 2);

  public MixedPrecisionEncoder {
    if (bitsHigh != 8 && bitsHigh != 4 && bitsHigh != 2) {
      throw new IllegalArgumentException("bitsHigh must be 8, 4 or 2, found " + bitsHigh);
    }
    if (bitsLow != 8 && bitsLow != 4 && bitsLow != 2) {
      throw new IllegalArgumentException("bitsLow must be 8, 4 or 2, found " + bitsLow);
    }
    if (bitsLow > bitsHigh) {
      throw new IllegalArgumentException(
          "bitsLow " + bitsLow + " must not exceed bitsHigh " + bitsHigh);
    }
  }

  /**
   * Encodes {@code rows} rows ({@code k}, {@code v}: {@code rows * layout.width()} floats from
   * offset 0; {@code tokenIndex}, {@code position}, {@code important}: {@code rows} entries).
   * Inputs are not modified.
   *
   * @throws IllegalArgumentException on short arrays or non-finite K/V values
   */
  public KvSegment encode(
      KvLayout layout,
      float[] k,
      float[] v,
      int rows,
      int[] tokenIndex,
      int[] position,
      boolean[] important) {
    QuantizedKvSegment.checkInputs(layout, k, v, rows, tokenIndex, position);
    if (important.length != rows) {
      throw new IllegalArgumentException(
          "important mask has " + important.length + " entries, rows " + rows);
    }
    int w = layout.width();
    ZipCacheQuantizer.checkFinite("key", k, rows, w);
    ZipCacheQuantizer.checkFinite("value", v, rows, w);
    int nh = 0;
    for (boolean b : important) {
      if (b) {
        nh++;
      }
    }
    if (nh == rows) {
      return QuantizedKvSegment.encode(layout, bitsHigh, k, v, rows, tokenIndex, position, null);
    }
    if (nh == 0) {
      return QuantizedKvSegment.encode(layout, bitsLow, k, v, rows, tokenIndex, position, null);
    }
    float[] s = ZipCacheQuantizer.channelScales(v, rows, w);
    Subset hi = new Subset(nh, w);
    Subset lo = new Subset(rows - nh, w);
    for (int r = 0; r < rows; r++) {
      (important[r] ? hi : lo).add(k, v, r, w, tokenIndex[r], position[r]);
    }
    QuantizedKvSegment high =
        QuantizedKvSegment.encode(layout, bitsHigh, hi.k, hi.v, nh, hi.idx, hi.pos, s);
    QuantizedKvSegment low =
        QuantizedKvSegment.encode(layout, bitsLow, lo.k, lo.v, rows - nh, lo.idx, lo.pos, s);
    return new MixedKvSegment(layout, high, low, important);
  }

  /**
   * ZipCache's per-KV-head selection: like {@link #encode}, but every KV head {@code g} has its own
   * important mask {@code important[g]} ({@code rows} entries: whether row r of head g is stored at
   * {@code bitsHigh}). Head g is quantised on its own, exactly as {@link #encode} would quantise a
   * one-head layout {@code KvLayout(1, headDim)} of its channels {@code [g*headDim,
   * (g+1)*headDim)}: keys per channel per subset of that head; value channel scales {@code s_c}
   * over all rows (per channel, so the same as in the shared form); values per token over that
   * head's {@code headDim} channels only. The result holds one segment per head ({@link
   * KvSegment#export} gives each head's chunks, tagged with {@link KvChunk#kvHead()}); it is the
   * per-head form even when all masks agree.
   *
   * <p>ZipCache itself, given per-head token ids, reshapes the gathered rows to {@code [tokens,
   * heads*headDim]} before quantising values per token, so one of its value "tokens" mixes rows of
   * different tokens from different heads; that quirk is not reproduced here (a value row's
   * statistics are always one token of one head).
   *
   * @param important {@code numKvHeads} masks of {@code rows} entries each
   * @throws IllegalArgumentException on short arrays, masks of the wrong shape or non-finite K/V
   *     values
   */
  public KvSegment encodePerHead(
      KvLayout layout,
      float[] k,
      float[] v,
      int rows,
      int[] tokenIndex,
      int[] position,
      boolean[][] important) {
    QuantizedKvSegment.checkInputs(layout, k, v, rows, tokenIndex, position);
    int heads = layout.numKvHeads();
    if (important == null || important.length != heads) {
      throw new IllegalArgumentException(
          "important needs one mask per KV head ("
              + heads
              + "), found "
              + (important == null ? "null" : important.length));
    }
    for (int g = 0; g < heads; g++) {
      if (important[g] == null || important[g].length != rows) {
        throw new IllegalArgumentException(
            "important mask of KV head "
                + g
                + " has "
                + (important[g] == null ? "no" : String.valueOf(important[g].length))
                + " entries, rows "
                + rows);
      }
    }
    int hd = layout.headDim();
    int w = layout.width();
    KvLayout one = new KvLayout(1, hd);
    KvSegment[] segs = new KvSegment[heads];
    float[] hk = new float[rows * hd];
    float[] hv = new float[rows * hd];
    for (int g = 0; g < heads; g++) {
      for (int r = 0; r < rows; r++) {
        System.arraycopy(k, r * w + g * hd, hk, r * hd, hd);
        System.arraycopy(v, r * w + g * hd, hv, r * hd, hd);
      }
      segs[g] = encode(one, hk, hv, rows, tokenIndex, position, important[g]);
    }
    return new HeadSplitKvSegment(layout, segs);
  }

  /** Rows of one subset, gathered in ascending order. */
  private static final class Subset {
    final float[] k;
    final float[] v;
    final int[] idx;
    final int[] pos;
    int n;

    Subset(int rows, int w) {
      k = new float[rows * w];
      v = new float[rows * w];
      idx = new int[rows];
      pos = new int[rows];
    }

    void add(float[] kSrc, float[] vSrc, int r, int w, int tokenIndex, int position) {
      System.arraycopy(kSrc, r * w, k, n * w, w);
      System.arraycopy(vSrc, r * w, v, n * w, w);
      idx[n] = tokenIndex;
      pos[n] = position;
      n++;
    }
  }
}
