package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.MustDropConfig;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** MustDrop as a plan operator, driven through {@link HookRunner} with synthetic signals. */
class MustDropOperatorTest {
  /** 6×6 patches (four 3×3 windows), 3 ViT layers run, 4 LM layers. */
  private static final ModelShape SHAPE = new ModelShape(3, 2, 6, 6, true, 2, 4, 2, 2, 8);

  private static final int D = 4;

  private static MustDropConfig config(String json) {
    return (MustDropConfig)
        CompressionPlan.parse("[{\"op\":\"mustdrop\"" + json + "}]").operators().get(0);
  }

  /** Block-0 output where windows 0 and 3 are constant (cosine 1), the rest random. */
  private static float[] hidden() {
    Random rnd = new Random(7);
    float[] h = new float[37 * D];
    for (int i = 0; i < h.length; i++) {
      h[i] = (float) rnd.nextGaussian();
    }
    for (int p = 0; p < 36; p++) {
      int r = p / 6;
      int c = p % 6;
      if ((r < 3 && c < 3) || (r >= 3 && c >= 3)) {
        for (int k = 0; k < D; k++) {
          h[(1 + p) * D + k] = 1 + k + (r < 3 ? 0 : 2);
        }
      }
    }
    return h;
  }

  @Test
  void hooksFollowTheStagesAndEachRecordGetsItsOwnState() {
    TokenOperator op = config("").build();
    assertThat(op.hooks())
        .containsExactlyInAnyOrder(
            Hook.VISION_LAYER, Hook.PREFILL_AFTER, Hook.KV_FINALIZE, Hook.DECODE);
    assertThat(config(",\"stage_b\":false").build().hooks()).containsExactly(Hook.VISION_LAYER);
    assertThat(config(",\"stage_c\":false,\"decode_positions\":\"final_length\"").build().hooks())
        .containsExactlyInAnyOrder(Hook.VISION_LAYER, Hook.PREFILL_AFTER);
    assertThat(op.visionPoint()).isEqualTo(VisionPoint.AFTER_LAYER);
    assertThat(op.forRecord()).isNotSameAs(op.forRecord());
    assertThat(op.signals(SHAPE))
        .containsExactly(
            new Signal.VitLayerOutput(0),
            new Signal.VitClsAttention(2),
            new Signal.QueryRowAttention(0, QueryRows.TEXT_AFTER_VISUAL),
            new Signal.QueryRowAttention(1, QueryRows.TEXT_AFTER_VISUAL),
            new Signal.QueryRowAttention(2, QueryRows.TEXT_AFTER_VISUAL));
    assertThatThrownBy(() -> CompressionPlan.of(config(",\"window\":7")).bind(SHAPE))
        .hasMessageStartingWith(
            "plan[0]: mustdrop.window must be at most the patch grid's smaller side 6");
    assertThatThrownBy(() -> CompressionPlan.of(config(",\"pruning_layers\":[3]")).bind(SHAPE))
        .hasMessageContaining("mustdrop.pruning_layers must be in [0, lmLayers-2] = [0, 2]");
    assertThatThrownBy(
            () ->
                CompressionPlan.of(config(""))
                    .bind(new ModelShape(3, 2, 6, 6, false, 2, 4, 2, 2, 8)))
        .hasMessageContaining("mustdrop.stage_a must be false for this model");
  }

  @Test
  void stageAThenStageBThroughTheHookRunner() {
    MustDropConfig cfg =
        config(",\"threshold\":0.99,\"key_share\":0.25,\"global_thr\":0.05,\"individual_thr\":1");
    List<TokenOperator> ops = CompressionPlan.of(cfg).bind(SHAPE);
    HookRunner run = new HookRunner(ops, SHAPE, 0L);
    float[] h = hidden();
    MustDrop.WindowMerge ref = new MustDrop(cfg).mergeWindows(h, 6, 6, D, true);
    assertThat(ref.mergedWindows()).containsExactly(0, 3);
    run.startVision(37);
    TokenReduction red =
        run.visionLayer(
            0,
            VisionPoint.AFTER_LAYER,
            (s, l, rows) -> {
              assertThat(s).isEqualTo(new Signal.VitLayerOutput(0));
              return FloatTensor.wrap(h, 37, D);
            });
    assertThat(red.positions()).isEqualTo(PositionMode.REPACK);
    assertThat(red.apply(h, D)).containsExactly(ref.hidden());
    assertThat(run.keptMaps().get(0).merged()).isEqualTo(16);
    assertThat(run.visionLayer(1, VisionPoint.AFTER_LAYER, (s, l, rows) -> null)).isNull();
    // last layer: CLS attention over the 21 merged rows; the top ceil(0.25·20) = 5 patches are keys
    float[] cls = new float[21];
    int[] keyRows = {1, 2, 7, 11, 20};
    for (int t = 0; t < 21; t++) {
      cls[t] = 0.01f;
    }
    for (int k : keyRows) {
      cls[k] = 0.2f;
    }
    assertThat(
            run.visionLayer(2, VisionPoint.AFTER_LAYER, (s, l, rows) -> FloatTensor.wrap(cls, 21)))
        .isNull();
    float[] feats = new float[20 * 3];
    run.visualTokens(feats, 20, 3, 2, 3);
    SequenceLayout layout = run.layout();
    assertThat(layout.length()).isEqualTo(25);
    // key patches: the representatives of merged rows 1, 2, 7, 11, 20
    int[] reps = run.visualProvenance().representatives();
    int[] keyPatches = new int[keyRows.length];
    for (int i = 0; i < keyRows.length; i++) {
      keyPatches[i] = ref.sources(keyRows[i] - 1)[0];
    }
    // stage B at layer 0: the text rows give every visual column tiny attention except columns 0..3
    float[] att = new float[3 * 25];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 25; j++) {
        att[i * 25 + j] = j >= 2 && j < 6 ? 0.2f : 0.001f;
      }
    }
    int[] kept =
        run.afterPrefillLayer(
            0,
            (s, l, rows) -> {
              assertThat(s).isEqualTo(new Signal.QueryRowAttention(0, QueryRows.TEXT_AFTER_VISUAL));
              return FloatTensor.wrap(att, 3, 25);
            });
    KeptMap m = run.keptMaps().get(run.keptMaps().size() - 1);
    assertThat(m.positions()).isEqualTo(PositionMode.REPACK);
    SequenceLayout after = run.layout();
    assertThat(after.positionIds())
        .containsExactly(java.util.stream.IntStream.range(0, kept.length).toArray());
    assertThat(after.nextPosition()).isEqualTo(kept.length);
    // kept visual patches: the four attended ones plus every key patch, nothing else
    int[] visual = Arrays.stream(after.visualRows()).map(after::visualIndex).sorted().toArray();
    int[] expected =
        java.util.stream.IntStream.concat(
                Arrays.stream(Arrays.copyOfRange(reps, 0, 4)), Arrays.stream(keyPatches))
            .distinct()
            .sorted()
            .toArray();
    assertThat(visual).containsExactly(expected);
    assertThat(kept.length).isEqualTo(2 + expected.length + 3);
  }
}
