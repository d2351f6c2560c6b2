package dev.tokenpress.operators.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Budgets, layer ranges, model shapes, signals, selections, seeds and contexts. */
class ApiValuesTest {

  private static final ModelShape TINY = CompressionPlanTest.TINY;

  @Test
  void budgetsResolveWithHalfUpRounding() {
    assertThat(Budget.keep(64).resolve(576)).isEqualTo(64);
    assertThat(Budget.keep(64).resolve(10)).isEqualTo(10);
    assertThat(Budget.keepRatio(0.25).resolve(576)).isEqualTo(144);
    assertThat(Budget.keepRatio(0.3).resolve(16)).isEqualTo(5); // 4.8
    assertThat(Budget.keepRatio(1.0).resolve(7)).isEqualTo(7);
    assertThat(Budget.dropRatio(0.5).resolve(576)).isEqualTo(288);
    assertThat(Budget.dropRatio(0.5).resolve(13)).isEqualTo(7); // 6.5 rounds up
    assertThat(Budget.dropRatio(0.0).resolve(13)).isEqualTo(13);
    assertThat(Budget.dropRatio(0.9).resolve(2)).isZero(); // 0.2
    for (Budget b : List.of(Budget.keep(1), Budget.keepRatio(0.5), Budget.dropRatio(0.5))) {
      assertThat(b.resolve(0)).isZero();
    }
    assertThatThrownBy(() -> Budget.keep(0)).hasMessage("keep must be >= 1, got 0");
    assertThatThrownBy(() -> Budget.keepRatio(1.5))
        .hasMessage("keep_ratio must be in (0, 1], got 1.5");
    assertThatThrownBy(() -> Budget.keepRatio(Double.NaN))
        .hasMessage("keep_ratio must be in (0, 1], got NaN");
    assertThatThrownBy(() -> Budget.dropRatio(-0.1))
        .hasMessage("drop_ratio must be in [0, 1), got -0.1");
  }

  @Test
  void layerRanges() {
    LayerRange r = LayerRange.parse("16..L-2");
    assertThat(r.resolve(24, "f")).containsExactly(16, 17, 18, 19, 20, 21, 22);
    assertThat(r.toString()).isEqualTo("16..L-2");
    assertThat(LayerRange.parse("L-1").resolve(24, "f")).containsExactly(23);
    assertThat(LayerRange.parse("L-1").toString()).isEqualTo("L-1..L-1");
    assertThat(LayerRange.parse("0..L-0").toString()).isEqualTo("0..L");
    assertThat(LayerRange.parse("2..3").resolve(4, "f")).containsExactly(2, 3);
    assertThatThrownBy(() -> LayerRange.parse("0..L").resolve(4, "vtc-cls.layers"))
        .hasMessage(
            "vtc-cls.layers \"0..L\" resolves to [0, 4] for L=4 layers; it must satisfy "
                + "0 <= first <= last <= L-1 = 3");
    assertThatThrownBy(() -> LayerRange.parse("L-1..L-3")).hasMessageContaining("is empty");
    assertThatThrownBy(() -> LayerRange.parse("5..2")).hasMessageContaining("is empty");
    for (String bad :
        new String[] {"", "..", "1..", "-1", "L+1", "1 .. 2", "l-2", "1..2..3", "99999999999"}) {
      assertThatThrownBy(() -> LayerRange.parse(bad))
          .as(bad)
          .hasMessageContaining("invalid layer range");
    }
  }

  @Test
  void modelShapeValidation() {
    assertThat(CompressionPlanTest.LLAVA.numPatches()).isEqualTo(576);
    assertThat(CompressionPlanTest.LLAVA.vitTokens()).isEqualTo(577);
    assertThatThrownBy(() -> new ModelShape(0, 2, 4, 4, true, 2, 4, 4, 2, 64))
        .hasMessage("modelShape.vitLayers must be >= 1, got 0");
    assertThatThrownBy(() -> new ModelShape(4, 2, 4, 4, true, 4, 4, 4, 2, 64))
        .hasMessage("modelShape.visionFeatureLayer must be in [0, vitLayers-1] = [0, 3], got 4");
    assertThatThrownBy(() -> new ModelShape(4, 2, 4, 4, true, 2, 4, 4, 3, 64))
        .hasMessage("modelShape.lmKvHeads must divide lmHeads=4, got 3");
  }

  @Test
  void signalValidation() {
    assertThatThrownBy(() -> new Signal.ClsAttention(-1))
        .hasMessage("ClsAttention.vitLayer must be >= 0, got -1");
    assertThatThrownBy(() -> new Signal.ClsAttention(4).validate(TINY))
        .hasMessage("ClsAttention.vitLayer must be in [0, vitLayers-1] = [0, 3], got 4");
    assertThatThrownBy(
            () -> new Signal.QueryRowAttention(4, QueryRows.LAST_PROMPT_TOKEN).validate(TINY))
        .hasMessage("QueryRowAttention.lmLayer must be in [0, lmLayers-1] = [0, 3], got 4");
    assertThat(new Signal.ClsAttention(2)).isEqualTo(new Signal.ClsAttention(2));
    assertThat(new Signal.ClsAttention(2).deliveredAt()).isEqualTo(Hook.VISUAL_TOKENS);
    assertThat(new Signal.QueryRowAttention(1, QueryRows.LAST_PROMPT_TOKEN).deliveredAt())
        .isEqualTo(Hook.PREFILL_AFTER);
  }

  @Test
  void signalValues() {
    Signal s = new Signal.ClsAttention(1);
    FloatTensor v = FloatTensor.vector(1f, 2f);
    SignalValues values = SignalValues.builder().put(s, v).build();
    assertThat(values.get(s)).isSameAs(v);
    assertThat(values.contains(new Signal.ClsAttention(2))).isFalse();
    assertThatThrownBy(() -> values.get(new Signal.ClsAttention(2)))
        .hasMessage(
            "signal ClsAttention[vitLayer=2] was not supplied by the runtime; supplied: "
                + "[ClsAttention[vitLayer=1]]");
    assertThatThrownBy(() -> SignalValues.builder().put(s, v).put(s, v))
        .hasMessageContaining("supplied twice");
    assertThat(SignalValues.empty().signals()).isEmpty();
  }

  @Test
  void tokenSelections() {
    TokenSelection all = TokenSelection.keepAll(3);
    assertThat(all.kept()).containsExactly(0, 1, 2);
    assertThat(all.keepsAll()).isTrue();
    assertThat(all.positions()).isEqualTo(PositionMode.KEEP_ORIGINAL);
    int[] kept = {0, 2};
    TokenSelection s = TokenSelection.of(3, kept, PositionMode.REPACK);
    kept[0] = 1;
    assertThat(s.kept()).as("copied").containsExactly(0, 2);
    assertThat(s)
        .isEqualTo(TokenSelection.of(3, new int[] {0, 2}, PositionMode.REPACK))
        .isNotEqualTo(TokenSelection.of(3, new int[] {0, 2}, PositionMode.KEEP_ORIGINAL));
    assertThat(s.keepsAll()).isFalse();
    assertThat(s.toString()).isEqualTo("TokenSelection[2/3 kept, REPACK, [0, 2]]");
    assertThatThrownBy(() -> TokenSelection.of(3, new int[] {2, 0}, PositionMode.REPACK))
        .hasMessage("kept indices must be strictly ascending, got [2, 0]");
    assertThatThrownBy(() -> TokenSelection.of(3, new int[] {1, 1}, PositionMode.REPACK))
        .hasMessageContaining("strictly ascending");
    assertThatThrownBy(() -> TokenSelection.of(3, new int[] {0, 3}, PositionMode.REPACK))
        .hasMessage("kept indices must be in [0, 3), got [0, 3]");
  }

  @Test
  void seedsMatchAnIndependentSha256() {
    // Expected: python3 -c "import hashlib,struct; d=hashlib.sha256(struct.pack('>q', JOB)
    //   + ID.encode('utf-8')).digest(); print(struct.unpack('>q', d[:8])[0])"
    assertThat(Seeds.recordSeed("img-000001", 42)).isEqualTo(7457091667680411542L);
    assertThat(Seeds.recordSeed("é/x.png", -1)).isEqualTo(-1285458931768452239L);
    assertThat(Seeds.recordSeed("", 0)).isEqualTo(-5812615543772869766L);
    // SplitMix64 reference: the first output for state 0 is 0xE220A8397B1DCDAF.
    assertThat(Seeds.mix64(0x9E3779B97F4A7C15L)).isEqualTo(0xE220A8397B1DCDAFL);
    assertThat(Seeds.combine(1, 2))
        .isNotEqualTo(Seeds.combine(2, 1))
        .isNotEqualTo(Seeds.combine(1, 3));
  }

  @Test
  void visualTokensContext() {
    FloatTensor f = FloatTensor.copyOf(new float[] {0, 1, 2, 3, 4, 5}, 3, 2);
    VisualTokensContext c = VisualTokensContext.initial(TINY, f, SignalValues.empty(), 9L);
    assertThat(c.count()).isEqualTo(3);
    assertThat(c.visualIndices()).containsExactly(0, 1, 2);
    VisualTokensContext n = c.next(TokenSelection.of(3, new int[] {0, 2}, PositionMode.REPACK));
    assertThat(n.visualIndices()).containsExactly(0, 2);
    assertThat(n.features().toArray()).containsExactly(0f, 1f, 4f, 5f);
    assertThat(n.seed()).isEqualTo(9L);
    VisualTokensContext g =
        new VisualTokensContext(TINY, f, new int[] {5, 15, 4}, SignalValues.empty(), 0);
    assertThat(g.gridRow(1)).isEqualTo(3);
    assertThat(g.gridCol(1)).isEqualTo(3);
    assertThat(g.gridRow(0)).isEqualTo(1);
    assertThat(g.gridCol(0)).isEqualTo(1);
    assertThatThrownBy(
            () -> new VisualTokensContext(TINY, f, new int[] {1, 1, 2}, SignalValues.empty(), 0))
        .hasMessage("visualIndex 1 appears twice");
    assertThatThrownBy(
            () -> new VisualTokensContext(TINY, f, new int[] {1, 2}, SignalValues.empty(), 0))
        .hasMessage("visual features have 3 rows, visualIndex has 2");
    assertThatThrownBy(() -> c.next(TokenSelection.keepAll(4)))
        .hasMessageContaining("over 4 tokens");
  }

  @Test
  void prefillLayerContextChecksLayer() {
    SequenceLayout l = SequenceLayout.prefill(1, 2, 1, List.of());
    assertThatThrownBy(() -> new PrefillLayerContext(TINY, 4, l, SignalValues.empty(), 0))
        .hasMessage("layer must be in [0, lmLayers-1] = [0, 3], got 4");
  }

  @Test
  void hookContextsCheckTheirInputs() {
    assertThatThrownBy(
            () ->
                new VisionLayerContext(
                    TINY,
                    TINY.visionFeatureLayer() + 1,
                    VisionPoint.AFTER_LAYER,
                    new float[TINY.numPatches() + 1],
                    TokenProvenance.identity(TINY.numPatches()),
                    SignalValues.empty(),
                    0))
        .hasMessage(
            "layer must be in [0, visionFeatureLayer] = [0, "
                + TINY.visionFeatureLayer()
                + "], got "
                + (TINY.visionFeatureLayer() + 1));
    assertThatThrownBy(
            () ->
                new VisionLayerContext(
                    TINY,
                    0,
                    VisionPoint.AFTER_LAYER,
                    new float[3],
                    TokenProvenance.identity(3),
                    SignalValues.empty(),
                    0))
        .hasMessage("provenance has 3 patch tokens, sizes has 3 rows");
    SequenceLayout l = SequenceLayout.prefill(1, 2, 1, List.of());
    assertThatThrownBy(() -> new PrefillContext(TINY, 0, l, 3, SignalValues.empty(), 0))
        .hasMessage("cacheLength 3 is below the 4 rows of the layout");
    assertThatThrownBy(() -> new Signal.VitKeys(TINY.visionFeatureLayer() + 1).validate(TINY))
        .hasMessageStartingWith("VitKeys.vitLayer must be in [0, visionFeatureLayer]");
    assertThatThrownBy(() -> new Signal.LmHiddenStates(TINY.lmLayers()).validate(TINY))
        .hasMessageStartingWith("LmHiddenStates.lmLayer must be in [0, lmLayers-1]");
    assertThat(new Signal.QueryRowHeadAttention(1, QueryRows.LAST_PROMPT_TOKEN).deliveredAt())
        .isEqualTo(Hook.PREFILL_AFTER);
    assertThat(new Signal.LmHiddenStates(1).deliveredAt()).isEqualTo(Hook.PREFILL);
    assertThat(new Signal.VitClsAttention(0).deliveredAt()).isEqualTo(Hook.VISION_LAYER);
    assertThatThrownBy(() -> TokenProvenance.of(new int[][] {{3, 1}}, new float[][] {{0.5f, 0.5f}}))
        .hasMessage("token 0: patches must be non-negative and strictly ascending, got [3, 1]");
    TokenProvenance p =
        TokenProvenance.identity(4)
            .apply(
                TokenReduction.of(
                    4,
                    new int[][] {{0, 3}, {1}},
                    new float[][] {{1, 3}, {1}},
                    PositionMode.REPACK));
    assertThat(p.patches(0)).containsExactly(0, 3);
    assertThat(p.weights(0)).containsExactly(0.25f, 0.75f);
    assertThat(p.representatives()).containsExactly(0, 1);
    assertThat(TokenProvenance.of(new int[][] {{0, 3}, {1}}, new float[][] {{0.25f, 0.75f}, {1}}))
        .isEqualTo(p);
  }

  @Test
  void hooksInGenerationOrder() {
    assertThat(Hook.values())
        .containsExactly(
            Hook.VISION_LAYER,
            Hook.BRANCH,
            Hook.VISUAL_TOKENS,
            Hook.PREFILL,
            Hook.PREFILL_AFTER,
            Hook.KV_FINALIZE,
            Hook.DECODE,
            Hook.LOGITS,
            Hook.KV_APPEND);
  }
}
