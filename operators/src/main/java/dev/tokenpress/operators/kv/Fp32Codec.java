package dev.tokenpress.operators.kv;

import java.util.Arrays;

/** Full-precision KV storage: the reference every other codec is measured against. */
public final class Fp32Codec implements KvCodec {
  static final Fp32Codec INSTANCE = new Fp32Codec();

  private Fp32Codec() {}

  @Override
  public KvPrecision precision() {
    return KvPrecision.FP32;
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
    return "Fp32Codec";
  }

  static final class Segment extends KvSegment {
    private float[] k;
    private float[] v;

    Segment(KvLayout layout, int capacity) {
      super(layout, capacity);
      int n = Math.max(capacity, 1) * layout.width();
      k = new float[n];
      v = new float[n];
    }

    @Override
    public KvPrecision precision() {
      return KvPrecision.FP32;
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
      System.arraycopy(kSrc, kOff, k, rows * w, w);
      System.arraycopy(vSrc, vOff, v, rows * w, w);
      setBookkeeping(rows, tokenIdx, pos);
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
          acc += q[qOff + d] * k[ko + d];
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
          out[outOff + d] += p * v[vo + d];
        }
      }
    }

    @Override
    public void decodeKeys(float[] dst, int dstOff) {
      System.arraycopy(k, 0, dst, dstOff, rows * layout.width());
    }

    @Override
    public void decodeValues(float[] dst, int dstOff) {
      System.arraycopy(v, 0, dst, dstOff, rows * layout.width());
    }

    @Override
    public long storedBytes() {
      return 2L * rows * layout.width() * Float.BYTES;
    }

    @Override
    public KvSegment select(int[] rowsToKeep) {
      checkRows(rowsToKeep);
      Segment s = new Segment(layout, rowsToKeep.length);
      int w = layout.width();
      for (int r : rowsToKeep) {
        s.append(k, r * w, v, r * w, tokenIndex[r], position[r]);
      }
      return s;
    }
  }
}
