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
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * MustDrop through the production hook path on the bundled model (16×16 patches, 3 ViT layers run).
 */
class MustDropPlanTest {
  private static VlmRuntime rt;
  private static byte[] image;
  private static final String Q = "is there a red circle?";

  @BeforeAll
  static void open() throws Exception {
    rt = VlmRuntime.open(TinyLlavaBundle.bundle(), VlmOptions.defaults().withMaxNewTokens(8));
    image = Files.readAllBytes(TinyLlavaBundle.firstReferenceImage());
  }

  @AfterAll
  static void close() {
    if (rt != null) {
      rt.close();
    }
  }

  private static VlmResult logits(String plan) {
    return rt.generate(
        VlmRequest.ofBytes("t", image, Q)
            .withPlan(CompressionPlan.parse(plan))
            .withRecordLogits(true)
            .withoutStopTokens()
            .withMaxNewTokens(3));
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
    return (MustDropConfig)
        CompressionPlan.parse(
                "[{\"op\":\"mustdrop\",\"stage_b\":false,\"stage_c\":false,"
                    + "\"threshold\":"
                    + threshold
                    + "}]")
            .operators()
            .get(0);
  }

  /** Records the value of one signal at one ViT layer and point. */
  private static TokenOperator recorder(
      VisionPoint point, Signal signal, Map<Signal, float[]> into) {
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

  /**
   * Block 0's output of the reference image and, with {@code op} in the plan, block 1's (merged)
   * input.
   */
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
    CompressionPlan p =
        CompressionPlan.parse("[{\"op\":\"mustdrop\",\"threshold\":0.9,\"pruning_layers\":[1]}]");
    assertThat(p.operators().get(0)).isInstanceOf(MustDropConfig.class);
    assertThat(CompressionPlan.parse(p.toJson())).isEqualTo(p);
    assertThatThrownBy(
            () -> rt.validate(CompressionPlan.parse("[{\"op\":\"mustdrop\",\"window\":17}]")))
        .hasMessageStartingWith(
            "plan[0]: mustdrop.window must be at most the patch grid's smaller side 16");
    assertThatThrownBy(
            () ->
                rt.validate(
                    CompressionPlan.parse("[{\"op\":\"mustdrop\",\"pruning_layers\":[1,9]}]")))
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
      assertThat((double) merged[i])
          .as("element %d", i)
          .isCloseTo(ref.hidden()[i], org.assertj.core.api.Assertions.within(1e-6));
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

  private static int fedBack(VlmResult r) {
    return r.tokenIds().length
        - (r.stopReason() == dev.tokenpress.runtime.lm.StopReason.STOP_TOKEN ? 0 : 1);
  }

  @Test
  void everyStageAtItsNeutralSettingGivesTheEmptyPlansLogits() {
    VlmResult empty = logits("[]");
    VlmResult neutral =
        logits("[{\"op\":\"mustdrop\",\"threshold\":1.5,\"global_thr\":0,\"individual_thr\":0}]");
    assertThat(maxDiff(empty, neutral)).isLessThanOrEqualTo(1e-5);
    assertThat(neutral.keptMaps()).isEmpty();
    for (int l = 0; l < rt.shape().lmLayers(); l++) {
      assertThat(neutral.kvCache().layer(l).length()).isEqualTo(empty.kvCache().layer(l).length());
      assertThat(neutral.kvCache().layer(l).positions())
          .containsExactly(empty.kvCache().layer(l).positions());
    }
  }

  /**
   * The key set test-side: last ViT run's CLS attention over the (unmerged) patches, top
   * ceil(share·N).
   */
  private static int[] keyPatches(MustDropConfig cfg) {
    float[][] cls = new float[1][];
    int last = rt.shape().visionFeatureLayer();
    HookRunner hooks =
        new HookRunner(
            List.of(
                new TestOperator(
                    "cls", EnumSet.of(Hook.VISION_LAYER), new Signal.VitClsAttention(last)) {
                  @Override
                  public TokenReduction reduceVisionLayer(VisionLayerContext c) {
                    if (c.layer() == last) {
                      cls[0] = c.signals().get(new Signal.VitClsAttention(last)).toArray();
                    }
                    return TokenReduction.keepAll(c.tokens());
                  }
                }),
            rt.shape(),
            0L);
    try (VisionEncoder enc = VisionBundle.openSplit(rt.bundle(), SessionConfig.singleThreaded())) {
      enc.encode(rt.preprocessor().preprocess(rt.decoder().decode(image)), hooks);
    }
    return new MustDrop(cfg).keySet(Arrays.copyOfRange(cls[0], 1, cls[0].length));
  }

  private static MustDropConfig config(String json) {
    return (MustDropConfig) CompressionPlan.parse("[" + json + "]").operators().get(0);
  }

  /**
   * Stage B and C against MustDrop.kvPlan on the rows the runtime kept: per layer the cache's
   * length, token indices and positions after prefill, and each decode entry's position.
   */
  private static VlmResult checkStagesBAndC(MustDropConfig cfg) {
    VlmResult r = rt.generate(VlmRequest.ofBytes("b", image, Q).withPlan(CompressionPlan.of(cfg)));
    int lm = rt.shape().lmLayers();
    int[] p = cfg.pruningLayers(lm);
    dev.tokenpress.operators.api.SequenceLayout initial = r.prefillLayout();
    int l0 = initial.length();
    // the rows kept at every pruning point, as indices into the sequence entering it
    int[][] stageRows = new int[p.length][];
    int[] keptVisual = new int[p.length];
    int len = l0;
    int visual = initial.visualCount();
    int[] orig = initial.originalIndices();
    List<KeptMap> prefill =
        r.keptMaps().stream().filter(m -> m.hook() == Hook.PREFILL_AFTER).toList();
    int k = 0;
    for (int s = 0; s < p.length; s++) {
      if (k < prefill.size() && prefill.get(k).layer() == p[s]) {
        KeptMap m = prefill.get(k++);
        assertThat(m.inputCount()).isEqualTo(len);
        assertThat(m.positions()).isEqualTo(dev.tokenpress.operators.api.PositionMode.REPACK);
        stageRows[s] = m.kept();
        int[] next = new int[m.kept().length];
        for (int i = 0; i < next.length; i++) {
          next[i] = orig[m.kept()[i]];
        }
        assertThat(m.original()).containsExactly(next);
        visual -= len - next.length;
        orig = next;
      } else {
        stageRows[s] = java.util.stream.IntStream.range(0, len).toArray();
      }
      len = stageRows[s].length;
      keptVisual[s] = visual;
    }
    assertThat(k).as("every PREFILL_AFTER map is at a pruning layer").isEqualTo(prefill.size());
    MustDrop.KvPlan plan = new MustDrop(cfg).kvPlan(lm, p, l0, stageRows);
    int fed = fedBack(r);
    int[] all = initial.originalIndices();
    for (int l = 0; l < lm; l++) {
      dev.tokenpress.operators.kv.LayerKvCache c = r.kvCache().layer(l);
      int n = plan.cacheLength(l);
      assertThat(c.length()).as("layer %d", l).isEqualTo(n + fed);
      int[] tokens = Arrays.copyOf(c.tokenIndices(), n);
      int[] expected = new int[n];
      for (int i = 0; i < n; i++) {
        expected[i] = all[plan.tokens()[l][i]];
      }
      assertThat(tokens).as("layer %d tokens", l).containsExactly(expected);
      int[] pos = c.positions();
      for (int step = 0; step < fed; step++) {
        assertThat(pos[n + step])
            .as("layer %d decode step %d", l, step)
            .isEqualTo(plan.decodePosition(l, step));
      }
    }
    // after the last pruning point positions are 0..n-1 (re-packed) and decoding starts at n
    assertThat(Arrays.copyOf(r.kvCache().layer(lm - 1).positions(), plan.finalLength()))
        .containsExactly(java.util.stream.IntStream.range(0, plan.finalLength()).toArray());
    double mean = MustDrop.meanVisualTokens(lm, p, initial.visualCount(), keptVisual);
    System.out.printf(
        "mustdrop %s: visual tokens %d -> per pruning point %s, mean over %d layers %.2f%n",
        cfg.toJson(), initial.visualCount(), Arrays.toString(keptVisual), lm, mean);
    return r;
  }

  @Test
  void stagesBAndCDropReRepackAndTrimTheCacheAsKvPlanSays() {
    MustDropConfig cfg =
        config("{\"op\":\"mustdrop\",\"threshold\":1.5,\"global_thr\":0.004,\"individual_thr\":1}");
    VlmResult r = checkStagesBAndC(cfg);
    assertThat(r.keptMaps()).extracting(KeptMap::hook).contains(Hook.PREFILL_AFTER);
    // key tokens are never dropped: every key patch reaches the last layer
    int[] keys = keyPatches(cfg);
    assertThat(keys).hasSize((int) Math.ceil(0.08 * 256));
    int[] survivors = r.keptMaps().get(r.keptMaps().size() - 1).original();
    int prefix = r.prefillLayout().visualRows()[0];
    for (int key : keys) {
      assertThat(Arrays.binarySearch(survivors, prefix + key))
          .as("key patch %d", key)
          .isGreaterThanOrEqualTo(0);
    }
    // without stage C each layer keeps its own sequence and decodes at its own cache length (the
    // code's quirk)
    checkStagesBAndC(
        config(
            "{\"op\":\"mustdrop\",\"threshold\":1.5,\"global_thr\":0.004,\"individual_thr\":1,"
                + "\"stage_c\":false}"));
    // one later pruning point: layer 0 keeps everything and decodes at L0 + step, the rest at
    // L_final + step
    checkStagesBAndC(
        config(
            "{\"op\":\"mustdrop\",\"threshold\":1.5,\"global_thr\":0.004,\"individual_thr\":1,"
                + "\"pruning_layers\":[1]}"));
    // final_length: every layer decodes at L_final + step
    checkStagesBAndC(
        config(
            "{\"op\":\"mustdrop\",\"threshold\":1.5,\"global_thr\":0.004,\"individual_thr\":1,"
                + "\"pruning_layers\":[1],\"stage_c\":false,\"decode_positions\":\"final_length\"}"));
  }

  @Test
  void allStagesTogetherEndToEnd() {
    // stage A merges the most similar windows of this image, then B and C act on the merged tokens
    MustDropConfig cfg =
        config(
            "{\"op\":\"mustdrop\",\"threshold\":-1,\"retained_tokens\":128,"
                + "\"global_thr\":0.004,\"individual_thr\":1}");
    VlmResult r = checkStagesBAndC(cfg);
    assertThat(r.visualTokensKept()).isEqualTo(128);
    assertThat(r.keptMaps().get(0).hook()).isEqualTo(Hook.VISION_LAYER);
    assertThat(r.answer()).isNotNull();
    // the plain default plan runs too (on this image: 12 windows merge, 256 -> 160; γ = α = 0.001
    // drop nothing)
    VlmResult d = checkStagesBAndC(config("{\"op\":\"mustdrop\"}"));
    assertThat(d.keptMaps())
        .allMatch(m -> m.hook() == Hook.PREFILL_AFTER || m.hook() == Hook.VISION_LAYER);
  }
}
