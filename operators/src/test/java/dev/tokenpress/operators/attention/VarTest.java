package dev.tokenpress.operators.attention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.LayerRange;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorStat;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.VarConfig;
import dev.tokenpress.operators.kernels.AttentionRows;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.testing.Golden;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * VAR against {@code src/test/python/gen_golden_var_cmai.py}, through the hook protocol the runtime
 * uses.
 */
class VarTest {
  private static final Map<String, Object> G = Golden.load("attention/var.json");
  private static final int PREFIX = Golden.integer(G.get("prefix"));
  private static final int NVIS = Golden.integer(G.get("visual"));
  private static final int SUFFIX = Golden.integer(G.get("suffix"));
  private static final int S = PREFIX + NVIS + SUFFIX;
  private static final int HEADS = Golden.integer(G.get("heads"));
  private static final int D = Golden.integer(G.get("hidden_size"));
  private static final ModelShape SHAPE = new ModelShape(4, 2, 4, 4, true, 2, 4, HEADS, 2, D);
  private static final int LAYER = 2;

  private static VarConfig config(double keep) {
    int[] dims = Golden.ints(G.get("sink_dims"));
    return new VarConfig(
        LayerRange.parse("2..L-1"),
        Golden.number(G.get("tau")),
        Golden.number(G.get("rho")),
        Golden.number(G.get("min_visual_mass")),
        keep,
        List.of(dims[0], dims[1]));
  }

  private static int[] range(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  /** A record's runner after VAR's sink detection at {@link #LAYER}. */
  private static HookRunner prefilled(VarConfig c) {
    HookRunner run = new HookRunner(List.of(c.build()), SHAPE, 7L);
    run.startPrefill(SequenceLayout.prefill(PREFIX, NVIS, SUFFIX, List.of()));
    float[] hidden = Golden.floats(G.get("hidden"));
    assertThat(
            run.prefillBias(
                LAYER,
                S,
                (signal, layout, rows) -> {
                  assertThat(signal).isEqualTo(new Signal.LmHiddenStates(LAYER));
                  return FloatTensor.wrap(hidden, S, D);
                }))
        .isNull();
    return run;
  }

  @Test
  void sinkScoresMatchTheReference() {
    float[] phi =
        Var.sinkScores(Golden.floats(G.get("hidden")), S, D, Golden.ints(G.get("sink_dims")));
    double[] want = Golden.doubles(G.get("phi"));
    for (int i = 0; i < S; i++) {
      assertThat((double) phi[i]).isCloseTo(want[i], within(1e-5 * Math.max(1, want[i])));
    }
  }

  @Test
  void redistributesTheTextRowsAfterTheImageAsTheReference() {
    float[] values = Golden.floats(G.get("values"));
    for (Map<String, Object> c : Golden.objects(G.get("cases"))) {
      double keep = Golden.number(c.get("sink_keep"));
      HookRunner run = prefilled(config(keep));
      int[] rows = run.prefillAttentionRows(LAYER, S);
      assertThat(rows).containsExactly(Golden.ints(G.get("query_rows")));
      float[] probs = Golden.floats(G.get("probs"));
      assertThat(run.rewritePrefillAttention(LAYER, rows, range(S), HEADS, probs)).isTrue();
      double[] want = Golden.doubles(c.get("probs_out"));
      for (int i = 0; i < want.length; i++) {
        assertThat((double) probs[i])
            .as("keep %s prob %d", keep, i)
            .isCloseTo(want[i], within(1e-6));
      }
      for (int r = 0; r < rows.length * HEADS; r++) {
        double sum = 0;
        for (int j = 0; j < S; j++) {
          sum += probs[r * S + j];
        }
        assertThat(sum).isCloseTo(1.0, within(1e-5));
      }
      float[] out =
          AttentionRows.weightedValues(
              probs, rows.length, values, S, HEADS, 2, Golden.integer(G.get("head_dim")));
      double[] wantOut = Golden.doubles(c.get("output"));
      for (int i = 0; i < wantOut.length; i++) {
        assertThat((double) out[i]).isCloseTo(wantOut[i], within(1e-5));
      }
      int[] selected = Golden.ints(c.get("selected"));
      long pairs = 0;
      for (int s : selected) {
        pairs += s;
      }
      float[] decode = Golden.floats(G.get("decode_probs"));
      int[] keys = range(S + 1);
      assertThat(run.rewriteDecodeAttention(LAYER, 0, keys, HEADS, decode)).isTrue();
      double[] wantDecode = Golden.doubles(c.get("decode_probs_out"));
      for (int i = 0; i < wantDecode.length; i++) {
        assertThat((double) decode[i]).isCloseTo(wantDecode[i], within(1e-6));
      }
      long decodePairs = 0;
      for (int s : Golden.ints(c.get("decode_selected"))) {
        decodePairs += s;
      }
      List<OperatorStat> stats = run.stats();
      assertThat(stats)
          .contains(
              new OperatorStat("var", -1, "sink_dims", 3, 11),
              new OperatorStat("var", LAYER, "sinks", Golden.ints(G.get("sinks")).length),
              new OperatorStat(
                  "var", LAYER, "visual_sinks", Golden.ints(G.get("visual_sinks")).length),
              new OperatorStat("var", LAYER, "prefill_pairs", pairs),
              new OperatorStat("var", LAYER, "decode_pairs", decodePairs));
    }
  }

  @Test
  void sinkKeepOneSelectsButChangesNothing() {
    HookRunner run = prefilled(config(1.0));
    int[] rows = run.prefillAttentionRows(LAYER, S);
    float[] probs = Golden.floats(G.get("probs"));
    float[] before = probs.clone();
    assertThat(run.rewritePrefillAttention(LAYER, rows, range(S), HEADS, probs)).isTrue();
    assertThat(probs).containsExactly(before, within(1e-7f));
  }

  @Test
  void leavesALayerWithoutVisualSinksAlone() {
    // a threshold no position exceeds: no sinks, no rows asked for, nothing rewritten
    VarConfig c = new VarConfig(LayerRange.parse("2..L-1"), 1e6, 0.5, 0.2, 0.6, List.of(3, 11));
    HookRunner run = new HookRunner(List.of(c.build()), SHAPE, 7L);
    run.startPrefill(SequenceLayout.prefill(PREFIX, NVIS, SUFFIX, List.of()));
    float[] hidden = Golden.floats(G.get("hidden"));
    run.prefillBias(LAYER, S, (signal, layout, rows) -> FloatTensor.wrap(hidden, S, D));
    assertThat(run.prefillAttentionRows(LAYER, S)).isNull();
    float[] decode = Golden.floats(G.get("decode_probs"));
    assertThat(run.rewriteDecodeAttention(LAYER, 0, range(S + 1), HEADS, decode)).isFalse();
    // layers outside the range are never touched
    assertThat(run.rewriteDecodeAttention(1, 0, range(S + 1), HEADS, decode)).isFalse();
  }

  @Test
  void parsesAndValidates() {
    CompressionPlan p =
        CompressionPlan.parse("[{\"op\":\"var\",\"tau\":3.5,\"sink_dims\":[11,3]}]");
    VarConfig c = (VarConfig) p.operators().get(0);
    assertThat(c.sinkDims()).containsExactly(3, 11);
    assertThat(c.sinkKeep()).isEqualTo(VarConfig.DEFAULT_SINK_KEEP);
    assertThat(CompressionPlan.parse(p.toJson())).isEqualTo(p);
    assertThat(
            ((VarConfig) CompressionPlan.parse("[{\"op\":\"var\"}]").operators().get(0)).sinkDims())
        .isNull();
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"var\",\"sink_keep\":1.5}]"))
        .hasMessageContaining("var.sink_keep must be in [0, 1]");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"var\",\"rho\":0}]"))
        .hasMessageContaining("var.rho");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"var\",\"sink_dims\":\"all\"}]"))
        .hasMessageContaining("var.sink_dims must be \"bundle\" or an array");
    // "bundle" needs dimensions in the model shape
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"var\"}]").bind(SHAPE))
        .hasMessageContaining("tokenpress var sinks");
    assertThat(CompressionPlan.parse("[{\"op\":\"var\"}]").bind(SHAPE.withLmSinkDims(List.of())))
        .hasSize(1);
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"var\",\"sink_dims\":[64]}]").bind(SHAPE))
        .hasMessageContaining("var.sink_dims must lie in [0, lmHiddenSize-1] = [0, 63]");
  }
}
