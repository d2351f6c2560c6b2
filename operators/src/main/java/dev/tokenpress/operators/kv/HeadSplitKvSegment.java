package dev.tokenpress.operators.kv;

import java.util.ArrayList;
import java.util.List;

/**
 * A group of KV rows stored KV head by KV head ({@link MixedPrecisionEncoder#encodePerHead}): head
 * {@code g} is its own segment of layout {@code (1, headDim)}, e.g. a {@link MixedKvSegment} with
 * head g's own important rows, or a single-precision segment when all or none of its rows are
 * important. All heads hold the same rows (token indices, positions) in the same order.
 *
 * <p>The kernels' per-head methods go to head {@code kvHead}'s segment (as its head 0), so decode
 * attention reads each head's stored form in place; {@link #decodeKeys}/{@link #decodeValues}
 * interleave the heads back into {@code [rows, W]}. Exported, every head gives its own chunks (two
 * for a mixed head, one otherwise), each tagged with {@link KvChunk#kvHead()}.
 */
final class HeadSplitKvSegment extends KvSegment {
  private final KvSegment[] heads;

  /**
   * {@code heads[g]}: KV head g, layout {@code (1, layout.headDim())}, all with the same rows and
   * bookkeeping.
   */
  HeadSplitKvSegment(KvLayout layout, KvSegment[] heads) {
    super(layout, heads.length == 0 ? 0 : heads[0].rows());
    if (heads.length != layout.numKvHeads()) {
      throw new IllegalArgumentException(
          layout + " needs " + layout.numKvHeads() + " head segments, found " + heads.length);
    }
    KvLayout one = new KvLayout(1, layout.headDim());
    int n = heads[0].rows();
    for (int g = 0; g < heads.length; g++) {
      if (!heads[g].layout().equals(one) || heads[g].rows() != n) {
        throw new IllegalArgumentException(
            "head " + g + " segment " + heads[g] + " must hold " + n + " rows of " + one);
      }
      for (int r = 0; r < n; r++) {
        if (heads[g].tokenIndex(r) != heads[0].tokenIndex(r)
            || heads[g].position(r) != heads[0].position(r)) {
          throw new IllegalArgumentException(
              "head " + g + " row " + r + " has another token or position" + " than head 0");
        }
      }
    }
    this.heads = heads.clone();
    for (int r = 0; r < n; r++) {
      setBookkeeping(r, heads[0].tokenIndex(r), heads[0].position(r));
    }
    this.rows = n;
  }

  /** KV head g's segment. */
  KvSegment head(int g) {
    return heads[g];
  }

  /** The widest precision of any row of any head. */
  @Override
  public KvPrecision precision() {
    KvPrecision p = heads[0].precision();
    for (KvSegment h : heads) {
      p = wider(p, h.precision());
    }
    return p;
  }

  /** The widest of the heads' precisions of this row. */
  @Override
  public KvPrecision precision(int row) {
    KvPrecision p = heads[0].precision(row);
    for (KvSegment h : heads) {
      p = wider(p, h.precision(row));
    }
    return p;
  }

  private static KvPrecision wider(KvPrecision a, KvPrecision b) {
    return b.bits() > a.bits() ? b : a;
  }

  @Override
  public void keyScores(int kvHead, float[] q, int qOff, float scale, float[] out, int outOff) {
    heads[kvHead].keyScores(0, q, qOff, scale, out, outOff);
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
    heads[kvHead].keyScores(0, q, qOff, qHeads, scale, out, outOff, outStride);
  }

  @Override
  public void accumulateValues(int kvHead, float[] w, int wOff, float[] out, int outOff) {
    heads[kvHead].accumulateValues(0, w, wOff, out, outOff);
  }

  @Override
  public void accumulateValues(
      int kvHead, float[] w, int wOff, int wStride, int qHeads, float[] out, int outOff) {
    heads[kvHead].accumulateValues(0, w, wOff, wStride, qHeads, out, outOff);
  }

  @Override
  public void decodeKeys(float[] dst, int dstOff) {
    interleave(true, dst, dstOff);
  }

  @Override
  public void decodeValues(float[] dst, int dstOff) {
    interleave(false, dst, dstOff);
  }

  /**
   * Decodes each head into {@code [rows, headDim]} and scatters it to its channels of {@code [rows,
   * W]}.
   */
  private void interleave(boolean keys, float[] dst, int dstOff) {
    int hd = layout.headDim();
    int w = layout.width();
    float[] tmp = new float[rows * hd];
    for (int g = 0; g < heads.length; g++) {
      if (keys) {
        heads[g].decodeKeys(tmp, 0);
      } else {
        heads[g].decodeValues(tmp, 0);
      }
      for (int r = 0; r < rows; r++) {
        System.arraycopy(tmp, r * hd, dst, dstOff + r * w + g * hd, hd);
      }
    }
  }

  /** The sum over the heads. */
  @Override
  public long storedBytes() {
    long b = 0;
    for (KvSegment h : heads) {
      b += h.storedBytes();
    }
    return b;
  }

  /** The rows kept in every head, without re-quantising (a head's subset left empty disappears). */
  @Override
  public KvSegment select(int[] rowsToKeep) {
    checkRows(rowsToKeep);
    KvSegment[] kept = new KvSegment[heads.length];
    for (int g = 0; g < heads.length; g++) {
      kept[g] = heads[g].select(rowsToKeep);
    }
    return new HeadSplitKvSegment(layout, kept);
  }

  /**
   * Head 0's chunks, then head 1's, ...; each tagged with its KV head, tensors {@code [rows, 1,
   * head_dim]}.
   */
  @Override
  public List<KvChunk> export(int firstEntry) {
    List<KvChunk> out = new ArrayList<>(chunkCount());
    for (int g = 0; g < heads.length; g++) {
      for (KvChunk c : heads[g].export(firstEntry)) {
        out.add(c.ofKvHead(g));
      }
    }
    return out;
  }

  @Override
  public int chunkCount() {
    int n = 0;
    for (KvSegment h : heads) {
      n += h.chunkCount();
    }
    return n;
  }

  @Override
  public String toString() {
    StringBuilder sb =
        new StringBuilder("HeadSplitKvSegment(rows=").append(rows).append(", ").append(layout);
    for (int g = 0; g < heads.length; g++) {
      sb.append(", ").append(g).append(": ").append(heads[g]);
    }
    return sb.append(')').toString();
  }
}
