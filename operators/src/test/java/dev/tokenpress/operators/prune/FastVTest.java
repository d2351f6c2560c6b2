package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.Budget;
import dev.tokenpress.operators.api.FastVConfig;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.PrefillLayerContext;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.operators.testing.Golden;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** FastV against {@code src/test/python/gen_golden_fastv.py}, plus invariants. */
class FastVTest {

  private static final Map<String, Object> GOLDEN = Golden.load("fastv/fastv.json");
  private static final int HEADS = Golden.integer(GOLDEN.get("heads"));
  private static final int S = Golden.integer(GOLDEN.get("seq_len"));
  private static final ModelShape SHAPE = new ModelShape(4, 2, 4, 4, true, 2, 4, HEADS, 2, 8);

  /** What the runtime does: the last row's per-head logits → QueryRowAttention value [1, S]. */
  private static FloatTensor attentionRow() {
    float[] logits = Golden.floats(GOLDEN.get("last_row_logits"));
    return FloatTensor.wrap(Kernels.headMeanSoftmax(logits, HEADS, S), 1, S);
  }

  @SuppressWarnings("unchecked")
  private static SequenceLayout layout(String name) {
    Map<String, Object> l =
        (Map<String, Object>) ((Map<String, Object>) GOLDEN.get("layouts")).get(name);
    return SequenceLayout.of(
        Golden.ints(l.get("original_index")),
        Golden.ints(l.get("position_id")),
        Golden.ints(l.get("visual_index")));
  }

  private static Budget budget(Map<String, Object> c) {
    if (c.containsKey("keep")) {
      return Budget.keep(Golden.integer(c.get("keep")));
    }
    return Budget.dropRatio(Golden.number(c.get("drop_ratio")));
  }

  @Test
  void attentionRowMatchesNumpy() {
    double[] expected = Golden.doubles(GOLDEN.get("attention_row"));
    FloatTensor row = attentionRow();
    for (int j = 0; j < S; j++) {
      assertThat((double) row.get(j)).isCloseTo(expected[j], within(1e-7));
    }
  }

  @Test
  void keptRowsAndPositionsMatchNumpy() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("cases"))) {
      String name = (String) c.get("name");
      int k = Golden.integer(c.get("layer"));
      FastV op = new FastVConfig(k, budget(c), FastVConfig.Mode.INPLACE).build();
      op.validate(SHAPE);
      SequenceLayout layout = layout((String) c.get("layout"));
      Signal signal = new Signal.QueryRowAttention(k - 1, QueryRows.LAST_PROMPT_TOKEN);
      assertThat(op.signals(SHAPE)).containsExactly(signal);
      FloatTensor row = attentionRow();
      SignalValues values = SignalValues.builder().put(signal, row).build();

      TokenSelection s =
          op.afterPrefillLayer(new PrefillLayerContext(SHAPE, k - 1, layout, values, 0));
      assertThat(s.kept()).as(name).containsExactly(Golden.ints(c.get("kept_rows")));
      assertThat(s.positions() == PositionMode.KEEP_ORIGINAL).isTrue();
      SequenceLayout next = layout.apply(s);
      assertThat(next.positionIds())
          .as(name)
          .containsExactly(Golden.ints(c.get("kept_position_id")));
      assertThat(next.originalIndices())
          .as(name)
          .containsExactly(Golden.ints(c.get("kept_original_index")));
      assertThat(next.nextPosition())
          .as("decode position unchanged")
          .isEqualTo(layout.nextPosition());
      assertThat(row).as("signal unchanged").isEqualTo(attentionRow());

      // Every other layer keeps everything, without reading any signal.
      for (int l = 0; l < SHAPE.lmLayers(); l++) {
        if (l != k - 1) {
          assertThat(
                  op.afterPrefillLayer(
                      new PrefillLayerContext(SHAPE, l, layout, SignalValues.empty(), 0)))
              .isEqualTo(TokenSelection.keepAll(S));
        }
      }
    }
  }

  @Test
  void defaultsAreThePapers() {
    FastV op = FastVConfig.defaults().build();
    assertThat(op.config().layer()).isEqualTo(2);
    assertThat(op.config().budget()).isEqualTo(Budget.dropRatio(0.5));
    assertThat(op.config().budget().resolve(576)).isEqualTo(288);
    assertThat(op.scoringSignal())
        .isEqualTo(new Signal.QueryRowAttention(1, QueryRows.LAST_PROMPT_TOKEN));
    assertThat(op.hooks()).containsExactly(Hook.PREFILL_AFTER);
    assertThat(op.toString())
        .isEqualTo("FastV{\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5,\"mode\":\"inplace\"}");
  }

  @Test
  void tiesGoToTheEarlierRow() {
    SequenceLayout layout = SequenceLayout.prefill(2, 6, 2, List.of());
    float[] row = new float[10];
    Arrays.fill(row, 0.1f);
    row[6] = 0.2f;
    FastV op = new FastVConfig(1, Budget.keep(3), FastVConfig.Mode.INPLACE).build();
    SignalValues v =
        SignalValues.builder().put(op.scoringSignal(), FloatTensor.wrap(row, 1, 10)).build();
    assertThat(op.afterPrefillLayer(new PrefillLayerContext(SHAPE, 0, layout, v, 0)).kept())
        .containsExactly(0, 1, 2, 3, 6, 8, 9);
  }

  @Test
  void textOnlySequenceIsKept() {
    SequenceLayout layout = SequenceLayout.prefill(3, 0, 4, List.of());
    FastV op = FastVConfig.defaults().build();
    assertThat(
            op.afterPrefillLayer(
                new PrefillLayerContext(SHAPE, 1, layout, SignalValues.empty(), 0)))
        .isEqualTo(TokenSelection.keepAll(7));
  }

  @Test
  void clearErrors() {
    assertThatThrownBy(
            () ->
                new FastVConfig(4, Budget.dropRatio(0.5), FastVConfig.Mode.INPLACE)
                    .build()
                    .validate(SHAPE))
        .hasMessage("fastv.layer must be in [1, numLayers-1] = [1, 3] for this model, got 4");
    assertThatThrownBy(() -> new FastVConfig(0, Budget.dropRatio(0.5), FastVConfig.Mode.INPLACE))
        .hasMessage("fastv.layer must be in [1, numLayers-1], got 0");
    assertThatThrownBy(() -> new FastVConfig(2, Budget.dropRatio(0.5), FastVConfig.Mode.MASK))
        .hasMessage("fastv.mode \"mask\" is not supported yet; supported: [inplace]");
    FastV op = FastVConfig.defaults().build();
    SequenceLayout layout = layout("plain");
    SignalValues wrong =
        SignalValues.builder()
            .put(op.scoringSignal(), FloatTensor.wrap(new float[S - 1], 1, S - 1))
            .build();
    assertThatThrownBy(
            () -> op.afterPrefillLayer(new PrefillLayerContext(SHAPE, 1, layout, wrong, 0)))
        .hasMessage(
            "signal QueryRowAttention[lmLayer=1, rows=LAST_PROMPT_TOKEN] must be [1, 23] for a "
                + "23-row sequence, got shape [1, 22]");
    assertThatThrownBy(
            () ->
                op.afterPrefillLayer(
                    new PrefillLayerContext(SHAPE, 1, layout, SignalValues.empty(), 0)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("was not supplied by the runtime");
    assertThatThrownBy(() -> op.selectVisualTokens(null))
        .isInstanceOf(UnsupportedOperationException.class)
        .hasMessage("fastv does not act at hook VISUAL_TOKENS");
  }
}
