package dev.tokenpress.operators.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Round-trip error bounds and edge cases of the ZipCache codecs and the mixed encoder. */
class KvQuantRoundTripTest {
  private static final int[] BITS = {8, 4, 2};

  /** Lucene-style awkward sizes: (rows, kvHeads, headDim). */
  private static final int[][] SIZES = {
    {1, 1, 1}, {1, 1, 13}, {7, 2, 4}, {13, 1, 13}, {64, 4, 16}, {65, 3, 7}, {256, 2, 64}
  };

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  private static float[] gaussian(SplittableRandom rnd, int n, double scale) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (rnd.nextGaussian() * scale);
    }
    return a;
  }

  /** Values with a few outlier channels, the case ZipCache's channel scaling is for. */
  private static float[] outlierValues(SplittableRandom rnd, int rows, int w) {
    float[] v = gaussian(rnd, rows * w, 1);
    for (int c = 0; c < w; c += 5) {
      for (int r = 0; r < rows; r++) {
        v[r * w + c] *= 20;
      }
    }
    return v;
  }

  /**
   * Bitwise equality of float arrays. (AssertJ's containsExactly diffs in quadratic time, too slow
   * for the larger sizes here.)
   */
  private static void assertSame(String what, float[] actual, float[] expected) {
    if (!java.util.Arrays.equals(actual, expected)) {
      int i = java.util.Arrays.mismatch(actual, expected);
      throw new AssertionError(what + ": first difference at " + i + " of " + expected.length);
    }
  }

  private static float[] keys(KvSegment s) {
    float[] out = new float[s.rows() * s.layout().width()];
    s.decodeKeys(out, 0);
    return out;
  }

  private static float[] values(KvSegment s) {
    float[] out = new float[s.rows() * s.layout().width()];
    s.decodeValues(out, 0);
    return out;
  }

  /** |x - deq| <= step/2 + eps per element, keys with per-channel step over the rows. */
  private static void assertKeyBound(
      float[] k, float[] deq, int rows, int w, int bits, String what) {
    int qmax = (1 << bits) - 1;
    for (int c = 0; c < w; c++) {
      float mn = Float.POSITIVE_INFINITY;
      float mx = Float.NEGATIVE_INFINITY;
      for (int r = 0; r < rows; r++) {
        mn = Math.min(mn, k[r * w + c]);
        mx = Math.max(mx, k[r * w + c]);
      }
      double step = ((double) mx - mn) / qmax;
      double eps = 4 * Math.ulp(Math.max(Math.abs(mn), Math.abs(mx)));
      for (int r = 0; r < rows; r++) {
        double err = Math.abs((double) k[r * w + c] - deq[r * w + c]);
        if (!(err <= step / 2 + eps)) { // plain check: AssertJ per element is slow at these sizes
          throw new AssertionError(
              what
                  + " key row "
                  + r
                  + " channel "
                  + c
                  + ": error "
                  + err
                  + " > step/2 + eps = "
                  + (step / 2 + eps));
        }
      }
    }
  }

  /** |x - deq| <= s_c * step_t / 2 + eps per element, values after channel scaling. */
  private static void assertValueBound(
      float[] v, float[] deq, int rows, int w, int bits, String what) {
    int qmax = (1 << bits) - 1;
    double[] s = new double[w];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < w; c++) {
        s[c] = Math.max(s[c], Math.abs(v[r * w + c]));
      }
    }
    for (int c = 0; c < w; c++) {
      s[c] = Math.sqrt(s[c]);
    }
    for (int r = 0; r < rows; r++) {
      double mn = Double.POSITIVE_INFINITY;
      double mx = Double.NEGATIVE_INFINITY;
      for (int c = 0; c < w; c++) {
        double u = s[c] == 0 ? 0 : v[r * w + c] / s[c];
        mn = Math.min(mn, u);
        mx = Math.max(mx, u);
      }
      double step = (mx - mn) / qmax;
      for (int c = 0; c < w; c++) {
        double x = v[r * w + c];
        double eps =
            1e-6 * (s[c] * Math.max(Math.abs(mn), Math.abs(mx)) + Math.abs(x)) + Float.MIN_VALUE;
        double err = Math.abs(x - deq[r * w + c]);
        if (!(err <= s[c] * step / 2 + eps)) {
          throw new AssertionError(
              what
                  + " value row "
                  + r
                  + " channel "
                  + c
                  + ": error "
                  + err
                  + " > s_c * step/2 + eps = "
                  + (s[c] * step / 2 + eps));
        }
      }
    }
  }

  @Test
  void roundTripErrorIsWithinHalfAStepForEveryBitWidthAndSize() {
    SplittableRandom rnd = new SplittableRandom(17);
    for (int[] size : SIZES) {
      KvLayout layout = new KvLayout(size[1], size[2]);
      int rows = size[0];
      int w = layout.width();
      float[] k = gaussian(rnd, rows * w, 2);
      float[] v = outlierValues(rnd, rows, w);
      float[] k0 = k.clone();
      float[] v0 = v.clone();
      for (int bits : BITS) {
        String what = rows + "x" + layout + " int" + bits;
        KvSegment s =
            KvCodec.of(KvPrecision.ofBits(bits))
                .encode(layout, k, v, rows, identity(rows), identity(rows));
        float[] kd = keys(s);
        float[] vd = values(s);
        assertKeyBound(k, kd, rows, w, bits, what);
        assertValueBound(v, vd, rows, w, bits, what);
        // the stored form dequantises to the same floats the kernels use
        KvChunk chunk = s.export(0).get(0);
        assertSame(what + " stored keys", chunk.k().dequantize(), kd);
        assertSame(what + " stored values", chunk.v().dequantize(), vd);
        assertThat(chunk.k().dataLength()).isEqualTo(rows * ((w + 8 / bits - 1) / (8 / bits)));
      }
      assertSame("input keys unchanged", k, k0);
      assertSame("input values unchanged", v, v0);
    }
  }

  @Test
  void int8IsNearlyExact() {
    SplittableRandom rnd = new SplittableRandom(5);
    KvLayout layout = new KvLayout(4, 16);
    int rows = 100;
    float[] k = gaussian(rnd, rows * 64, 1);
    float[] v = gaussian(rnd, rows * 64, 1);
    KvSegment s =
        ZipCacheCodec.ofBits(8).encode(layout, k, v, rows, identity(rows), identity(rows));
    float[] kd = keys(s);
    float[] vd = values(s);
    double maxK = 0;
    double maxV = 0;
    for (int i = 0; i < k.length; i++) {
      maxK = Math.max(maxK, Math.abs(k[i] - kd[i]));
      maxV = Math.max(maxV, Math.abs(v[i] - vd[i]));
    }
    // range of N(0,1) over 100 samples is < 7: step < 7/255, error < step/2
    assertThat(maxK).isLessThan(0.014);
    assertThat(maxV).isLessThan(0.02);
  }

  @Test
  void fp16RoundTripIsBoundedAndExportsExactly() {
    SplittableRandom rnd = new SplittableRandom(9);
    KvLayout layout = new KvLayout(2, 8);
    int rows = 30;
    float[] k = gaussian(rnd, rows * 16, 3);
    float[] v = gaussian(rnd, rows * 16, 3);
    KvSegment s =
        KvCodec.of(KvPrecision.FP16).encode(layout, k, v, rows, identity(rows), identity(rows));
    float[] kd = keys(s);
    for (int i = 0; i < k.length; i++) {
      assertThat(Math.abs(kd[i] - k[i])).isLessThanOrEqualTo(Math.abs(k[i]) * 0x1p-11f + 0x1p-25f);
    }
    KvChunk c = s.export(3).get(0);
    assertThat(c.k().dtype()).isEqualTo("float16");
    assertThat(c.k().dataLength()).isEqualTo(rows * 16 * 2);
    assertThat(c.k().dequantize()).containsExactly(kd);
    assertThat(c.v().dequantize()).containsExactly(values(s));
    assertThat(c.entries()[0]).isEqualTo(3);
    KvChunk f =
        KvCodec.of(KvPrecision.FP32)
            .encode(layout, k, v, rows, identity(rows), identity(rows))
            .export(0)
            .get(0);
    assertThat(f.k().dtype()).isEqualTo("float32");
    assertThat(f.k().dequantize()).containsExactly(k);
    assertThat(f.v().dequantize()).containsExactly(v);
  }

  @Test
  void allEqualInputsAndSingleTokens() {
    KvLayout layout = new KvLayout(2, 3);
    for (int bits : BITS) {
      float[] k = new float[4 * 6];
      float[] v = new float[4 * 6];
      java.util.Arrays.fill(k, 0.3f);
      java.util.Arrays.fill(v, -1.7f);
      KvSegment s = ZipCacheCodec.ofBits(bits).encode(layout, k, v, 4, identity(4), identity(4));
      assertThat(keys(s)).as("constant keys come back exactly").containsOnly(0.3f);
      for (float x : values(s)) {
        assertThat(Math.abs(x + 1.7f)).isLessThanOrEqualTo(2 * Math.ulp(1.7f));
      }
      KvTensor kt = s.export(0).get(0).k();
      assertThat(kt.scales()).containsOnly(0f);
      assertThat(kt.zeros()).containsOnly(0.3f);

      // one token: every key channel has a zero range, so keys are exact
      SplittableRandom rnd = new SplittableRandom(bits);
      float[] k1 = gaussian(rnd, 6, 1);
      float[] v1 = gaussian(rnd, 6, 1);
      KvSegment one =
          ZipCacheCodec.ofBits(bits).encode(layout, k1, v1, 1, new int[] {5}, new int[] {9});
      assertThat(keys(one)).containsExactly(k1);
      assertValueBound(v1, values(one), 1, 6, bits, "one token int" + bits);
      assertThat(one.tokenIndex(0)).isEqualTo(5);
      assertThat(one.position(0)).isEqualTo(9);
    }
  }

  @Test
  void zeroChannelsAndZeroRowsDequantiseToZero() {
    KvLayout layout = new KvLayout(1, 4);
    float[] k = {1, 2, 3, 4, 5, 6, 7, 8};
    float[] v = {0, 1, 2, 3, 0, 0, 0, 0};
    KvSegment s = ZipCacheCodec.ofBits(2).encode(layout, k, v, 2, identity(2), identity(2));
    float[] vd = values(s);
    assertThat(vd[0]).isZero();
    assertThat(vd[4]).isZero();
    assertThat(vd[5]).isZero();
    assertThat(vd[7]).isZero();
    KvSegment empty =
        ZipCacheCodec.ofBits(4)
            .encode(layout, new float[0], new float[0], 0, new int[0], new int[0]);
    assertThat(empty.rows()).isZero();
    assertThat(empty.export(0).get(0).k().dequantize()).isEmpty();
  }

  @Test
  void rejectsNonFiniteInputsAndOverflowingRanges() {
    KvLayout layout = new KvLayout(1, 2);
    float[] ok = {1, 2, 3, 4};
    float[] nan = {1, 2, Float.NaN, 4};
    float[] inf = {1, Float.NEGATIVE_INFINITY, 3, 4};
    KvCodec c = KvCodec.of(KvPrecision.INT4);
    assertThatThrownBy(() -> c.encode(layout, nan, ok, 2, identity(2), identity(2)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("key row 1 channel 0 is NaN");
    assertThatThrownBy(() -> c.encode(layout, ok, inf, 2, identity(2), identity(2)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("value row 0 channel 1 is -Infinity");
    assertThatThrownBy(
            () ->
                MixedPrecisionEncoder.ZIPVL.encode(
                    layout, ok, nan, 2, identity(2), identity(2), new boolean[] {true, false}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("NaN");
    float[] huge = {3e38f, 0, -3e38f, 0};
    assertThatThrownBy(() -> c.encode(layout, huge, ok, 2, identity(2), identity(2)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("overflows float32");
    assertThatThrownBy(() -> c.encode(layout, ok, ok, 3, identity(3), identity(3)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("need 6 floats");
    assertThatThrownBy(() -> c.allocate(layout, 4))
        .isInstanceOf(UnsupportedOperationException.class)
        .hasMessageContaining("recode");
    assertThatThrownBy(() -> new LayerKvCache(layout, c))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("append in FP32 or FP16");
    assertThatThrownBy(() -> new MixedPrecisionEncoder(2, 4))
        .hasMessageContaining("bitsLow 4 must not exceed");
    assertThatThrownBy(() -> new MixedPrecisionEncoder(3, 2))
        .hasMessageContaining("bitsHigh must be 8, 4 or 2");
    assertThatThrownBy(() -> ZipCacheCodec.ofBits(1)).hasMessageContaining("8, 4 or 2");
  }

  @Test
  void mixedPrecisionKeepsOrderAndQuantisesSubsetsSeparately() {
    SplittableRandom rnd = new SplittableRandom(23);
    KvLayout layout = new KvLayout(2, 5);
    int rows = 11;
    int w = layout.width();
    float[] k = gaussian(rnd, rows * w, 1);
    float[] v = outlierValues(rnd, rows, w);
    boolean[] imp = new boolean[rows];
    for (int r = 0; r < rows; r++) {
      imp[r] = r % 3 == 1;
    }
    boolean[] imp0 = imp.clone();
    float[] k0 = k.clone();
    KvSegment s =
        MixedPrecisionEncoder.ZIPVL.encode(layout, k, v, rows, identity(rows), identity(rows), imp);
    assertThat(imp).containsExactly(imp0);
    assertThat(k).containsExactly(k0);
    float[] kd = keys(s);
    // each subset equals the plain codec applied to that subset alone (keys: own channel
    // statistics)
    int[] hiRows = {1, 4, 7, 10};
    float[] kh = new float[hiRows.length * w];
    float[] vh = new float[hiRows.length * w];
    for (int i = 0; i < hiRows.length; i++) {
      System.arraycopy(k, hiRows[i] * w, kh, i * w, w);
      System.arraycopy(v, hiRows[i] * w, vh, i * w, w);
    }
    float[] khd = keys(ZipCacheCodec.ofBits(4).encode(layout, kh, vh, 4, identity(4), identity(4)));
    for (int i = 0; i < hiRows.length; i++) {
      for (int c = 0; c < w; c++) {
        assertThat(kd[hiRows[i] * w + c]).isEqualTo(khd[i * w + c]);
      }
    }
    for (int r = 0; r < rows; r++) {
      assertThat(s.precision(r)).isEqualTo(imp[r] ? KvPrecision.INT4 : KvPrecision.INT2);
      assertThat(s.tokenIndex(r)).isEqualTo(r);
    }
    // the value channel scale is shared by both chunks
    List<KvChunk> chunks = s.export(0);
    assertThat(chunks.get(0).v().channelScales())
        .containsExactly(chunks.get(1).v().channelScales());
    // all important or none: a plain segment
    boolean[] all = new boolean[rows];
    java.util.Arrays.fill(all, true);
    assertThat(
            MixedPrecisionEncoder.ZIPVL
                .encode(layout, k, v, rows, identity(rows), identity(rows), all)
                .precision(3))
        .isEqualTo(KvPrecision.INT4);
    assertThat(
            MixedPrecisionEncoder.ZIPVL
                .encode(layout, k, v, rows, identity(rows), identity(rows), new boolean[rows])
                .export(0))
        .hasSize(1);
  }

  @Test
  void layerCacheRecodesMixedGroupsAndStillAppends() {
    SplittableRandom rnd = new SplittableRandom(31);
    KvLayout layout = new KvLayout(2, 4);
    int w = layout.width();
    LayerKvCache c = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP16));
    int n = 20;
    float[] k = gaussian(rnd, n * w, 1);
    float[] v = gaussian(rnd, n * w, 1);
    int[] tok = new int[n];
    int[] pos = new int[n];
    for (int i = 0; i < n; i++) {
      tok[i] = 3 * i;
      pos[i] = 100 + i;
    }
    c.appendRows(k, 0, v, 0, n, tok, pos, 0);
    boolean[] imp = new boolean[10];
    imp[0] = true;
    imp[4] = true;
    imp[9] = true;
    c.recodeMixed(5, 15, imp, MixedPrecisionEncoder.ZIPVL);
    c.recode(15, 18, KvCodec.of(KvPrecision.INT8));
    assertThat(c.length()).isEqualTo(n);
    assertThat(c.tokenIndices()).containsExactly(tok);
    assertThat(c.positions()).containsExactly(pos);
    KvPrecision[] p = c.precisions();
    assertThat(p[4]).isEqualTo(KvPrecision.FP16);
    assertThat(p[5]).isEqualTo(KvPrecision.INT4);
    assertThat(p[6]).isEqualTo(KvPrecision.INT2);
    assertThat(p[9]).isEqualTo(KvPrecision.INT4);
    assertThat(p[14]).isEqualTo(KvPrecision.INT4);
    assertThat(p[15]).isEqualTo(KvPrecision.INT8);
    assertThat(p[18]).isEqualTo(KvPrecision.FP16);

    // appends go into a new fp16 segment after the sealed groups
    float[] row = gaussian(rnd, w, 1);
    c.append(row, 0, row, 0, 60, 120);
    assertThat(c.length()).isEqualTo(n + 1);
    assertThat(c.precisions()[n]).isEqualTo(KvPrecision.FP16);

    // chunks cover every entry once; scattering them by entries rebuilds keys() and values()
    float[] keys = c.keys();
    float[] vals = c.values();
    float[] kr = new float[keys.length];
    float[] vr = new float[vals.length];
    int[] tr = new int[c.length()];
    int seen = 0;
    for (KvChunk ch : c.chunks()) {
      float[] kk = ch.k().dequantize();
      float[] vv = ch.v().dequantize();
      int[] e = ch.entries();
      for (int i = 0; i < e.length; i++) {
        System.arraycopy(kk, i * w, kr, e[i] * w, w);
        System.arraycopy(vv, i * w, vr, e[i] * w, w);
        tr[e[i]] = ch.tokenIndex()[i];
        seen++;
      }
    }
    assertThat(seen).isEqualTo(c.length());
    assertThat(c.chunkCount()).isEqualTo(c.chunks().size());
    // fp16 chunks carry the stored halves: the same bytes as encoding their decoded floats
    for (KvChunk ch : c.chunks()) {
      if (ch.precision() == KvPrecision.FP16) {
        assertThat(ch.k().data())
            .containsExactly(
                KvTensor.ofFloats(KvPrecision.FP16, ch.k().shape(), ch.k().dequantize()).data());
        assertThat(ch.v().data())
            .containsExactly(
                KvTensor.ofFloats(KvPrecision.FP16, ch.v().shape(), ch.v().dequantize()).data());
      }
    }
    assertThat(kr).containsExactly(keys);
    assertThat(vr).containsExactly(vals);
    assertThat(tr).containsExactly(c.tokenIndices());

    // retain across the mixed group keeps the stored values (no re-quantisation)
    c.retain(new int[] {0, 5, 6, 9, 12, 16, 20});
    assertThat(c.tokenIndices()).containsExactly(0, 15, 18, 27, 36, 48, 60);
    assertThat(c.precisions())
        .containsExactly(
            KvPrecision.FP16,
            KvPrecision.INT4,
            KvPrecision.INT2,
            KvPrecision.INT4,
            KvPrecision.INT2,
            KvPrecision.INT8,
            KvPrecision.FP16);
    float[] after = c.keys();
    int[] kept = {0, 5, 6, 9, 12, 16, 20};
    for (int i = 0; i < kept.length; i++) {
      for (int d = 0; d < w; d++) {
        assertThat(after[i * w + d]).isEqualTo(keys[kept[i] * w + d]);
      }
    }
    // a subset of only important rows becomes a plain int4 segment
    c.retain(new int[] {1, 3, 6});
    assertThat(c.precisions())
        .containsExactly(KvPrecision.INT4, KvPrecision.INT4, KvPrecision.FP16);
    assertThatThrownBy(() -> c.recodeMixed(0, 2, new boolean[3], MixedPrecisionEncoder.ZIPVL))
        .hasMessageContaining("important mask has 3 entries");
  }

  /** The numbers quoted in the report: N(0,1), 256 tokens x 64 channels (4 KV heads x 16). */
  @Test
  void measuredErrorsOnGaussian256x64() {
    SplittableRandom rnd = new SplittableRandom(2024);
    KvLayout layout = new KvLayout(4, 16);
    int rows = 256;
    float[] k = gaussian(rnd, rows * 64, 1);
    float[] v = gaussian(rnd, rows * 64, 1);
    boolean[] imp = new boolean[rows];
    for (int r = 0; r < rows; r++) {
      imp[r] = r % 10 < 3; // 30% important
    }
    KvSegment[] segs = {
      KvCodec.of(KvPrecision.FP16).encode(layout, k, v, rows, identity(rows), identity(rows)),
      ZipCacheCodec.ofBits(8).encode(layout, k, v, rows, identity(rows), identity(rows)),
      ZipCacheCodec.ofBits(4).encode(layout, k, v, rows, identity(rows), identity(rows)),
      ZipCacheCodec.ofBits(2).encode(layout, k, v, rows, identity(rows), identity(rows)),
      MixedPrecisionEncoder.ZIPVL.encode(layout, k, v, rows, identity(rows), identity(rows), imp),
    };
    String[] names = {"fp16", "int8", "int4", "int2", "mixed 4/2 (30% at 4)"};
    double prevRms = 0;
    for (int i = 0; i < segs.length; i++) {
      float[] kd = keys(segs[i]);
      float[] vd = values(segs[i]);
      double[] mk = stats(k, kd);
      double[] mv = stats(v, vd);
      System.out.printf(
          Locale.ROOT,
          "KV round trip %-22s K max %.3e rms %.3e | V max %.3e rms %.3e | %d bytes%n",
          names[i],
          mk[0],
          mk[1],
          mv[0],
          mv[1],
          segs[i].storedBytes());
      if (i <= 3) { // fewer bits, larger error
        assertThat(mk[1]).isGreaterThan(prevRms);
        prevRms = mk[1];
      }
    }
  }

  private static double[] stats(float[] x, float[] y) {
    double max = 0;
    double ss = 0;
    for (int i = 0; i < x.length; i++) {
      double e = Math.abs((double) x[i] - y[i]);
      max = Math.max(max, e);
      ss += e * e;
    }
    return new double[] {max, Math.sqrt(ss / x.length)};
  }
}
