package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.Budget;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.LayerRange;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.api.VtcClsConfig;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.operators.testing.Golden;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** VTC-CLS against {@code src/test/python/gen_golden_vtc_cls.py}, plus invariants. */
class VtcClsTest {

  private static final Map<String, Object> GOLDEN = Golden.load("vtc_cls/vtc_cls.json");
  private static final int L = Golden.integer(GOLDEN.get("vit_layers"));
  private static final int H = Golden.integer(GOLDEN.get("heads"));
  private static final int ROWS = Golden.integer(GOLDEN.get("patch_rows"));
  private static final int COLS = Golden.integer(GOLDEN.get("patch_cols"));
  private static final int P = ROWS * COLS;
  private static final ModelShape SHAPE = new ModelShape(L, H, ROWS, COLS, true, L - 2, 4, 4, 2, 8);

  /** What the runtime does: CLS-row logits of every ViT layer → ClsAttention values. */
  private static SignalValues allLayerSignals() {
    float[] logits = Golden.floats(GOLDEN.get("cls_logits"));
    int t = P + 1;
    SignalValues.Builder b = SignalValues.builder();
    for (int l = 0; l < L; l++) {
      float[] mean = Kernels.headMeanSoftmax(Golden.slice(logits, l * H * t, H * t), H, t);
      b.put(new Signal.ClsAttention(l), FloatTensor.wrap(Arrays.copyOfRange(mean, 1, t), P));
    }
    return b.build();
  }

  private static VisualTokensContext context(SignalValues signals) {
    float[] f = new float[P * 3];
    for (int i = 0; i < f.length; i++) {
      f[i] = i * 0.5f;
    }
    return VisualTokensContext.initial(SHAPE, FloatTensor.wrap(f, P, 3), signals, 17L);
  }

  @Test
  void clsAttentionSignalMatchesNumpy() {
    SignalValues s = allLayerSignals();
    double[] expected = Golden.doubles(GOLDEN.get("cls_attention"));
    for (int l = 0; l < L; l++) {
      FloatTensor v = s.get(new Signal.ClsAttention(l));
      for (int j = 0; j < P; j++) {
        assertThat((double) v.get(j))
            .as("layer %d patch %d", l, j)
            .isCloseTo(expected[l * P + j], within(1e-7));
      }
    }
  }

  @Test
  void scoresAndKeptTokensMatchNumpy() {
    SignalValues signals = allLayerSignals();
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("cases"))) {
      // Build the config through the plan JSON, as a job would.
      Map<String, Object> op = new LinkedHashMap<>();
      op.put("op", "vtc-cls");
      for (String key : Budget.KEYS) {
        if (c.containsKey(key)) {
          op.put(key, c.get(key));
        }
      }
      op.put("layers", c.get("layers"));
      VtcClsConfig config =
          (VtcClsConfig) CompressionPlan.parse(Json.write(List.of(op))).operators().get(0);
      VtcCls vtc = config.build();
      vtc.validate(SHAPE);

      float[] scores = vtc.patchScores(SHAPE, signals);
      double[] expectedScores = Golden.doubles(c.get("scores"));
      for (int j = 0; j < P; j++) {
        assertThat((double) scores[j])
            .as("%s score %d", c.get("name"), j)
            .isCloseTo(expectedScores[j], within(1e-6));
      }
      VisualTokensContext ctx = context(signals);
      float[] before = ctx.features().toArray();
      TokenSelection s = vtc.selectVisualTokens(ctx);
      assertThat(s.kept()).as((String) c.get("name")).containsExactly(Golden.ints(c.get("kept")));
      assertThat(s.positions() == PositionMode.REPACK || s.keepsAll()).isTrue();
      assertThat(ctx.features().toArray()).as("features unchanged").containsExactly(before);
    }
  }

  @Test
  void requestsExactlyTheConfiguredLayers() {
    VtcCls op = new VtcCls(new VtcClsConfig(Budget.keep(4), LayerRange.parse("1..L-2")));
    assertThat(op.signals(SHAPE))
        .containsExactly(new Signal.ClsAttention(1), new Signal.ClsAttention(2));
    assertThat(op.hooks()).containsExactly(Hook.VISUAL_TOKENS);
    ModelShape llava = new ModelShape(24, 16, 24, 24, true, 22, 32, 32, 32, 4096);
    VtcCls dflt = new VtcCls(new VtcClsConfig(Budget.keep(64)));
    assertThat(dflt.signals(llava)).hasSize(7).first().isEqualTo(new Signal.ClsAttention(16));
    assertThat(dflt.signals(llava)).last().isEqualTo(new Signal.ClsAttention(22));
  }

  @Test
  void keepAllIsIdentity() {
    VtcCls op = new VtcCls(new VtcClsConfig(Budget.keep(P), LayerRange.parse("1..L-2")));
    assertThat(op.selectVisualTokens(context(allLayerSignals())))
        .isEqualTo(TokenSelection.keepAll(P));
    VtcCls ratio = new VtcCls(new VtcClsConfig(Budget.keepRatio(1.0), LayerRange.parse("1..L-2")));
    assertThat(ratio.selectVisualTokens(context(SignalValues.empty())))
        .isEqualTo(TokenSelection.keepAll(P));
  }

  @Test
  void tiesGoToTheLowerIndex() {
    SignalValues.Builder b = SignalValues.builder();
    float[] flat = new float[P];
    Arrays.fill(flat, 1f / (P + 1));
    b.put(new Signal.ClsAttention(1), FloatTensor.wrap(flat.clone(), P));
    float[] bumped = flat.clone();
    bumped[9] += 0.01f;
    b.put(new Signal.ClsAttention(2), FloatTensor.wrap(bumped, P));
    VtcCls op = new VtcCls(new VtcClsConfig(Budget.keep(4), LayerRange.parse("1..L-2")));
    assertThat(op.selectVisualTokens(context(b.build())).kept()).containsExactly(0, 1, 2, 9);
  }

  @Test
  void scoresByVisualIndexAfterAnEarlierDrop() {
    SignalValues signals = allLayerSignals();
    VtcCls op = new VtcCls(new VtcClsConfig(Budget.keep(3), LayerRange.parse("1..L-2")));
    float[] all = op.patchScores(SHAPE, signals);
    // An earlier operator kept the even patches only.
    int[] even = new int[P / 2];
    for (int i = 0; i < even.length; i++) {
      even[i] = 2 * i;
    }
    VisualTokensContext after =
        context(signals).next(TokenSelection.of(P, even, PositionMode.REPACK));
    TokenSelection s = op.selectVisualTokens(after);
    // Expected: the 3 best even patches by the full-grid scores, as positions in the even list.
    List<Integer> order = new ArrayList<>();
    for (int i = 0; i < even.length; i++) {
      order.add(i);
    }
    order.sort((x, y) -> Float.compare(all[even[y]], all[even[x]]));
    int[] expected = {order.get(0), order.get(1), order.get(2)};
    Arrays.sort(expected);
    assertThat(s.kept()).containsExactly(expected);
  }

  @Test
  void clearErrors() {
    VtcCls op = new VtcCls(new VtcClsConfig(Budget.keep(4), LayerRange.parse("1..L-2")));
    SignalValues missing =
        SignalValues.builder()
            .put(new Signal.ClsAttention(1), FloatTensor.wrap(new float[P], P))
            .build();
    assertThatThrownBy(() -> op.selectVisualTokens(context(missing)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("signal ClsAttention[vitLayer=2] was not supplied by the runtime");
    SignalValues wrong =
        SignalValues.builder()
            .put(new Signal.ClsAttention(1), FloatTensor.wrap(new float[P + 1], P + 1))
            .put(new Signal.ClsAttention(2), FloatTensor.wrap(new float[P], P))
            .build();
    assertThatThrownBy(() -> op.selectVisualTokens(context(wrong)))
        .hasMessage("signal ClsAttention[vitLayer=1] has 17 values, the model has 16 patches");
    assertThatThrownBy(
            () ->
                new VtcCls(new VtcClsConfig(Budget.keep(4), LayerRange.parse("0..L")))
                    .validate(SHAPE))
        .hasMessageContaining("vtc-cls.layers \"0..L\" resolves to [0, 4]");
  }
}
