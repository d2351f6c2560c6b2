package dev.tokenpress.operators.kv;

import java.util.Arrays;
import java.util.List;

/**
 * A run of consecutive entries of one layer's KV cache, all stored with one {@link KvCodec}. Each
 * entry keeps the original token index and position id of the token it came from.
 *
 * <p>Kernels never see the stored bytes: they ask a segment for key scores and value sums of one KV
 * head, so a quantized codec dequantizes on the fly in {@link #keyScores} and {@link
 * #accumulateValues} (ZipCache group metadata stays inside its segment).
 *
 * <p>Not thread-safe; a segment belongs to one sequence.
 */
public abstract class KvSegment {
  protected final KvLayout layout;
  protected int rows;
  protected int[] tokenIndex;
  protected int[] position;

  protected KvSegment(KvLayout layout, int capacity) {
    this.layout = layout;
    this.tokenIndex = new int[Math.max(capacity, 1)];
    this.position = new int[Math.max(capacity, 1)];
  }

  public abstract KvPrecision precision();

  /**
   * Precision of one row. Equal to {@link #precision()} except in mixed-precision segments ({@link
   * MixedPrecisionEncoder}), where {@link #precision()} is the widest one.
   */
  public KvPrecision precision(int row) {
    return precision();
  }

  /**
   * {@code out[outOff + r] = scale * dot(q[qOff .. qOff + headDim), key of row r, head kvHead)} for
   * every row r of this segment.
   */
  public abstract void keyScores(
      int kvHead, float[] q, int qOff, float scale, float[] out, int outOff);

  /** {@code out[outOff + d] += sum_r w[wOff + r] * value of row r, head kvHead, element d}. */
  public abstract void accumulateValues(int kvHead, float[] w, int wOff, float[] out, int outOff);

  /**
   * {@link #keyScores(int, float[], int, float, float[], int)} for {@code qHeads} query heads
   * sharing {@code kvHead} (grouped-query attention): query head {@code i} is {@code q[qOff +
   * i·headDim ..]}, its scores go to {@code out[outOff + i·outStride + r]}. Quantised segments
   * unpack each row once for all of them; this default calls the one-head method per head.
   */
  public void keyScores(
      int kvHead,
      float[] q,
      int qOff,
      int qHeads,
      float scale,
      float[] out,
      int outOff,
      int outStride) {
    int hd = layout.headDim();
    for (int i = 0; i < qHeads; i++) {
      keyScores(kvHead, q, qOff + i * hd, scale, out, outOff + i * outStride);
    }
  }

  /**
   * {@link #accumulateValues(int, float[], int, float[], int)} for {@code qHeads} query heads
   * sharing {@code kvHead}: head {@code i}'s weights are {@code w[wOff + i·wStride + r]} and its
   * sums go to {@code out[outOff + i·headDim + d]}. This default calls the one-head method per
   * head.
   */
  public void accumulateValues(
      int kvHead, float[] w, int wOff, int wStride, int qHeads, float[] out, int outOff) {
    int hd = layout.headDim();
    for (int i = 0; i < qHeads; i++) {
      accumulateValues(kvHead, w, wOff + i * wStride, out, outOff + i * hd);
    }
  }

  /** Writes the dequantized keys, {@code rows * width} floats, row-major. */
  public abstract void decodeKeys(float[] dst, int dstOff);

  /** Writes the dequantized values, {@code rows * width} floats, row-major. */
  public abstract void decodeValues(float[] dst, int dstOff);

  /** Bytes of stored K and V (excluding token index and position bookkeeping). */
  public abstract long storedBytes();

  /** A new segment of the same codec holding the given rows (ascending, in range). */
  public abstract KvSegment select(int[] rowsToKeep);

  /**
   * This segment in its stored form, as the rows of the Parquet {@code kv_cache} dataset need it
   * ({@link KvChunk}, {@link KvTensor}; formats in {@link KvCodecs}). Row {@code r} of this segment
   * is entry {@code firstEntry + r} of its layer. One chunk per segment, except mixed-precision
   * segments, which give one chunk per precision, and per-KV-head groups ({@link
   * MixedPrecisionEncoder#encodePerHead}), which give each head's chunks tagged with {@link
   * KvChunk#kvHead()}.
   *
   * <p>This default serves FP32 and FP16 segments: their bytes are the little-endian floats or
   * halves of {@link #decodeKeys}/{@link #decodeValues} (exact: a half survives the round trip
   * through float). Segments of other precisions override it.
   */
  public List<KvChunk> export(int firstEntry) {
    KvPrecision p = precision();
    if (p != KvPrecision.FP32 && p != KvPrecision.FP16) {
      throw new UnsupportedOperationException(
          getClass().getSimpleName() + " of " + p + " must override export");
    }
    int w = layout.width();
    float[] k = new float[rows * w];
    float[] v = new float[rows * w];
    decodeKeys(k, 0);
    decodeValues(v, 0);
    int[] shape = exportShape();
    return List.of(
        chunk(firstEntry, KvTensor.ofFloats(p, shape, k), KvTensor.ofFloats(p, shape, v)));
  }

  /** How many chunks {@link #export} gives (without exporting). */
  public int chunkCount() {
    return 1;
  }

  /** The logical shape {@code [rows, kv_heads, head_dim]} of this segment's exported tensors. */
  protected final int[] exportShape() {
    return new int[] {rows, layout.numKvHeads(), layout.headDim()};
  }

  /** The one chunk of all this segment's rows, row {@code r} being entry {@code firstEntry + r}. */
  protected final KvChunk chunk(int firstEntry, KvTensor k, KvTensor v) {
    int[] entries = new int[rows];
    for (int r = 0; r < rows; r++) {
      entries[r] = firstEntry + r;
    }
    return new KvChunk(
        entries, Arrays.copyOf(tokenIndex, rows), Arrays.copyOf(position, rows), precision(), k, v);
  }

  /** Whether {@link #append} is supported (group-quantized codecs are sealed once encoded). */
  public boolean appendable() {
    return false;
  }

  /** Appends one entry; only for {@link #appendable()} segments. */
  public void append(float[] k, int kOff, float[] v, int vOff, int tokenIdx, int pos) {
    throw new UnsupportedOperationException(
        precision() + " segment is sealed; append into a new segment");
  }

  public final KvLayout layout() {
    return layout;
  }

  public final int rows() {
    return rows;
  }

  public final int tokenIndex(int row) {
    return tokenIndex[row];
  }

  public final int position(int row) {
    return position[row];
  }

  /** Ensures room for {@code needed} rows of bookkeeping; subclasses grow their payload too. */
  protected void growBookkeeping(int needed) {
    if (needed > tokenIndex.length) {
      int cap = Math.max(needed, tokenIndex.length * 2);
      tokenIndex = Arrays.copyOf(tokenIndex, cap);
      position = Arrays.copyOf(position, cap);
    }
  }

  protected final void setBookkeeping(int row, int tokenIdx, int pos) {
    tokenIndex[row] = tokenIdx;
    position[row] = pos;
  }

  protected final void checkRows(int[] rowsToKeep) {
    int prev = -1;
    for (int r : rowsToKeep) {
      if (r <= prev || r >= rows) {
        throw new IllegalArgumentException(
            "rows to keep must be ascending within [0, "
                + rows
                + "), found "
                + r
                + " after "
                + prev);
      }
      prev = r;
    }
  }

  @Override
  public String toString() {
    return getClass().getSimpleName() + "(rows=" + rows + ", " + layout + ")";
  }
}
