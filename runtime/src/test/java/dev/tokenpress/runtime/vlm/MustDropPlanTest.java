package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.MustDropConfig;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.prune.MustDrop;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.TestOperator;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionEncoder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** MustDrop through the production hook path on the bundled model (16×16 patches, 3 ViT layers run). */
class MustDropPlanTest {
  private static VlmRuntime rt;
  private static byte[] image;
  private static final String Q = "is there a red circle?";

  @BeforeAll
  static void open() throws Exception {
    rt = VlmRuntime.open(TinyLlavaBundle.bundle(), VlmOptions.defaults().withMaxNewTokens(8));
    try (Stream<Path> s = Files.list(TinyLlavaBundle.checkpoint().resolve("reference_images"))) {
      image = Files.readAllBytes(s.sorted().findFirst().orElseThrow());
    }
  }

  @AfterAll
  static void close() {
    if (rt != null) {
      rt.close();
    }
  }

  private static VlmResult logits(String plan) {
    return rt.generate(VlmRequest.ofBytes("t", image, Q).withPlan(CompressionPlan.parse(plan)).withRecordLogits(true)
        .withoutStopTokens().withMaxNewTokens(3));
  }

  static double maxDiff(VlmResult a, VlmResult b) {
    assertThat(b.tokenIds()).containsExactly(a.tokenIds());
    double max = 0;
    for (int s = 0; s < a.stepLogits().size(); s++) {
      float[] x = a.stepLogits().get(s);
      float[] y = b.stepLogits().get(s);
      for (int i = 0; i < x.length; i++) {
        max = Math.max(max, Math.abs(x[i] - y[i]));
      }
    }
    return max;
  }

  private static MustDropConfig stageAOnly(double threshold) {
    return (MustDropConfig) CompressionPlan.parse("[{\"op\":\"mustdrop\",\"stage_b\":false,\"stage_c\":false,"
        + "\"threshold\":" + threshold + "}]").operators().get(0);
  }

  /** Records the value of one signal at one ViT layer and point. */
  private static TokenOperator recorder(VisionPoint point, Signal signal, Map<Signal, float[]> into) {
    return new TestOperator("rec-" + signal, EnumSet.of(Hook.VISION_LAYER), signal) {
      @Override
      public VisionPoint visionPoint() {
        return point;
      }

      @Override
      public TokenReduction reduceVisionLayer(VisionLayerContext c) {
        if (c.layer() == signal.layer()) {
          into.put(signal, c.signals().get(signal).toArray());
        }
        return TokenReduction.keepAll(c.tokens());
      }
    };
  }

  /** Block 0's output of the reference image and, with {@code op} in the plan, block 1's (merged) input. */
  private static Map<Signal, float[]> encode(TokenOperator op, HookRunner[] runner) {
    Map<Signal, float[]> rec = new HashMap<>();
    List<TokenOperator> ops = new java.util.ArrayList<>();
    ops.add(recorder(VisionPoint.AFTER_LAYER, new Signal.VitLayerOutput(0), rec));
    if (op != null) {
      ops.add(op);
    }
    ops.add(recorder(VisionPoint.AFTER_ATTENTION, new Signal.VitHiddenStates(1), rec));
    HookRunner hooks = new HookRunner(ops, rt.shape(), 0L);
    PixelValues px = rt.preprocessor().preprocess(rt.decoder().decode(image));
    try (VisionEncoder enc = VisionBundle.openSplit(rt.bundle(), SessionConfig.singleThreaded())) {
      enc.encode(px, hooks);
    }
    runner[0] = hooks;
    return rec;
  }

  @Test
  void configIsAPlanOperatorValidatedAgainstTheModel() {
    CompressionPlan p = CompressionPlan.parse("[{\"op\":\"mustdrop\",\"threshold\":0.9,\"pruning_layers\":[1]}]");
    assertThat(p.operators().get(0)).isInstanceOf(MustDropConfig.class);
    assertThat(CompressionPlan.parse(p.toJson())).isEqualTo(p);
    assertThatThrownBy(() -> rt.validate(CompressionPlan.parse("[{\"op\":\"mustdrop\",\"window\":17}]")))
        .hasMessageStartingWith("plan[0]: mustdrop.window must be at most the patch grid's smaller side 16");
    assertThatThrownBy(() -> rt.validate(CompressionPlan.parse("[{\"op\":\"mustdrop\",\"pruning_layers\":[1,9]}]")))
        .hasMessageContaining("mustdrop.pruning_layers must be in [0, lmLayers-2]");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"mustdrop\",\"key_share\":1.5}]"))
        .hasMessageStartingWith("plan[0]: mustdrop.key_share must be a number in [0, 1], got 1.5");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"mustdrop\",\"gamma\":1}]"))
        .hasMessageContaining("mustdrop: unknown key \"gamma\"");
  }

  @Test
  void stageAWithThresholdAboveOneGivesTheEmptyPlansLogits() {
    VlmResult empty = logits("[]");
    VlmResult none = logits("[" + stageAOnly(1.5).toJson() + "]");
    assertThat(maxDiff(empty, none)).isLessThanOrEqualTo(1e-5);
    assertThat(none.visualTokensKept()).isEqualTo(256);
    assertThat(none.keptMaps()).isEmpty();
  }

  @Test
  void stageAMergesWindowsExactlyAsMergeWindowsOnBlockZerosOutput() {
    int d = VisionBundle.spec(rt.bundle()).config().hiddenSize();
    HookRunner[] runner = new HookRunner[1];
    float[] block0 = encode(null, runner).get(new Signal.VitLayerOutput(0));
    assertThat(block0).hasSize(257 * d);
    // a threshold between the window similarities: some windows merge, some do not
    double[] sim = new MustDrop(stageAOnly(0.8)).mergeWindows(block0, 16, 16, d, true).similarity();
    assertThat(sim).hasSize(25);
    double[] sorted = sim.clone();
    Arrays.sort(sorted);
    double threshold = (sorted[12] + sorted[13]) / 2;
    MustDropConfig cfg = stageAOnly(threshold);
    MustDrop.WindowMerge ref = new MustDrop(cfg).mergeWindows(block0, 16, 16, d, true);
    assertThat(ref.mergedWindows()).hasSize(12);

    // the production path: HookRunner + VisionEncoder with the plan's operator
    Map<Signal, float[]> rec = encode(CompressionPlan.of(cfg).bind(rt.shape()).get(0), runner);
    assertThat(rec.get(new Signal.VitLayerOutput(0))).containsExactly(block0);
    float[] merged = rec.get(new Signal.VitHiddenStates(1));
    assertThat(merged).hasSize((1 + ref.tokens()) * d);
    for (int i = 0; i < merged.length; i++) {
      assertThat((double) merged[i]).as("element %d", i).isCloseTo(ref.hidden()[i],
          org.assertj.core.api.Assertions.within(1e-6));
    }
    KeptMap m = runner[0].keptMaps().get(0);
    assertThat(m.hook()).isEqualTo(Hook.VISION_LAYER);
    assertThat(m.layer()).isEqualTo(0);
    assertThat(m.merged()).isEqualTo(12 * 8);

    // end to end: provenance covers every patch once; merged tokens stand for their windows
    VlmResult r = rt.generate(VlmRequest.ofBytes("m", image, Q).withPlan(CompressionPlan.of(cfg)));
    assertThat(r.visualTokensKept()).isEqualTo(256 - 12 * 8);
    TokenProvenance p = r.provenance();
    assertThat(p.count()).isEqualTo(ref.tokens());
    boolean[] seen = new boolean[256];
    int windows = 0;
    for (int t = 0; t < p.count(); t++) {
      for (int patch : p.patches(t)) {
        assertThat(seen[patch]).isFalse();
        seen[patch] = true;
      }
      if (p.size(t) == 9) {
        windows++;
        assertThat(p.weights(t)).containsOnly(1f / 9);
      }
    }
    assertThat(seen).containsOnly(true);
    assertThat(windows).isEqualTo(12);
    for (int t = 0; t < 12; t++) {
      int[] src = ref.sources(t);
      boolean found = false;
      for (int u = 0; u < p.count(); u++) {
        found |= Arrays.equals(p.patches(u), src);
      }
      assertThat(found).as("window %d", ref.mergedWindows()[t]).isTrue();
    }
    assertThat(r.prefillLayout().visualCount()).isEqualTo(ref.tokens());
    assertThat(r.prefillLayout().nextPosition()).isEqualTo(r.promptIds().length - 1 + ref.tokens());
  }
}
