package dev.tokenpress.operators.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class DecodeAttentionTest {
  private static final int[] LENGTHS = {1, 7, 64, 65, 577};

  /** Straightforward reference: expand K/V per query head, softmax in double. */
  private static double[] reference(
      float[] q, float[] k, float[] v, int len, int heads, int kvHeads, int hd, float[] bias) {
    double[] out = new double[heads * hd];
    for (int h = 0; h < heads; h++) {
      int g = h * kvHeads / heads;
      double[] s = new double[len];
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < len; j++) {
        double acc = 0;
        for (int d = 0; d < hd; d++) {
          acc += (double) q[h * hd + d] * k[j * kvHeads * hd + g * hd + d];
        }
        s[j] = acc / Math.sqrt(hd) + (bias == null ? 0 : bias[j]);
        max = Math.max(max, s[j]);
      }
      double sum = 0;
      for (int j = 0; j < len; j++) {
        s[j] = Math.exp(s[j] - max);
        sum += s[j];
      }
      for (int j = 0; j < len; j++) {
        for (int d = 0; d < hd; d++) {
          out[h * hd + d] += s[j] / sum * v[j * kvHeads * hd + g * hd + d];
        }
      }
    }
    return out;
  }

  @Test
  void matchesReferenceWithGqaAndBias() {
    int heads = 8;
    int kvHeads = 2;
    int hd = 16;
    KvLayout layout = new KvLayout(kvHeads, hd);
    SplittableRandom rnd = new SplittableRandom(11);
    DecodeAttention att = new DecodeAttention();
    for (int len : LENGTHS) {
      float[] k = gaussian(rnd, len * layout.width());
      float[] v = gaussian(rnd, len * layout.width());
      float[] q = gaussian(rnd, heads * hd);
      float[] bias = new float[len];
      for (int j = 0; j < len; j++) {
        bias[j] = j % 3 == 0 ? -1e9f : (float) rnd.nextGaussian();
      }
      bias[len - 1] = 0f;
      LayerKvCache cache = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP32));
      int[] idx = new int[len];
      for (int j = 0; j < len; j++) {
        idx[j] = j;
      }
      cache.appendRows(k, 0, v, 0, len, idx, idx, 0);
      float[] out = new float[heads * hd];
      float[] probs = new float[heads * len];
      att.attend(q, 0, cache, heads, (float) (1 / Math.sqrt(hd)), bias, out, 0, probs);
      double[] ref = reference(q, k, v, len, heads, kvHeads, hd, bias);
      for (int i = 0; i < out.length; i++) {
        assertThat((double) out[i])
            .as("len %d, element %d", len, i)
            .isCloseTo(ref[i], within(1e-5 * Math.sqrt(len)));
      }
      float rowSum = 0;
      for (int j = 0; j < len; j++) {
        rowSum += probs[3 * len + j];
      }
      assertThat(rowSum).isCloseTo(1f, within(1e-5f));

      // the same cache in mixed fp32/fp16 storage stays close
      if (len > 2) {
        cache.recode(0, len / 2, KvCodec.of(KvPrecision.FP16));
        float[] mixed = new float[heads * hd];
        att.attend(q, 0, cache, heads, (float) (1 / Math.sqrt(hd)), bias, mixed, 0, null);
        for (int i = 0; i < out.length; i++) {
          assertThat(mixed[i]).isCloseTo(out[i], within(5e-3f));
        }
      }
    }
  }

  @Test
  void attentionRowsMatchDecodeForTheLastQuery() {
    int heads = 4;
    int kvHeads = 2;
    int hd = 8;
    int len = 13;
    SplittableRandom rnd = new SplittableRandom(5);
    float[] q = gaussian(rnd, len * heads * hd);
    float[] k = gaussian(rnd, len * kvHeads * hd);
    int[] order = new int[len];
    for (int i = 0; i < len; i++) {
      order[i] = i;
    }
    float scale = (float) (1 / Math.sqrt(hd));
    float[] rows =
        AttentionRows.compute(
            q, new int[] {len - 1, 2}, order, k, order, heads, kvHeads, hd, scale, null);
    LayerKvCache cache = new LayerKvCache(new KvLayout(kvHeads, hd), KvCodec.of(KvPrecision.FP32));
    cache.appendRows(k, 0, k, 0, len, order, order, 0);
    float[] probs = new float[heads * len];
    new DecodeAttention()
        .attend(
            q, (len - 1) * heads * hd, cache, heads, scale, null, new float[heads * hd], 0, probs);
    for (int i = 0; i < heads * len; i++) {
      assertThat(rows[i]).isCloseTo(probs[i], within(1e-6f));
    }
    // row 2 is causal: nothing after token 2
    for (int h = 0; h < heads; h++) {
      int o = (heads + h) * len;
      assertThat(rows[o + 3]).isZero();
      assertThat(rows[o] + rows[o + 1] + rows[o + 2]).isCloseTo(1f, within(1e-6f));
    }
  }

  @Test
  void ropeRotatesHalves() {
    float[] inv = Rope.inverseFrequencies(4, 10000);
    assertThat(inv).containsExactly(1f, 0.01f);
    float[] x = {1, 0, 0, 0};
    Rope.applyHalfSplit(x, 0, 1, 4, 1, inv);
    assertThat(x[0]).isCloseTo((float) Math.cos(1), within(1e-7f));
    assertThat(x[2]).isCloseTo((float) Math.sin(1), within(1e-7f));
  }

  private static float[] gaussian(SplittableRandom rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }
}
