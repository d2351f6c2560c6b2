package dev.tokenpress.operators.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link DecodeAttention#attendEdited}: the editor sees every head's probabilities, the output
 * follows its change.
 */
class DecodeAttentionEditedTest {

  @Test
  void unchangedProbabilitiesGiveTheSameOutputAndEditsAreApplied() {
    int heads = 4;
    int kvHeads = 2;
    int hd = 8;
    SplittableRandom rnd = new SplittableRandom(5);
    for (KvPrecision prec : new KvPrecision[] {KvPrecision.FP32, KvPrecision.FP16}) {
      for (int len : new int[] {1, 9, 300}) {
        LayerKvCache cache = new LayerKvCache(new KvLayout(kvHeads, hd), KvCodec.of(prec));
        float[] k = new float[kvHeads * hd];
        float[] v = new float[kvHeads * hd];
        for (int t = 0; t < len; t++) {
          for (int i = 0; i < k.length; i++) {
            k[i] = (float) rnd.nextGaussian();
            v[i] = (float) rnd.nextGaussian();
          }
          cache.append(k, 0, v, 0, t, t);
        }
        float[] q = new float[heads * hd];
        for (int i = 0; i < q.length; i++) {
          q[i] = (float) rnd.nextGaussian();
        }
        float[] bias = new float[len];
        bias[0] = -3f;
        DecodeAttention att = new DecodeAttention();
        float[] plain = new float[heads * hd];
        float[] probs = new float[heads * len];
        att.attend(q, 0, cache, heads, 0.3f, bias, plain, 0, probs);
        float[] same = new float[heads * hd];
        float[][] seen = new float[1][];
        att.attendEdited(
            q,
            0,
            cache,
            heads,
            0.3f,
            bias,
            same,
            0,
            (p, n) -> {
              seen[0] = java.util.Arrays.copyOf(p, heads * n);
              return false;
            });
        assertThat(same).containsExactly(plain);
        assertThat(seen[0]).containsExactly(probs);
        // all of head 1's mass on entry 0: its output is that entry's value of KV head 0
        float[] moved = new float[heads * hd];
        att.attendEdited(
            q,
            0,
            cache,
            heads,
            0.3f,
            bias,
            moved,
            0,
            (p, n) -> {
              java.util.Arrays.fill(p, n, 2 * n, 0f);
              p[n] = 1f;
              return true;
            });
        float[] v0 = new float[len * kvHeads * hd];
        cache.decodeValues(v0, 0);
        for (int d = 0; d < hd; d++) {
          assertThat(moved[hd + d]).isCloseTo(v0[d], within(1e-6f));
          assertThat(moved[d]).isEqualTo(plain[d]);
        }
      }
    }
  }
}
