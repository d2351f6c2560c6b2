package dev.tokenpress.operators.kv;

import java.util.ArrayList;
import java.util.List;

/**
 * A mixed-precision ZipCache group ({@link MixedPrecisionEncoder}): the important rows form one
 * {@link QuantizedKvSegment} at the high bit width, the other rows another at the low bit width,
 * each with its own key channel statistics; both share the value channel scales of the whole group.
 * The segment's rows stay in the original order: row {@code r} is row {@code localRow[r]} of subset
 * {@code high[r] ? high : low}, and the kernels read the rows in that order, dequantising each
 * element in place.
 */
final class MixedKvSegment extends KvSegment {
  private final QuantizedKvSegment high;
  private final QuantizedKvSegment low;
  private final boolean[] isHigh;
  private final int[] localRow;

  /** Row of this segment of each row of the high (low) subset. */
  private final int[] highRows;

  private final int[] lowRows;

  /** {@code isHigh[r]} says which subset row r is in; subsets hold their rows in ascending r. */
  MixedKvSegment(
      KvLayout layout, QuantizedKvSegment high, QuantizedKvSegment low, boolean[] isHigh) {
    super(layout, isHigh.length);
    this.high = high;
    this.low = low;
    this.isHigh = isHigh.clone();
    this.localRow = new int[isHigh.length];
    int h = 0;
    int l = 0;
    for (int r = 0; r < isHigh.length; r++) {
      QuantizedKvSegment s = isHigh[r] ? high : low;
      int local = isHigh[r] ? h++ : l++;
      localRow[r] = local;
      setBookkeeping(r, s.tokenIndex(local), s.position(local));
    }
    if (h != high.rows() || l != low.rows()) {
      throw new IllegalArgumentException(
          "mask selects " + h + "/" + l + " rows, subsets hold " + high.rows() + "/" + low.rows());
    }
    this.highRows = new int[h];
    this.lowRows = new int[l];
    for (int r = 0; r < isHigh.length; r++) {
      (isHigh[r] ? highRows : lowRows)[localRow[r]] = r;
    }
    this.rows = isHigh.length;
  }

  /** The widest precision in this segment; {@link #precision(int)} gives each row's. */
  @Override
  public KvPrecision precision() {
    return high.precision();
  }

  @Override
  public KvPrecision precision(int row) {
    return isHigh[row] ? high.precision() : low.precision();
  }

  /**
   * Each subset in turn over its own rows, scores scattered to (weights gathered from) their row
   * order.
   */
  @Override
  public void keyScores(int kvHead, float[] q, int qOff, float scale, float[] out, int outOff) {
    keyScores(kvHead, q, qOff, 1, scale, out, outOff, 0);
  }

  @Override
  public void keyScores(
      int kvHead,
      float[] q,
      int qOff,
      int qHeads,
      float scale,
      float[] out,
      int outOff,
      int outStride) {
    high.keyScores(kvHead, q, qOff, qHeads, scale, out, outOff, outStride, highRows);
    low.keyScores(kvHead, q, qOff, qHeads, scale, out, outOff, outStride, lowRows);
  }

  /** The high subset's rows, then the low subset's (a different summation order than row order). */
  @Override
  public void accumulateValues(int kvHead, float[] w, int wOff, float[] out, int outOff) {
    accumulateValues(kvHead, w, wOff, 0, 1, out, outOff);
  }

  @Override
  public void accumulateValues(
      int kvHead, float[] w, int wOff, int wStride, int qHeads, float[] out, int outOff) {
    high.accumulateValues(kvHead, w, wOff, wStride, qHeads, out, outOff, highRows);
    low.accumulateValues(kvHead, w, wOff, wStride, qHeads, out, outOff, lowRows);
  }

  @Override
  public void decodeKeys(float[] dst, int dstOff) {
    int w = layout.width();
    for (int r = 0; r < rows; r++) {
      (isHigh[r] ? high : low).decodeKeyRow(localRow[r], dst, dstOff + r * w);
    }
  }

  @Override
  public void decodeValues(float[] dst, int dstOff) {
    int w = layout.width();
    for (int r = 0; r < rows; r++) {
      (isHigh[r] ? high : low).decodeValueRow(localRow[r], dst, dstOff + r * w);
    }
  }

  @Override
  public long storedBytes() {
    return high.storedBytes() + low.storedBytes();
  }

  /** Keeps rows without re-quantising; a subset left empty disappears. */
  @Override
  public KvSegment select(int[] rowsToKeep) {
    checkRows(rowsToKeep);
    int nh = 0;
    for (int r : rowsToKeep) {
      if (isHigh[r]) {
        nh++;
      }
    }
    int[] hi = new int[nh];
    int[] lo = new int[rowsToKeep.length - nh];
    boolean[] mask = new boolean[rowsToKeep.length];
    int h = 0;
    int l = 0;
    for (int i = 0; i < rowsToKeep.length; i++) {
      int r = rowsToKeep[i];
      mask[i] = isHigh[r];
      if (isHigh[r]) {
        hi[h++] = localRow[r];
      } else {
        lo[l++] = localRow[r];
      }
    }
    if (lo.length == 0) {
      return high.select(hi);
    }
    if (hi.length == 0) {
      return low.select(lo);
    }
    return new MixedKvSegment(layout, high.select(hi), low.select(lo), mask);
  }

  /**
   * Two chunks, high subset first: each holds its rows in ascending entry order, and its {@link
   * KvChunk#entries()} say where they go among the layer's entries.
   */
  @Override
  public List<KvChunk> export(int firstEntry) {
    int[] he = new int[high.rows()];
    int[] le = new int[low.rows()];
    for (int r = 0; r < rows; r++) {
      if (isHigh[r]) {
        he[localRow[r]] = firstEntry + r;
      } else {
        le[localRow[r]] = firstEntry + r;
      }
    }
    List<KvChunk> out = new ArrayList<>(2);
    out.add(high.chunk(he));
    out.add(low.chunk(le));
    return out;
  }

  @Override
  public int chunkCount() {
    return 2;
  }

  @Override
  public String toString() {
    return "MixedKvSegment(int"
        + high.bits()
        + " x "
        + high.rows()
        + ", int"
        + low.bits()
        + " x "
        + low.rows()
        + ", "
        + layout
        + ")";
  }
}
