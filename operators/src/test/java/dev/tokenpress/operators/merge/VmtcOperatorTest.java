package dev.tokenpress.operators.merge;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.Budget;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.ToMeConfig;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.api.VmtcConfig;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * VMTC as a plan operator: config binding, plan-start checks, and the production {@link HookRunner}
 * path at both {@code merge_at} points, checked against {@link Vmtc#compress} called directly on
 * the same signals.
 */
class VmtcOperatorTest {
  /** 4 ViT layers, feature layer 2, a 3x5 grid (15 patches) with CLS. */
  private static final ModelShape SHAPE = new ModelShape(4, 2, 3, 5, true, 2, 2, 2, 2, 8);

  private static final int T = 16;
  private static final int DIM = 6;
  private static final long SEED = 12345L;

  private static float[] random(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextDouble() * 2 - 1);
    }
    return x;
  }

  /** A CLS attention row over {@code t} rows (sums to 1), from the production head-mean softmax. */
  private static float[] clsRow(int t, long seed) {
    return Kernels.headMeanSoftmax(random(2 * t, seed), 2, t);
  }

  /** The per-head rows behind {@link #clsRow} ({@code [2, t]}, each row sums to 1). */
  private static float[] clsHeads(int t, long seed) {
    float[] logits = random(2 * t, seed);
    float[] probs = new float[logits.length];
    for (int h = 0; h < 2; h++) {
      Kernels.softmax(logits, h * t, t, probs, h * t);
    }
    return probs;
  }

  /** Per-layer ViT signals: output rows, CLS attention, keys, all deterministic in the layer. */
  private static HookRunner.SignalSource source(int layer, int t, List<Signal> asked) {
    return (s, layout, rows) -> {
      asked.add(s);
      if (s instanceof Signal.VitClsAttention) {
        return FloatTensor.wrap(clsRow(t, 100 + layer), t);
      }
      if (s instanceof Signal.VitClsHeadAttention) {
        return FloatTensor.wrap(clsHeads(t, 100 + layer), 2, t);
      }
      if (s instanceof Signal.VitLayerOutput) {
        return FloatTensor.wrap(random(t * DIM, 200 + layer), t, DIM);
      }
      if (s instanceof Signal.VitKeys) {
        return FloatTensor.wrap(random(t * 3, 300 + layer), t, 3);
      }
      throw new IllegalArgumentException("not asked for in this test: " + s);
    };
  }

  private static List<TokenOperator> bind(String plan) {
    return CompressionPlan.parse(plan).bind(SHAPE);
  }

  @Test
  void parsesToTheCanonicalConfigAndBindsAtTheFeatureLayer() {
    CompressionPlan plan = CompressionPlan.parse("[{\"op\":\"vmtc\",\"keep\":6}]");
    assertThat(plan.operators().get(0)).isEqualTo(VmtcConfig.defaults(Budget.keep(6)));
    assertThat(CompressionPlan.parse(plan.toJson())).isEqualTo(plan);
    VmtcConfig full =
        (VmtcConfig)
            CompressionPlan.parse(
                    "[{\"op\":\"vmtc\",\"keep_ratio\":0.5,"
                        + "\"merge_at\":\"projected\",\"primary\":2,\"importance_layers\":\"1..L-2\",\"cluster_over\":\"all\","
                        + "\"metric\":\"euclidean\",\"max_iterations\":7,\"tolerance\":0.01,\"merge_weight\":\"size\","
                        + "\"empty_clusters\":\"drop\",\"order\":\"raster\",\"seed\":-3}]")
                .operators()
                .get(0);
    assertThat(full)
        .isEqualTo(
            VmtcConfig.builder(Budget.keepRatio(0.5))
                .mergeAt(VmtcConfig.MergeAt.PROJECTED)
                .primary(2)
                .importanceLayers(dev.tokenpress.operators.api.LayerRange.parse("1..L-2"))
                .clusterOver(VmtcConfig.ClusterOver.ALL)
                .metric(VmtcConfig.Metric.EUCLIDEAN)
                .maxIterations(7)
                .tolerance(0.01)
                .mergeWeight(VmtcConfig.MergeWeight.SIZE)
                .emptyClusters(VmtcConfig.EmptyClusters.DROP)
                .seed(-3)
                .build());
    assertThat(CompressionPlan.parse(CompressionPlan.of(full).toJson()).operators().get(0))
        .isEqualTo(full);

    TokenOperator op = bind("[{\"op\":\"vmtc\",\"keep\":6}]").get(0);
    assertThat(op.hooks()).containsExactly(Hook.VISION_LAYER);
    assertThat(op.visionPoint()).isEqualTo(VisionPoint.AFTER_LAYER);
    assertThat(op.signals(SHAPE))
        .containsExactly(new Signal.VitClsAttention(2), new Signal.VitLayerOutput(2));
    TokenOperator projected =
        bind("[{\"op\":\"vmtc\",\"keep\":6,\"merge_at\":\"projected\","
                + "\"importance_layers\":\"1..2\"}]")
            .get(0);
    assertThat(projected.hooks()).containsExactly(Hook.VISUAL_TOKENS);
    assertThat(projected.signals(SHAPE))
        .containsExactly(new Signal.ClsAttention(1), new Signal.ClsAttention(2));
  }

  @Test
  void badConfigsFailAtPlanStartNamingTheField() {
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"vmtc\"}]"))
        .hasMessageContaining("plan[0]: vmtc: one of [keep, keep_ratio, drop_ratio] is required");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"vmtc\",\"keep\":4,\"metric\":\"manhattan\"}]"))
        .hasMessageContaining("vmtc.metric must be one of [cosine, euclidean], got \"manhattan\"");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"vmtc\",\"keep\":4,\"merge_at\":\"llm\"}]"))
        .hasMessageContaining("vmtc.merge_at must be one of [projector_input, projected]");
    assertThatThrownBy(
            () ->
                CompressionPlan.parse(
                    "[{\"op\":\"vmtc\",\"keep\":4,\"primary\":1," + "\"primary_share\":0.5}]"))
        .hasMessageContaining("vmtc: give at most one of \"primary\"");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"vmtc\",\"keep\":4,\"primary_share\":1.5}]"))
        .hasMessageContaining("vmtc.primary_share must be in [0, 1], got 1.5");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"vmtc\",\"keep\":4,\"max_iterations\":-1}]"))
        .hasMessageContaining("vmtc.max_iterations must be in [0, 10000], got -1");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"vmtc\",\"keep\":4,\"tolerance\":\"x\"}]"))
        .hasMessageContaining("vmtc.tolerance must be a number");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"vmtc\",\"keep\":4,\"k\":3}]"))
        .hasMessageContaining("vmtc: unknown key \"k\"");
    assertThatThrownBy(() -> bind("[{\"op\":\"vmtc\",\"keep\":16}]"))
        .hasMessageContaining("plan[0]: vmtc.keep must be in [1, 15]");
    assertThatThrownBy(
            () ->
                bind(
                    "[{\"op\":\"vmtc\",\"keep\":4,\"importance_heads\":\"max\","
                        + "\"merge_at\":\"projected\"}]"))
        .hasMessageContaining(
            "plan[0]: vmtc.importance_heads must be \"mean\" at merge_at \"projected\"");
    assertThatThrownBy(() -> bind("[{\"op\":\"vmtc\",\"keep\":4,\"importance_layers\":\"1..2\"}]"))
        .hasMessageContaining(
            "plan[0]: vmtc.importance_layers must be the vision feature layer alone (2");
    assertThatThrownBy(() -> bind("[{\"op\":\"vmtc\",\"keep\":4,\"importance_layers\":\"7\"}]"))
        .hasMessageContaining("vmtc.importance_layers");
    assertThatThrownBy(
            () ->
                bind(
                    "[{\"op\":\"vmtc\",\"keep\":4,\"merge_at\":\"projected\","
                        + "\"order\":\"primary_first\"}]"))
        .hasMessageContaining("plan[0]: vmtc.order must be \"raster\"");
    // VMTC at the projector input runs before every VISUAL_TOKENS operator, wherever it is in the
    // plan
    assertThatThrownBy(
            () -> bind("[{\"op\":\"vmtc\",\"keep\":6},{\"op\":\"random-drop\",\"keep\":7}]"))
        .hasMessageContaining("plan[1]: random-drop.keep must be in [1, 6]");
    assertThatThrownBy(
            () -> bind("[{\"op\":\"random-drop\",\"keep\":7},{\"op\":\"vmtc\",\"keep\":6}]"))
        .hasMessageContaining("plan[0]: random-drop.keep must be in [1, 6]");
    assertThat(bind("[{\"op\":\"random-drop\",\"keep\":5},{\"op\":\"vmtc\",\"keep\":6}]"))
        .hasSize(2);
  }

  /**
   * The reduction VMTC over {@code patches} must give, built from a direct {@link Vmtc#compress}
   * call.
   */
  private static void assertSameAsDirect(TokenReduction red, VmtcResult direct, int prefix) {
    assertThat(red.outputCount()).isEqualTo(prefix + direct.count());
    for (int o = 0; o < direct.count(); o++) {
      int[] g = red.group(prefix + o);
      int[] src = direct.sources(o);
      for (int j = 0; j < src.length; j++) {
        src[j] += prefix;
      }
      assertThat(g).as("group %d", o).containsExactly(src);
      float[] w = direct.weights(o);
      float[] rw = red.weights(prefix + o);
      for (int j = 0; j < w.length; j++) {
        assertThat(rw[j]).isEqualTo(Math.max(w[j], Float.MIN_VALUE));
      }
    }
  }

  @Test
  void atTheProjectorInputTheHookRunnerPathEqualsVmtcOnTheSameSignals() {
    VmtcConfig cfg = VmtcConfig.builder(Budget.keep(6)).primary(2).build();
    HookRunner run = new HookRunner(CompressionPlan.of(cfg).bind(SHAPE), SHAPE, SEED);
    run.startVision(T);
    List<Signal> asked = new ArrayList<>();
    for (int layer = 0; layer < 2; layer++) {
      assertThat(run.actsAt(VisionPoint.AFTER_LAYER)).isTrue();
      assertThat(run.visionLayer(layer, VisionPoint.AFTER_LAYER, source(layer, T, asked))).isNull();
    }
    assertThat(asked).isEmpty();
    TokenReduction red = run.visionLayer(2, VisionPoint.AFTER_LAYER, source(2, T, asked));
    assertThat(asked)
        .containsExactlyInAnyOrder(new Signal.VitClsAttention(2), new Signal.VitLayerOutput(2));

    float[] rows = random(T * DIM, 202);
    float[] patches = java.util.Arrays.copyOfRange(rows, DIM, T * DIM);
    float[] cls = clsRow(T, 102);
    Vmtc vmtc = new Vmtc(cfg);
    float[] importance = vmtc.importance(java.util.Arrays.copyOfRange(cls, 1, T), 1, 1, T - 1);
    VmtcResult direct = vmtc.compress(patches, DIM, importance, SEED);
    assertThat(direct.count()).isEqualTo(6);
    assertThat(direct.clusterCount()).isEqualTo(4);
    assertSameAsDirect(red, direct, 1);
    assertThat(red.group(0)).containsExactly(0);
    float[] applied = red.apply(rows, DIM);
    float[] expected = direct.tokens().toArray();
    for (int i = 0; i < expected.length; i++) {
      assertThat(applied[DIM + i]).isCloseTo(expected[i], within(1e-6f));
    }
    KeptMap map = run.keptMaps().get(0);
    assertThat(map.operator()).isEqualTo("vmtc");
    assertThat(map.layer()).isEqualTo(2);
    assertThat(map.labels()).containsExactly(direct.clusters());
    assertThat(map.toJson()).contains("\"labels\":[");
    assertThat(run.visionSizes()).containsExactly(prepend(1f, direct.sizes()));

    // into the LM: 6 visual tokens in raster order of their first patch, every patch once
    float[] projected = random(6 * 8, 7);
    float[] lm = run.visualTokens(projected, 6, 8, 2, 3);
    assertThat(lm).containsExactly(projected);
    assertThat(run.layout().visualCount()).isEqualTo(6);
    TokenProvenance prov = run.visualProvenance();
    assertCoversEveryPatchOnce(prov, 15);
    int[] labels = map.labels();
    for (int t = 0; t < prov.count(); t++) {
      int[] p = prov.patches(t);
      assertThat(p).containsExactly(direct.sources(t));
      for (int patch : p) {
        // one output per cluster: all patches of a merged token share its cluster, a primary one is
        // alone
        assertThat(labels[patch]).isEqualTo(labels[p[0]]);
        assertThat(direct.outputOf(patch)).isEqualTo(t);
      }
      assertThat(labels[p[0]] == VmtcResult.PRIMARY).isEqualTo(direct.isPrimary(t));
    }
  }

  /** {@code importance_heads: max}: the per-head CLS rows, the maximum over heads per patch. */
  @Test
  void maxOverHeadsTakesThePerHeadClsRows() {
    VmtcConfig cfg =
        VmtcConfig.builder(Budget.keep(6))
            .primary(3)
            .importanceHeads(VmtcConfig.HeadAggregation.MAX)
            .build();
    List<TokenOperator> ops = CompressionPlan.of(cfg).bind(SHAPE);
    assertThat(ops.get(0).signals(SHAPE))
        .containsExactly(new Signal.VitClsHeadAttention(2), new Signal.VitLayerOutput(2));
    HookRunner run = new HookRunner(ops, SHAPE, SEED);
    run.startVision(T);
    List<Signal> asked = new ArrayList<>();
    TokenReduction red = null;
    for (int layer = 0; layer <= 2; layer++) {
      red = run.visionLayer(layer, VisionPoint.AFTER_LAYER, source(layer, T, asked));
    }
    assertThat(asked)
        .containsExactlyInAnyOrder(new Signal.VitClsHeadAttention(2), new Signal.VitLayerOutput(2));

    float[] heads = clsHeads(T, 102);
    float[] patchHeads = new float[2 * (T - 1)];
    for (int h = 0; h < 2; h++) {
      System.arraycopy(heads, h * T + 1, patchHeads, h * (T - 1), T - 1);
    }
    Vmtc vmtc = new Vmtc(cfg);
    float[] importance = vmtc.importance(patchHeads, 1, 2, T - 1);
    for (int j = 0; j < T - 1; j++) {
      assertThat(importance[j]).isEqualTo(Math.max(heads[1 + j], heads[T + 1 + j]));
    }
    float[] rows = random(T * DIM, 202);
    VmtcResult direct =
        vmtc.compress(java.util.Arrays.copyOfRange(rows, DIM, T * DIM), DIM, importance, SEED);
    assertSameAsDirect(red, direct, 1);
    // The mean over heads ranks the patches differently here, so the per-head signal matters.
    float[] mean =
        new Vmtc(VmtcConfig.builder(Budget.keep(6)).primary(3).build())
            .importance(patchHeads, 1, 2, T - 1);
    assertThat(Kernels.topK(mean, T - 1)).isNotEqualTo(Kernels.topK(importance, T - 1));
  }

  @Test
  void reductionLabelsAreValidatedAndPartOfTheValue() {
    TokenReduction r = TokenReduction.keepAll(3);
    assertThat(r.labels()).isNull();
    TokenReduction l = r.withLabels(new int[] {-1, 0, 0});
    assertThat(l.labels()).containsExactly(-1, 0, 0);
    assertThat(l).isNotEqualTo(r).isEqualTo(r.withLabels(new int[] {-1, 0, 0}));
    assertThatThrownBy(() -> r.withLabels(new int[2]))
        .hasMessageContaining("one value per input row (3), got 2");
  }

  static void assertCoversEveryPatchOnce(TokenProvenance prov, int patches) {
    int[] seen = new int[patches];
    for (int t = 0; t < prov.count(); t++) {
      double sum = 0;
      for (float w : prov.weights(t)) {
        sum += w;
      }
      assertThat(sum).as("weights of token %d", t).isCloseTo(1.0, within(1e-5));
      for (int p : prov.patches(t)) {
        seen[p]++;
      }
    }
    assertThat(seen).containsOnly(1);
  }

  private static float[] prepend(float v, float[] a) {
    float[] out = new float[a.length + 1];
    out[0] = v;
    System.arraycopy(a, 0, out, 1, a.length);
    return out;
  }

  @Test
  void afterToMeVmtcSeesTheMergedSequenceWithItsSizes() {
    CompressionPlan plan =
        CompressionPlan.of(
            new ToMeConfig(java.util.List.of(3, 0, 0), true),
            VmtcConfig.builder(Budget.keep(5)).mergeWeight(VmtcConfig.MergeWeight.SIZE).build());
    HookRunner run = new HookRunner(plan.bind(SHAPE), SHAPE, SEED);
    run.startVision(T);
    List<Signal> asked = new ArrayList<>();
    TokenReduction tome = run.visionLayer(0, VisionPoint.AFTER_ATTENTION, source(0, T, asked));
    assertThat(tome.outputCount()).isEqualTo(T - 3);
    assertThat(run.visionLayer(0, VisionPoint.AFTER_LAYER, source(0, T, asked))).isNull();
    assertThat(run.visionLayer(1, VisionPoint.AFTER_LAYER, source(1, T - 3, asked))).isNull();
    float[] sizesBefore = run.visionSizes();
    TokenReduction red = run.visionLayer(2, VisionPoint.AFTER_LAYER, source(2, T - 3, asked));

    float[] rows = random((T - 3) * DIM, 202);
    float[] patches = java.util.Arrays.copyOfRange(rows, DIM, (T - 3) * DIM);
    float[] cls = clsRow(T - 3, 102);
    Vmtc vmtc = new Vmtc((VmtcConfig) plan.operators().get(1));
    float[] importance = vmtc.importance(java.util.Arrays.copyOfRange(cls, 1, T - 3), 1, 1, T - 4);
    VmtcResult direct =
        vmtc.compress(
            patches,
            DIM,
            patches,
            DIM,
            importance,
            java.util.Arrays.copyOfRange(sizesBefore, 1, T - 3),
            SEED);
    assertSameAsDirect(red, direct, 1);
    assertThat(run.visionSizes()).containsExactly(prepend(1f, direct.sizes()));
    run.visualTokens(random(5 * 8, 7), 5, 8, 0, 0);
    assertCoversEveryPatchOnce(run.visualProvenance(), 15);
    assertThat(run.keptMaps()).extracting(KeptMap::operator).containsExactly("tome", "vmtc");
  }

  @Test
  void atProjectedTokensTheHookRunnerPathEqualsVmtcOnTheSameSignals() {
    VmtcConfig cfg =
        VmtcConfig.builder(Budget.keep(7))
            .mergeAt(VmtcConfig.MergeAt.PROJECTED)
            .importanceLayers(dev.tokenpress.operators.api.LayerRange.parse("1..2"))
            .build();
    HookRunner run = new HookRunner(CompressionPlan.of(cfg).bind(SHAPE), SHAPE, SEED);
    run.startVision(T);
    float[] cls1 = clsRow(T, 41);
    float[] cls2 = clsRow(T, 42);
    run.putClsAttention(1, cls1);
    run.putClsAttention(2, cls2);
    float[] projected = random(15 * 8, 9);
    float[] lm = run.visualTokens(projected, 15, 8, 2, 3);

    Vmtc vmtc = new Vmtc(cfg);
    float[] both = new float[30];
    System.arraycopy(cls1, 1, both, 0, 15);
    System.arraycopy(cls2, 1, both, 15, 15);
    VmtcResult direct = vmtc.compress(projected, 8, vmtc.importance(both, 2, 1, 15), SEED);
    assertThat(lm.length).isEqualTo(7 * 8);
    float[] expected = direct.tokens().toArray();
    for (int i = 0; i < expected.length; i++) {
      assertThat(lm[i]).isCloseTo(expected[i], within(1e-6f));
    }
    KeptMap map = run.keptMaps().get(0);
    assertThat(map.hook()).isEqualTo(Hook.VISUAL_TOKENS);
    assertThat(map.labels()).containsExactly(direct.clusters());
    assertThat(run.layout().visualCount()).isEqualTo(7);
    TokenProvenance prov = run.visualProvenance();
    assertCoversEveryPatchOnce(prov, 15);
    for (int t = 0; t < 7; t++) {
      assertThat(prov.patches(t)).containsExactly(direct.sources(t));
    }
  }
}
