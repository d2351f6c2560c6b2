package dev.tokenpress.operators.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.kernels.DecodeAttention;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Decode attention reads quantised segments in place (dequantising on the fly): its output over an
 * int8/int4/int2/mixed cache equals its output over the dequantised floats held in FP32.
 */
class KvDecodeAttentionTest {
  private static final int[] LENGTHS = {1, 7, 64, 130, 577};

  private static float[] gaussian(SplittableRandom rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }

  /** A cache of {@code len} entries in several precisions, ending with an fp16 tail. */
  private static LayerKvCache quantisedCache(
      KvLayout layout, float[] k, float[] v, int len, int mode) {
    LayerKvCache c = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP16));
    int[] idx = new int[len];
    for (int i = 0; i < len; i++) {
      idx[i] = i;
    }
    c.appendRows(k, 0, v, 0, len, idx, idx, 0);
    int a = len / 3;
    int b = 2 * len / 3;
    switch (mode) {
      case 0:
        c.recode(0, len, KvCodec.of(KvPrecision.INT4));
        break;
      case 1:
        c.recode(0, len, KvCodec.of(KvPrecision.INT2));
        break;
      case 2:
        c.recode(0, len, KvCodec.of(KvPrecision.INT8));
        break;
      default:
        {
          boolean[] imp = new boolean[b];
          for (int i = 0; i < b; i++) {
            imp[i] = i % 4 == 0;
          }
          c.recodeMixed(0, b, imp, MixedPrecisionEncoder.ZIPVL);
          if (b < len) {
            c.recode(b, len, KvCodec.of(KvPrecision.INT8));
          }
          if (a < b) {
            c.recode(a, a + 1, KvCodec.of(KvPrecision.INT2));
          }
          break;
        }
    }
    return c;
  }

  /**
   * Decode attention of {@code q} over {@code quant} equals attention over its dequantised floats
   * stored exactly (fp32): outputs and probabilities within 1e-5.
   */
  static void assertAttendsLikeItsFloats(
      DecodeAttention att,
      float[] q,
      LayerKvCache quant,
      int heads,
      float scale,
      float[] bias,
      String what) {
    int len = quant.length();
    int hd = quant.layout().headDim();
    LayerKvCache ref = new LayerKvCache(quant.layout(), KvCodec.of(KvPrecision.FP32));
    ref.appendRows(
        quant.keys(), 0, quant.values(), 0, len, quant.tokenIndices(), quant.positions(), 0);
    float[] out = new float[heads * hd];
    float[] probs = new float[heads * len];
    att.attend(q, 0, quant, heads, scale, bias, out, 0, probs);
    float[] expect = new float[heads * hd];
    float[] expectProbs = new float[heads * len];
    att.attend(q, 0, ref, heads, scale, bias, expect, 0, expectProbs);
    for (int i = 0; i < out.length; i++) {
      assertThat(out[i]).as("%s element %d", what, i).isCloseTo(expect[i], within(1e-5f));
    }
    for (int i = 0; i < probs.length; i++) {
      assertThat(probs[i])
          .as("%s probability %d", what, i)
          .isCloseTo(expectProbs[i], within(1e-5f));
    }
  }

  @Test
  void attentionOverQuantisedCacheEqualsAttentionOverItsDequantisedFloats() {
    int heads = 8;
    int kvHeads = 2;
    int hd = 12; // int2 packs 24 channels into 6 bytes per row: heads start mid-byte-column
    KvLayout layout = new KvLayout(kvHeads, hd);
    SplittableRandom rnd = new SplittableRandom(41);
    DecodeAttention att = new DecodeAttention();
    float scale = (float) (1 / Math.sqrt(hd));
    for (int len : LENGTHS) {
      for (int mode = 0; mode < 4; mode++) {
        float[] k = gaussian(rnd, len * layout.width());
        float[] v = gaussian(rnd, len * layout.width());
        float[] q = gaussian(rnd, heads * hd);
        float[] bias = new float[len];
        for (int j = 0; j < len; j++) {
          bias[j] = j % 5 == 1 ? -1e9f : 0.1f * (float) rnd.nextGaussian();
        }
        LayerKvCache quant = quantisedCache(layout, k, v, len, mode);
        assertAttendsLikeItsFloats(
            att, q, quant, heads, scale, bias, "len " + len + " mode " + mode);
      }
    }
  }

  @Test
  void attentionErrorGrowsAsBitsShrink() {
    int heads = 4;
    int kvHeads = 4;
    int hd = 32;
    int len = 200;
    KvLayout layout = new KvLayout(kvHeads, hd);
    SplittableRandom rnd = new SplittableRandom(3);
    float[] k = gaussian(rnd, len * layout.width());
    float[] v = gaussian(rnd, len * layout.width());
    float[] q = gaussian(rnd, heads * hd);
    for (int i = 0; i < q.length; i++) {
      q[i] *= 3; // peaked attention, so the output is not just the mean of V
    }
    int[] idx = new int[len];
    for (int i = 0; i < len; i++) {
      idx[i] = i;
    }
    LayerKvCache full = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP32));
    full.appendRows(k, 0, v, 0, len, idx, idx, 0);
    DecodeAttention att = new DecodeAttention();
    float scale = (float) (1 / Math.sqrt(hd));
    float[] a = new float[heads * hd];
    att.attend(q, 0, full, heads, scale, null, a, 0, null);
    double prev = 0;
    for (int bits : new int[] {8, 4, 2}) {
      LayerKvCache c = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP32));
      c.appendRows(k, 0, v, 0, len, idx, idx, 0);
      c.recode(0, len, KvCodec.of(KvPrecision.ofBits(bits)));
      float[] b = new float[heads * hd];
      att.attend(q, 0, c, heads, scale, null, b, 0, null);
      double num = 0;
      double den = 0;
      for (int i = 0; i < a.length; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += a[i] * a[i];
      }
      double rel = Math.sqrt(num / den);
      assertThat(rel).as("relative error of int%d attention output", bits).isGreaterThan(prev);
      if (bits == 8) {
        assertThat(rel).isLessThan(0.05);
      }
      prev = rel;
      assertThat(c.storedBytes()).isLessThan(full.storedBytes() * (bits + 1) / 32);
    }
  }
}
