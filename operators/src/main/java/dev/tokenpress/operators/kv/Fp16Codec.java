package dev.tokenpress.operators.kv;

import java.util.Arrays;
import java.util.List;

/** Half-precision KV storage (IEEE binary16, round to nearest even), dequantized in the kernels. */
public final class Fp16Codec implements KvCodec {
  static final Fp16Codec INSTANCE = new Fp16Codec();

  private Fp16Codec() {}

  @Override
  public KvPrecision precision() {
    return KvPrecision.FP16;
  }

  @Override
  public KvSegment allocate(KvLayout layout, int capacity) {
    return new Segment(layout, capacity);
  }

  @Override
  public KvSegment encode(
      KvLayout layout, float[] k, float[] v, int rows, int[] tokenIndex, int[] position) {
    Segment s = new Segment(layout, rows);
    int w = layout.width();
    for (int r = 0; r < rows; r++) {
      s.append(k, r * w, v, r * w, tokenIndex[r], position[r]);
    }
    return s;
  }

  @Override
  public String toString() {
    return "Fp16Codec";
  }

  static final class Segment extends KvSegment {
    private short[] k;
    private short[] v;

    Segment(KvLayout layout, int capacity) {
      super(layout, capacity);
      int n = Math.max(capacity, 1) * layout.width();
      k = new short[n];
      v = new short[n];
    }

    @Override
    public KvPrecision precision() {
      return KvPrecision.FP16;
    }

    @Override
    public boolean appendable() {
      return true;
    }

    @Override
    public void append(float[] kSrc, int kOff, float[] vSrc, int vOff, int tokenIdx, int pos) {
      int w = layout.width();
      growBookkeeping(rows + 1);
      if ((rows + 1) * w > k.length) {
        int cap = Math.max((rows + 1) * w, k.length * 2);
        k = Arrays.copyOf(k, cap);
        v = Arrays.copyOf(v, cap);
      }
      int o = rows * w;
      for (int i = 0; i < w; i++) {
        k[o + i] = Fp16.fromFloat(kSrc[kOff + i]);
        v[o + i] = Fp16.fromFloat(vSrc[vOff + i]);
      }
      setBookkeeping(rows, tokenIdx, pos);
      rows++;
    }

    /** The stored halves as they are: no decode to float and encode back. */
    @Override
    public List<KvChunk> export(int firstEntry) {
      int n = rows * layout.width();
      int[] shape = exportShape();
      return List.of(
          chunk(firstEntry, KvTensor.ofHalves(shape, k, n), KvTensor.ofHalves(shape, v, n)));
    }

    /**
     * The rows of a stored FP16 chunk (little-endian halves of {@code [rows, W]}) as they are: no
     * rounding through float.
     */
    static Segment ofStored(KvLayout layout, byte[] k, byte[] v, int[] tokenIndex, int[] position) {
      int rows = tokenIndex.length;
      int n = rows * layout.width();
      if (k.length != n * Short.BYTES || v.length != n * Short.BYTES) {
        throw new IllegalArgumentException(
            rows
                + " FP16 rows of "
                + layout
                + " need "
                + n * Short.BYTES
                + " bytes each for k and v, found "
                + k.length
                + " and "
                + v.length);
      }
      Segment s = new Segment(layout, rows);
      for (int i = 0; i < n; i++) {
        s.k[i] = (short) ((k[2 * i] & 0xff) | (k[2 * i + 1] << 8));
        s.v[i] = (short) ((v[2 * i] & 0xff) | (v[2 * i + 1] << 8));
      }
      for (int r = 0; r < rows; r++) {
        s.setBookkeeping(r, tokenIndex[r], position[r]);
      }
      s.rows = rows;
      return s;
    }

    private void appendRaw(Segment from, int r) {
      int w = layout.width();
      growBookkeeping(rows + 1);
      System.arraycopy(from.k, r * w, k, rows * w, w);
      System.arraycopy(from.v, r * w, v, rows * w, w);
      setBookkeeping(rows, from.tokenIndex[r], from.position[r]);
      rows++;
    }

    @Override
    public void keyScores(int kvHead, float[] q, int qOff, float scale, float[] out, int outOff) {
      int w = layout.width();
      int hd = layout.headDim();
      int base = kvHead * hd;
      for (int r = 0; r < rows; r++) {
        int ko = r * w + base;
        float acc = 0f;
        for (int d = 0; d < hd; d++) {
          acc += q[qOff + d] * Fp16.toFloat(k[ko + d]);
        }
        out[outOff + r] = acc * scale;
      }
    }

    @Override
    public void accumulateValues(int kvHead, float[] wts, int wOff, float[] out, int outOff) {
      int w = layout.width();
      int hd = layout.headDim();
      int base = kvHead * hd;
      for (int r = 0; r < rows; r++) {
        float p = wts[wOff + r];
        int vo = r * w + base;
        for (int d = 0; d < hd; d++) {
          out[outOff + d] += p * Fp16.toFloat(v[vo + d]);
        }
      }
    }

    @Override
    public void decodeKeys(float[] dst, int dstOff) {
      int n = rows * layout.width();
      for (int i = 0; i < n; i++) {
        dst[dstOff + i] = Fp16.toFloat(k[i]);
      }
    }

    @Override
    public void decodeValues(float[] dst, int dstOff) {
      int n = rows * layout.width();
      for (int i = 0; i < n; i++) {
        dst[dstOff + i] = Fp16.toFloat(v[i]);
      }
    }

    @Override
    public long storedBytes() {
      return 2L * rows * layout.width() * Short.BYTES;
    }

    @Override
    public KvSegment select(int[] rowsToKeep) {
      checkRows(rowsToKeep);
      Segment s = new Segment(layout, rowsToKeep.length);
      for (int r : rowsToKeep) {
        s.appendRaw(this, r);
      }
      return s;
    }
  }
}
