package dev.tokenpress.operators.attention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.CmaiConfig;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.LayerRange;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorStat;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.testing.Golden;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * CMAI against {@code src/test/python/gen_golden_var_cmai.py}, through the hook protocol the
 * runtime uses.
 */
class CmaiTest {
  private static final Map<String, Object> G = Golden.load("attention/cmai.json");
  private static final int PREFIX = Golden.integer(G.get("prefix"));
  private static final int NVIS = Golden.integer(G.get("visual"));
  private static final int SUFFIX = Golden.integer(G.get("suffix"));
  private static final int S = PREFIX + NVIS + SUFFIX;
  private static final int HEADS = Golden.integer(G.get("heads"));
  private static final ModelShape SHAPE = new ModelShape(4, 2, 4, 4, true, 2, 4, HEADS, 2, 16);

  private static int[] range(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  @Test
  void focusScoreIsTextToTextTimesTextToImage() {
    int[] q = Golden.ints(G.get("query_rows"));
    float[] mean = Golden.floats(G.get("head_mean"));
    int m = q.length;
    float[] tt = new float[m * m];
    float[] ti = new float[m * NVIS];
    for (int i = 0; i < m; i++) {
      for (int t = 0; t < m; t++) {
        tt[i * m + t] = mean[i * S + q[t]];
      }
      for (int v = 0; v < NVIS; v++) {
        ti[i * NVIS + v] = mean[i * S + PREFIX + v];
      }
    }
    float[] f = Cmai.focus(tt, ti, m, m, NVIS);
    double[] want = Golden.doubles(G.get("focus"));
    for (int i = 0; i < want.length; i++) {
      assertThat((double) f[i]).isCloseTo(want[i], within(1e-6));
    }
  }

  @Test
  void inhibitsLowFocusPairsInPrefillAndDecodeAsTheReference() {
    for (Map<String, Object> c : Golden.objects(G.get("cases"))) {
      CmaiConfig.Rule rule =
          CmaiConfig.Rule.valueOf(((String) c.get("rule")).toUpperCase(Locale.ROOT));
      double thr = Golden.number(c.get("threshold"));
      CmaiConfig cfg =
          new CmaiConfig(
              LayerRange.parse("1"),
              LayerRange.parse("2..L-1"),
              rule,
              thr,
              Golden.number(G.get("bias_value")),
              true);
      HookRunner run = new HookRunner(List.of(cfg.build()), SHAPE, 3L);
      run.startPrefill(SequenceLayout.prefill(PREFIX, NVIS, SUFFIX, List.of()));
      float[] mean = Golden.floats(G.get("head_mean"));
      HookRunner.SignalSource src =
          (signal, layout, rows) -> {
            assertThat(signal)
                .isEqualTo(new Signal.QueryRowAttention(1, QueryRows.TEXT_AFTER_VISUAL));
            return FloatTensor.wrap(mean, mean.length / S, S);
          };
      assertThat(run.prefillBias(0, S, src)).isNull();
      assertThat(run.prefillBias(1, S, src)).isNull();
      assertThat(run.afterPrefillLayer(1, src)).isNull();
      float[] bias = run.prefillBias(2, S, src);
      double[] want = Golden.doubles(c.get("bias"));
      long pairs = 0;
      for (double w : want) {
        pairs += w != 0 ? 1 : 0;
      }
      if (pairs == 0) {
        assertThat(bias).isNull();
      } else {
        for (int i = 0; i < want.length; i++) {
          assertThat((double) bias[i]).as("%s %s bias %d", rule, thr, i).isEqualTo(want[i]);
        }
      }
      // decode step 0: the new token (index S) at the focus layer, then the inhibited layer's bias
      LayerKvCache cache = new LayerKvCache(new KvLayout(2, 2), KvCodec.of(KvPrecision.FP32));
      for (int t = 0; t <= S; t++) {
        cache.append(new float[4], 0, new float[4], 0, t, t);
      }
      float[] probs = Golden.floats(G.get("decode_probs"));
      float[] before = probs.clone();
      assertThat(run.rewriteDecodeAttention(1, 0, range(S + 1), HEADS, probs)).isFalse();
      assertThat(probs).containsExactly(before);
      float[] db = run.decodeBias(2, 0, cache);
      double[] wantDecode = Golden.doubles(c.get("decode_bias"));
      long decodePairs = 0;
      for (double w : wantDecode) {
        decodePairs += w != 0 ? 1 : 0;
      }
      if (decodePairs == 0) {
        assertThat(db).isNull();
      } else {
        for (int i = 0; i < wantDecode.length; i++) {
          assertThat((double) db[i]).isEqualTo(wantDecode[i]);
        }
      }
      assertThat(run.stats())
          .contains(
              new OperatorStat("cmai", 2, "prefill_inhibited_pairs", pairs),
              new OperatorStat("cmai", 2, "decode_inhibited_pairs", decodePairs));
    }
  }

  @Test
  void inhibitionAtOrBeforeTheFocusLayerTakesTheFocusFromTheProbePrefill() {
    CmaiConfig cfg =
        new CmaiConfig(
            LayerRange.parse("2"),
            LayerRange.parse("1..L-1"),
            CmaiConfig.Rule.RELATIVE,
            0.5,
            Golden.number(G.get("bias_value")),
            true);
    HookRunner run = new HookRunner(List.of(cfg.build()), SHAPE, 3L);
    assertThat(run.probeDepth()).isEqualTo(2);
    run.startPrefill(SequenceLayout.prefill(PREFIX, NVIS, SUFFIX, List.of()));
    float[] mean = Golden.floats(G.get("head_mean"));
    HookRunner.SignalSource src =
        (signal, layout, rows) -> {
          assertThat(signal)
              .isEqualTo(new Signal.QueryRowAttention(2, QueryRows.TEXT_AFTER_VISUAL));
          return FloatTensor.wrap(mean, mean.length / S, S);
        };
    for (int l = 0; l <= 2; l++) {
      run.probeLayer(l, src);
    }
    Map<String, Object> relative = Golden.objects(G.get("cases")).get(0);
    double[] want = Golden.doubles(relative.get("bias"));
    assertThat(run.prefillBias(0, S, src)).isNull();
    for (int l = 1; l <= 3; l++) {
      float[] bias = run.prefillBias(l, S, src);
      for (int i = 0; i < want.length; i++) {
        assertThat((double) bias[i]).isEqualTo(want[i]);
      }
      if (l < 3) {
        assertThat(run.afterPrefillLayer(l, src)).isNull(); // the focus is not recomputed
      }
    }
    LayerKvCache cache = new LayerKvCache(new KvLayout(2, 2), KvCodec.of(KvPrecision.FP32));
    for (int t = 0; t <= S; t++) {
      cache.append(new float[4], 0, new float[4], 0, t, t);
    }
    // decode step 0, layer 1 (before the focus layer): the last prompt token's focus row
    double[] focus = Golden.doubles(G.get("focus"));
    float[] last = new float[NVIS];
    for (int v = 0; v < NVIS; v++) {
      last[v] = (float) focus[focus.length - NVIS + v];
    }
    boolean[] off = Cmai.inhibited(last, CmaiConfig.Rule.RELATIVE, 0.5);
    float[] db = run.decodeBias(1, 0, cache);
    for (int v = 0; v < NVIS; v++) {
      assertThat(db[PREFIX + v])
          .isEqualTo(off[v] ? (float) Golden.number(G.get("bias_value")) : 0f);
    }
    // layer 3 (after the focus layer): the step's own focus row, as in the single-pass golden
    run.rewriteDecodeAttention(2, 0, range(S + 1), HEADS, Golden.floats(G.get("decode_probs")));
    float[] db3 = run.decodeBias(3, 0, cache);
    double[] wantDecode = Golden.doubles(relative.get("decode_bias"));
    for (int i = 0; i < wantDecode.length; i++) {
      assertThat((double) db3[i]).isEqualTo(wantDecode[i]);
    }
  }

  @Test
  void quantileRuleBreaksTiesTowardTheEarlierToken() {
    boolean[] off =
        Cmai.inhibited(new float[] {0.2f, 0.1f, 0.1f, 0.3f}, CmaiConfig.Rule.QUANTILE, 0.25);
    assertThat(off).containsExactly(false, false, true, false);
    assertThat(Cmai.inhibited(new float[] {0.2f, 0.1f}, CmaiConfig.Rule.RELATIVE, 0.0))
        .containsExactly(false, false);
  }

  @Test
  void parsesAndValidates() {
    CompressionPlan p =
        CompressionPlan.parse("[{\"op\":\"cmai\",\"rule\":\"quantile\",\"threshold\":0.25}]");
    assertThat(CompressionPlan.parse(p.toJson())).isEqualTo(p);
    assertThat(p.operators().get(0))
        .isEqualTo(
            new CmaiConfig(
                LayerRange.parse("1"),
                LayerRange.parse("2..L-1"),
                CmaiConfig.Rule.QUANTILE,
                0.25,
                CmaiConfig.DEFAULT_BIAS,
                true));
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"cmai\",\"threshold\":2}]"))
        .hasMessageContaining("cmai.threshold must be in [0, 1]");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"cmai\",\"bias\":1}]"))
        .hasMessageContaining("cmai.bias must be a finite number <= 0");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"cmai\",\"focus_layers\":\"4\"}]").bind(SHAPE))
        .hasMessageContaining("cmai.focus_layers \"4..4\" resolves to [4, 4]");
  }
}
