package dev.tokenpress.operators.contrast;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.BranchInput;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.DamroConfig;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.LogitsContext;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.testing.Golden;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * DAMRO against {@code src/test/python/gen_golden_damro.py} (torch), plus the protocol and
 * invariants.
 */
class DamroTest {

  private static final Map<String, Object> GOLDEN = Golden.load("damro/damro.json");
  private static final int H = Golden.integer(GOLDEN.get("heads"));
  private static final int ROWS = Golden.integer(GOLDEN.get("patch_rows"));
  private static final int COLS = Golden.integer(GOLDEN.get("patch_cols"));
  private static final int P = ROWS * COLS;
  private static final int T = P + 1;

  /** ViT of 2 layers, feature layer 1 (the last run). */
  private static final ModelShape SHAPE = new ModelShape(2, H, ROWS, COLS, true, 1, 2, 2, 1, 3);

  private static float[] clsLogits() {
    return Golden.floats(GOLDEN.get("cls_logits"));
  }

  private static DamroConfig config(int k, DamroConfig.Mode mode) {
    return new DamroConfig(k, 2.0, 0.1, mode, DamroConfig.Decoding.GREEDY, 0L);
  }

  /** Runs the VISION_LAYER and BRANCH hooks of one record with the golden CLS logits. */
  private static BranchInput branch(DamroConfig cfg, float[] logits) {
    TokenOperator op = cfg.build().forRecord();
    SignalValues sv =
        SignalValues.builder()
            .put(new Signal.VitClsLogits(1), FloatTensor.wrap(logits.clone(), H, T))
            .build();
    float[] sizes = new float[T];
    Arrays.fill(sizes, 1f);
    VisionLayerContext vl =
        new VisionLayerContext(
            SHAPE, 1, VisionPoint.AFTER_ATTENTION, sizes, TokenProvenance.identity(P), sv, 5L);
    TokenReduction red = op.reduceVisionLayer(vl);
    assertThat(red.keepsAll()).isTrue();
    return op.branch(VisualTokensContext.initial(SHAPE, features(), SignalValues.empty(), 5L));
  }

  /** Feature row i is (i, 10i, 100i), so a row's origin can be read off its values. */
  private static FloatTensor features() {
    float[] f = new float[P * 3];
    for (int i = 0; i < P; i++) {
      f[i * 3] = i;
      f[i * 3 + 1] = 10 * i;
      f[i * 3 + 2] = 100 * i;
    }
    return FloatTensor.wrap(f, P, 3);
  }

  @Test
  void outliersMatchTheReferenceInBothModesInScoreOrder() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("outliers"))) {
      int k = Golden.integer(c.get("k"));
      for (DamroConfig.Mode mode : DamroConfig.Mode.values()) {
        int[] expected = Golden.ints(c.get(mode.jsonName()));
        BranchInput b = branch(config(k, mode), clsLogits());
        assertThat(b.visualIndices()).as("%s k=%d", mode, k).containsExactly(expected);
        for (int i = 0; i < expected.length; i++) {
          assertThat(b.features().get(i, 1)).isEqualTo(10f * expected[i]);
        }
      }
    }
  }

  @Test
  void headMeanScoresAreTheReferenceProbabilities() {
    float[] s = Damro.scores(clsLogits(), H, T, DamroConfig.Mode.HEAD_MEAN_PROB);
    double[] expected = Golden.doubles(GOLDEN.get("head_mean_prob"));
    for (int j = 0; j < P; j++) {
      assertThat((double) s[j]).isCloseTo(expected[j], within(1e-6));
    }
  }

  @Test
  void contrastiveLogitsWithThePlausibilityCutMatchTheReference() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("contrast"))) {
      double alpha = Golden.number(c.get("alpha"));
      double beta = Golden.number(c.get("beta"));
      float[] l = Golden.floats(c.get("logits"));
      float[] lcd = Golden.floats(c.get("branch_logits"));
      List<?> expected = (List<?>) c.get("expected");
      float[] s = Damro.contrast(l, lcd, alpha, beta);
      for (int i = 0; i < s.length; i++) {
        Object e = expected.get(i);
        if (e == null) {
          assertThat(s[i])
              .as("alpha %s beta %s token %d", alpha, beta, i)
              .isEqualTo(Float.NEGATIVE_INFINITY);
        } else {
          assertThat((double) s[i]).isCloseTo(Golden.number(e), within(1e-4));
        }
      }
      DamroConfig cfg =
          new DamroConfig(
              4, alpha, beta, DamroConfig.Mode.CONCAT_LOGITS, DamroConfig.Decoding.GREEDY, 0L);
      float[] out =
          cfg.build()
              .forRecord()
              .logits(
                  new LogitsContext(
                      SHAPE,
                      0,
                      FloatTensor.wrap(l, l.length),
                      new int[0],
                      1L,
                      FloatTensor.wrap(lcd, lcd.length)));
      assertThat(argmax(out)).isEqualTo(Golden.integer(c.get("greedy")));
    }
  }

  @Test
  void alphaZeroKeepsTheMainLogitsAndTheirArgmax() {
    SplittableRandom r = new SplittableRandom(3);
    for (int trial = 0; trial < 20; trial++) {
      float[] l = new float[50];
      float[] lcd = new float[50];
      for (int i = 0; i < l.length; i++) {
        l[i] = (float) (r.nextGaussian() * 4);
        lcd[i] = (float) (r.nextGaussian() * 4);
      }
      float[] s = Damro.contrast(l, lcd, 0.0, 0.1);
      for (int i = 0; i < l.length; i++) {
        if (s[i] != Float.NEGATIVE_INFINITY) {
          assertThat(s[i]).isEqualTo(l[i]);
        }
      }
      assertThat(argmax(s)).isEqualTo(argmax(l));
    }
  }

  @Test
  void samplingIsSeededPerRecordAndStepAndStaysInsideTheCut() {
    float[] l = {5f, 4.9f, 4.5f, 0f, -3f};
    float[] lcd = {5f, 1f, 2f, -9f, 0f};
    DamroConfig cfg =
        new DamroConfig(
            4, 1.0, 0.1, DamroConfig.Mode.CONCAT_LOGITS, DamroConfig.Decoding.SAMPLE, 7L);
    TokenOperator op = cfg.build().forRecord();
    int[] counts = new int[5];
    for (int step = 0; step < 4000; step++) {
      LogitsContext ctx =
          new LogitsContext(
              SHAPE,
              step,
              FloatTensor.wrap(l.clone(), 5),
              new int[0],
              99L,
              FloatTensor.wrap(lcd.clone(), 5));
      float[] a = op.logits(ctx);
      float[] b = op.logits(ctx);
      assertThat(a).containsExactly(b);
      counts[argmax(a)]++;
    }
    // cut: ln(0.1) + 5 = 2.70 -> tokens 3 and 4 never; s = 2l - lcd = {5, 8.8, 7}
    assertThat(counts[3] + counts[4]).isZero();
    double z = Math.exp(5) + Math.exp(8.8) + Math.exp(7);
    assertThat(counts[1] / 4000.0).isCloseTo(Math.exp(8.8) / z, within(0.03));
    assertThat(counts[2] / 4000.0).isCloseTo(Math.exp(7) / z, within(0.03));
    assertThat(counts[0]).isPositive();
  }

  @Test
  void runsThroughTheHookRunnerAndComposesWithAVisualTokenReduction() {
    CompressionPlan plan =
        CompressionPlan.parse(
            "[{\"op\":\"vtc-cls\",\"keep\":5,\"layers\":\"0..1\"},{\"op\":\"damro\",\"k\":4}]");
    List<TokenOperator> ops = plan.bind(SHAPE);
    HookRunner run = new HookRunner(ops, SHAPE, 42L);
    assertThat(run.signals()).contains(new Signal.VitClsLogits(1));
    run.startVision(T);
    float[] logits = clsLogits();
    float[] probs = dev.tokenpress.operators.tensor.Kernels.headMeanSoftmax(logits, H, T);
    run.putClsAttention(0, probs);
    run.putClsAttention(1, probs);
    assertThat(
            run.visionLayer(
                0,
                VisionPoint.AFTER_ATTENTION,
                (s, l, r) -> {
                  throw new AssertionError("no signal at layer 0: " + s);
                }))
        .isNull();
    assertThat(
            run.visionLayer(
                1,
                VisionPoint.AFTER_ATTENTION,
                (s, l, r) -> {
                  assertThat(s).isEqualTo(new Signal.VitClsLogits(1));
                  return FloatTensor.wrap(logits.clone(), H, T);
                }))
        .isNull();
    float[] visual = run.visualTokens(features().toArray(), P, 3, 2, 3);
    assertThat(visual.length).isEqualTo(5 * 3);
    assertThat(run.layout().length()).isEqualTo(2 + 5 + 3);
    List<BranchInput> branches = run.branches();
    assertThat(branches).hasSize(1);
    int[] expected =
        Golden.ints(Golden.objects(GOLDEN.get("outliers")).get(1).get("concat_logits"));
    assertThat(branches.get(0).visualIndices()).containsExactly(expected);
    KeptMap m =
        run.keptMaps().stream().filter(x -> x.hook() == Hook.BRANCH).findFirst().orElseThrow();
    assertThat(m.operator()).isEqualTo("damro");
    assertThat(m.original()).containsExactly(expected);
    assertThat(m.kept()).containsExactly(expected);
    float[] l = {1f, 3f, 2.9f};
    float[] lcd = {0f, 3f, 0f};
    float[] out = run.logits(0, l, new int[0], new float[][] {lcd});
    assertThat(argmax(out)).isEqualTo(2);
    assertThatThrownBy(() -> run.logits(0, l, new int[0]))
        .hasMessageContaining("0 branch logits for 1 branches");
  }

  @Test
  void configValidatesAndScalesK() {
    assertThat(DamroConfig.defaults().resolveK(576)).isEqualTo(10);
    assertThat(DamroConfig.defaults().resolveK(256)).isEqualTo(4);
    assertThat(DamroConfig.defaults().resolveK(16)).isEqualTo(1);
    assertThat(CompressionPlan.parse("[{\"op\":\"damro\"}]").toJson())
        .isEqualTo(
            "[{\"op\":\"damro\",\"k\":0,\"alpha\":2,\"beta\":0.1,\"mode\":\"concat_logits\",\"decoding\":\"greedy\","
                + "\"seed\":0}]");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"damro\",\"beta\":0}]"))
        .hasMessageContaining("damro.beta must be in (0, 1], got 0.0");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"damro\",\"alpha\":-1}]"))
        .hasMessageContaining("damro.alpha must be a finite number >= 0");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"damro\",\"mode\":\"max\"}]"))
        .hasMessageContaining("mode must be one of [concat_logits, head_mean_prob]");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"damro\",\"k\":17}]").bind(SHAPE))
        .hasMessageContaining(
            "damro.k must be in [1, numPatches] = [1, 16] for this model, got 17");
  }

  private static int argmax(float[] x) {
    int best = 0;
    for (int i = 1; i < x.length; i++) {
      if (x[i] > x[best]) {
        best = i;
      }
    }
    return best;
  }
}
