package dev.tokenpress.operators.kv;

import java.util.Arrays;
import java.util.List;

/**
 * A sealed group of KV rows in the ZipCache integer format ({@link ZipCacheQuantizer}): packed key
 * codes with per-channel scale and zero, packed value codes with per-token scale and zero plus the
 * value channel scales. Kernels read the packed codes in place without dequantising them: {@link
 * #keyScores} folds the query into the key channel scales and {@link #accumulateValues} sums
 * weighted codes per channel, applying the scales once per call (algebraically the dequantised
 * floats' attention; equal to it within float rounding, see KvDecodeAttentionTest).
 */
final class QuantizedKvSegment extends KvSegment {
  /**
   * {@code CODE[c] = c}: a code's float by a table load (measured faster than int-to-float
   * conversion).
   */
  private static final float[] CODE = new float[256];

  static {
    for (int c = 0; c < CODE.length; c++) {
      CODE[c] = c;
    }
  }

  private final int bits;
  private final int mask;
  private final int rowBytes;
  private final byte[] kCodes;
  private final float[] kScale; // per channel
  private final float[] kZero; // per channel
  private final byte[] vCodes;
  private final float[] vScale; // per token
  private final float[] vZero; // per token
  private final float[] vChannelScale; // per channel
  private final int[][] runs; // per KV head: byte-plane runs of its channels, see runs()
  // kernel scratch, kept between calls (a segment belongs to one sequence): folded queries or
  // value sums per query head, and the per-head zero dots or weighted zero sums
  private float[] scratch;
  private float[] zeroDots;

  private QuantizedKvSegment(
      KvLayout layout,
      int rows,
      int bits,
      byte[] kCodes,
      float[] kScale,
      float[] kZero,
      byte[] vCodes,
      float[] vScale,
      float[] vZero,
      float[] vChannelScale,
      int[] tokenIndex,
      int[] position) {
    super(layout, rows);
    this.bits = bits;
    this.mask = (1 << bits) - 1;
    this.rowBytes = ZipCacheQuantizer.rowBytes(layout.width(), bits);
    this.kCodes = kCodes;
    this.kScale = kScale;
    this.kZero = kZero;
    this.vCodes = vCodes;
    this.vScale = vScale;
    this.vZero = vZero;
    this.vChannelScale = vChannelScale;
    this.runs = runs(layout, rowBytes, bits);
    this.scratch = new float[layout.headDim()];
    this.zeroDots = new float[1];
    this.rows = rows;
    for (int r = 0; r < rows; r++) {
      setBookkeeping(r, tokenIndex[r], position[r]);
    }
  }

  /**
   * Quantises {@code rows} rows (from offset 0). {@code channelScale} is the value channel scale to
   * use, or null to compute it over these rows.
   */
  static QuantizedKvSegment encode(
      KvLayout layout,
      int bits,
      float[] k,
      float[] v,
      int rows,
      int[] tokenIndex,
      int[] position,
      float[] channelScale) {
    ZipCacheQuantizer.checkBits(bits);
    int w = layout.width();
    checkInputs(layout, k, v, rows, tokenIndex, position);
    ZipCacheQuantizer.checkFinite("key", k, rows, w);
    ZipCacheQuantizer.checkFinite("value", v, rows, w);
    int[] codes = new int[rows * w];
    float[] kScale = new float[w];
    float[] kZero = new float[w];
    ZipCacheQuantizer.quantizeKeys(k, rows, w, bits, codes, kScale, kZero);
    byte[] kPacked = ZipCacheQuantizer.pack(codes, rows, w, bits);
    float[] s =
        channelScale != null ? channelScale.clone() : ZipCacheQuantizer.channelScales(v, rows, w);
    float[] vScale = new float[rows];
    float[] vZero = new float[rows];
    ZipCacheQuantizer.quantizeValues(v, rows, w, bits, s, codes, vScale, vZero);
    byte[] vPacked = ZipCacheQuantizer.pack(codes, rows, w, bits);
    return new QuantizedKvSegment(
        layout,
        rows,
        bits,
        kPacked,
        kScale,
        kZero,
        vPacked,
        vScale,
        vZero,
        s,
        tokenIndex,
        position);
  }

  /**
   * The group of a stored ZipCache chunk, with its codes and metadata as stored (no
   * re-quantisation): K of layout {@code zipcache_key_per_channel}, V of layout {@code
   * zipcache_value_per_token}, both of the chunk's bit width and of shape {@code [rows,
   * layout.numKvHeads(), layout.headDim()]}.
   */
  static QuantizedKvSegment ofChunk(KvLayout layout, KvChunk c) {
    KvTensor k = c.k();
    KvTensor v = c.v();
    int bits = c.precision().bits();
    if (!c.precision().quantized() || k.bits() != bits || v.bits() != bits) {
      throw new IllegalArgumentException(
          "a ZipCache chunk needs k and v of one integer precision, found "
              + c.precision()
              + " with k bits "
              + k.bits()
              + " and v bits "
              + v.bits());
    }
    if (!KvCodecs.LAYOUT_KEY.equals(k.layout()) || !KvCodecs.LAYOUT_VALUE.equals(v.layout())) {
      throw new IllegalArgumentException(
          "a ZipCache chunk needs k of layout "
              + KvCodecs.LAYOUT_KEY
              + " and v of"
              + " layout "
              + KvCodecs.LAYOUT_VALUE
              + ", found "
              + k.layout()
              + " and "
              + v.layout());
    }
    if (k.width() != layout.width()) {
      throw new IllegalArgumentException("chunk of width " + k.width() + " does not fit " + layout);
    }
    return new QuantizedKvSegment(
        layout,
        c.rows(),
        bits,
        k.data(),
        k.scales(),
        k.zeros(),
        v.data(),
        v.scales(),
        v.zeros(),
        v.channelScales(),
        c.tokenIndex(),
        c.position());
  }

  static void checkInputs(
      KvLayout layout, float[] k, float[] v, int rows, int[] tokenIndex, int[] position) {
    if (rows < 0) {
      throw new IllegalArgumentException("rows must be >= 0, found " + rows);
    }
    long n = (long) rows * layout.width();
    if (k.length < n || v.length < n) {
      throw new IllegalArgumentException(
          rows
              + " rows of "
              + layout
              + " need "
              + n
              + " floats, k has "
              + k.length
              + " and v has "
              + v.length);
    }
    if (tokenIndex.length < rows || position.length < rows) {
      throw new IllegalArgumentException(
          rows
              + " rows need as many token indices and positions, found "
              + tokenIndex.length
              + " and "
              + position.length);
    }
  }

  int bits() {
    return bits;
  }

  @Override
  public KvPrecision precision() {
    return KvPrecision.ofBits(bits);
  }

  /** Writes the {@code width} dequantised keys of row r. */
  void decodeKeyRow(int r, float[] dst, int dstOff) {
    int w = layout.width();
    for (int c = 0; c < w; c++) {
      int code = ZipCacheQuantizer.unpack(kCodes, r, c, rowBytes, bits);
      dst[dstOff + c] = code * kScale[c] + kZero[c];
    }
  }

  /** Writes the {@code width} dequantised values of row r. */
  void decodeValueRow(int r, float[] dst, int dstOff) {
    int w = layout.width();
    float st = vScale[r];
    float zr = vZero[r];
    for (int c = 0; c < w; c++) {
      int code = ZipCacheQuantizer.unpack(vCodes, r, c, rowBytes, bits);
      dst[dstOff + c] = (code * st + zr) * vChannelScale[c];
    }
  }

  @Override
  public void keyScores(int kvHead, float[] q, int qOff, float scale, float[] out, int outOff) {
    keyScores(kvHead, q, qOff, 1, scale, out, outOff, 0, null);
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
    keyScores(kvHead, q, qOff, qHeads, scale, out, outOff, outStride, null);
  }

  /**
   * {@link #keyScores(int, float[], int, int, float, float[], int, int)} writing row {@code r}'s
   * scores at {@code out[outOff + i·outStride + at[r]]} ({@code at} null: at {@code r}). Fused
   * dequant-dot: each query head {@code i} is folded into the key channel scales once per call
   * ({@code qs[d] = q[d]·scale_c}, {@code z_i = Σ_d q[d]·zero_c}); a query head's score is then
   * {@code (z_i + Σ_d qs[d]·code_d)·scale} (two partial sums, even and odd channels), read straight
   * from the packed codes in byte-plane runs (constant shift), each code unpacked once for a pair
   * of query heads. Equals the dot over the dequantised keys up to float rounding.
   */
  void keyScores(
      int kvHead,
      float[] q,
      int qOff,
      int qHeads,
      float scale,
      float[] out,
      int outOff,
      int outStride,
      int[] at) {
    int hd = layout.headDim();
    int c0 = kvHead * hd;
    float[] qs = scratch(qHeads);
    float[] z = zeroDots;
    for (int i = 0; i < qHeads; i++) {
      float zi = 0f;
      for (int d = 0; d < hd; d++) {
        float x = q[qOff + i * hd + d];
        qs[i * hd + d] = x * kScale[c0 + d];
        zi += x * kZero[c0 + d];
      }
      z[i] = zi;
    }
    int[] run = runs[kvHead];
    int m = mask;
    byte[] codes = kCodes;
    int n = rows;
    int rb = rowBytes;
    for (int i = 0; i < qHeads; i += 2) {
      boolean pair = i + 1 < qHeads;
      int o = i * hd;
      int o1 = pair ? o + hd : o; // a lone last head computes its sums twice
      int oo = outOff + i * outStride;
      for (int r = 0; r < n; r++) {
        int ro = r * rb;
        float a0 = 0f;
        float a1 = 0f;
        float b0 = 0f;
        float b1 = 0f;
        for (int x = 0; x < run.length; x += 4) {
          int b = ro + run[x];
          int len = run[x + 1];
          int sh = run[x + 2];
          int d = run[x + 3];
          int t = 0;
          for (; t + 1 < len; t += 2) {
            float c = CODE[((codes[b + t] & 0xff) >>> sh) & m];
            float e = CODE[((codes[b + t + 1] & 0xff) >>> sh) & m];
            a0 += qs[o + d + t] * c;
            a1 += qs[o + d + t + 1] * e;
            b0 += qs[o1 + d + t] * c;
            b1 += qs[o1 + d + t + 1] * e;
          }
          if (t < len) {
            float c = CODE[((codes[b + t] & 0xff) >>> sh) & m];
            a0 += qs[o + d + t] * c;
            b0 += qs[o1 + d + t] * c;
          }
        }
        int col = at == null ? r : at[r];
        out[oo + col] = (z[i] + (a0 + a1)) * scale;
        if (pair) {
          out[oo + outStride + col] = (z[i + 1] + (b0 + b1)) * scale;
        }
      }
    }
  }

  @Override
  public void accumulateValues(int kvHead, float[] w, int wOff, float[] out, int outOff) {
    accumulateValues(kvHead, w, wOff, 0, 1, out, outOff, null);
  }

  @Override
  public void accumulateValues(
      int kvHead, float[] w, int wOff, int wStride, int qHeads, float[] out, int outOff) {
    accumulateValues(kvHead, w, wOff, wStride, qHeads, out, outOff, null);
  }

  /**
   * {@link #accumulateValues(int, float[], int, int, int, float[], int)} taking row {@code r}'s
   * weights from {@code w[wOff + i·wStride + at[r]]} ({@code at} null: {@code r}). Fused
   * dequant-accumulate: {@code Σ_r p_r·(code·st_r + zr_r)·s_c = s_c·(Σ_r (p_r·st_r)·code + Σ_r
   * p_r·zr_r)}: each code, unpacked once for a pair of query heads, is added as {@code (p·st)·code}
   * into each head's per-channel scratch sums, and the channel scales are applied once at the end;
   * a row whose weights are 0 is skipped. Equals the sum over the dequantised values up to float
   * rounding.
   */
  void accumulateValues(
      int kvHead, float[] w, int wOff, int wStride, int qHeads, float[] out, int outOff, int[] at) {
    int hd = layout.headDim();
    int c0 = kvHead * hd;
    float[] acc = scratch(qHeads);
    float[] zs = zeroDots;
    for (int i = 0; i < qHeads * hd; i++) {
      acc[i] = 0f;
    }
    int[] run = runs[kvHead];
    int m = mask;
    byte[] codes = vCodes;
    int rb = rowBytes;
    for (int i = 0; i < qHeads; i += 2) {
      boolean pair = i + 1 < qHeads;
      int o = i * hd;
      int o1 = pair ? o + hd : o;
      int w0 = wOff + i * wStride;
      int w1 = pair ? w0 + wStride : w0;
      float z0 = 0f;
      float z1 = 0f;
      for (int r = 0; r < rows; r++) {
        int col = at == null ? r : at[r];
        float p0 = w[w0 + col];
        float p1 = pair ? w[w1 + col] : 0f;
        if (p0 == 0f && p1 == 0f) {
          continue;
        }
        float st = vScale[r];
        float zr = vZero[r];
        float s0 = p0 * st;
        float s1 = p1 * st;
        z0 += p0 * zr;
        z1 += p1 * zr;
        int ro = r * rb;
        for (int x = 0; x < run.length; x += 4) {
          int b = ro + run[x];
          int len = run[x + 1];
          int sh = run[x + 2];
          int d = run[x + 3];
          for (int t = 0; t < len; t++) {
            float c = CODE[((codes[b + t] & 0xff) >>> sh) & m];
            acc[o + d + t] += s0 * c;
            acc[o1 + d + t] += s1 * c;
          }
        }
      }
      zs[i] = z0;
      if (pair) {
        zs[i + 1] = z1;
      }
    }
    for (int i = 0; i < qHeads; i++) {
      int o = i * hd;
      for (int d = 0; d < hd; d++) {
        out[outOff + o + d] += vChannelScale[c0 + d] * (acc[o + d] + zs[i]);
      }
    }
  }

  /** The kernels' scratch of {@code qHeads * headDim} floats, grown on first need and kept. */
  private float[] scratch(int qHeads) {
    int n = qHeads * layout.headDim();
    if (scratch.length < n) {
      scratch = new float[n];
      zeroDots = new float[qHeads];
    }
    return scratch;
  }

  /**
   * Per KV head, its channels as runs within one byte plane: {@code {byte, length, shift, channel
   * offset in the head}} per run, four ints each.
   */
  private static int[][] runs(KvLayout layout, int rowBytes, int bits) {
    int hd = layout.headDim();
    int[][] out = new int[layout.numKvHeads()][];
    for (int g = 0; g < out.length; g++) {
      int[] tmp = new int[4 * (hd + 1)];
      int k = 0;
      int c = g * hd;
      int end = c + hd;
      while (c < end) {
        int plane = c / rowBytes;
        int i = c - plane * rowBytes;
        int n = Math.min(end - c, rowBytes - i);
        tmp[k++] = i;
        tmp[k++] = n;
        tmp[k++] = plane * bits;
        tmp[k++] = c - g * hd;
        c += n;
      }
      out[g] = Arrays.copyOf(tmp, k);
    }
    return out;
  }

  @Override
  public void decodeKeys(float[] dst, int dstOff) {
    int w = layout.width();
    for (int r = 0; r < rows; r++) {
      decodeKeyRow(r, dst, dstOff + r * w);
    }
  }

  @Override
  public void decodeValues(float[] dst, int dstOff) {
    int w = layout.width();
    for (int r = 0; r < rows; r++) {
      decodeValueRow(r, dst, dstOff + r * w);
    }
  }

  /** Packed codes of K and V plus all scale/zero metadata as float32. */
  @Override
  public long storedBytes() {
    int w = layout.width();
    return 2L * rows * rowBytes + (long) Float.BYTES * (3L * w + 2L * rows);
  }

  /**
   * The kept rows with their codes and metadata unchanged (no re-quantisation): each kept row
   * dequantises to the same floats as before. Key channel scale/zero still describe the group the
   * rows were quantised in.
   */
  @Override
  public QuantizedKvSegment select(int[] rowsToKeep) {
    checkRows(rowsToKeep);
    int n = rowsToKeep.length;
    byte[] kc = new byte[n * rowBytes];
    byte[] vc = new byte[n * rowBytes];
    float[] vs = new float[n];
    float[] vz = new float[n];
    int[] ti = new int[n];
    int[] ps = new int[n];
    for (int i = 0; i < n; i++) {
      int r = rowsToKeep[i];
      System.arraycopy(kCodes, r * rowBytes, kc, i * rowBytes, rowBytes);
      System.arraycopy(vCodes, r * rowBytes, vc, i * rowBytes, rowBytes);
      vs[i] = vScale[r];
      vz[i] = vZero[r];
      ti[i] = tokenIndex[r];
      ps[i] = position[r];
    }
    return new QuantizedKvSegment(
        layout,
        n,
        bits,
        kc,
        kScale.clone(),
        kZero.clone(),
        vc,
        vs,
        vz,
        vChannelScale.clone(),
        ti,
        ps);
  }

  /** This segment as one chunk whose rows are the layer entries {@code entries}. */
  KvChunk chunk(int[] entries) {
    int[] shape = {rows, layout.numKvHeads(), layout.headDim()};
    String dtype = KvCodecs.dtype(precision());
    KvTensor k =
        new KvTensor(
            dtype,
            KvCodecs.LAYOUT_KEY,
            shape,
            bits,
            rows,
            kScale.clone(),
            kZero.clone(),
            new float[0],
            kCodes.clone());
    KvTensor v =
        new KvTensor(
            dtype,
            KvCodecs.LAYOUT_VALUE,
            shape,
            bits,
            layout.width(),
            vScale.clone(),
            vZero.clone(),
            vChannelScale.clone(),
            vCodes.clone());
    return new KvChunk(
        entries, Arrays.copyOf(tokenIndex, rows), Arrays.copyOf(position, rows), precision(), k, v);
  }

  @Override
  public List<KvChunk> export(int firstEntry) {
    int[] entries = new int[rows];
    for (int r = 0; r < rows; r++) {
      entries[r] = firstEntry + r;
    }
    return List.of(chunk(entries));
  }

  @Override
  public String toString() {
    return "QuantizedKvSegment(int" + bits + ", rows=" + rows + ", " + layout + ")";
  }
}
