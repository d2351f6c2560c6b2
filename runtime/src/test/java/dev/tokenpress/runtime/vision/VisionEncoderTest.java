package dev.tokenpress.runtime.vision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleWriter;
import dev.tokenpress.runtime.checkpoint.TensorStore;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.TestOperator;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Against {@code src/test/python/gen_vision_golden.py} (torch transcription of HF CLIP + LLaVA).
 */
class VisionEncoderTest {
  private static final double TOL = 1e-5;
  private static VisionConfig cfg;
  private static VisionGraphs graphs;
  private static TestSafetensors golden;
  private static VisionEncoder encoder;
  private static TensorStore store;

  @BeforeAll
  static void setUp() {
    cfg = VisionConfig.fromLlavaConfig(TestSafetensors.json("/vision/config.json"));
    store = TensorStore.open(resourceDir());
    graphs = new VisionGraphs(cfg, WeightSource.of(store));
    golden = TestSafetensors.resource("/vision/golden.safetensors");
    encoder = VisionEncoder.create(graphs, SessionConfig.singleThreaded());
  }

  @AfterAll
  static void tearDown() {
    encoder.close();
    store.close();
  }

  static Path resourceDir() {
    try {
      return Path.of(VisionEncoderTest.class.getResource("/vision/config.json").toURI())
          .getParent();
    } catch (java.net.URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  static PixelValues pixels(int image) {
    float[] all = golden.floats("pixel_values");
    int n = 3 * cfg.imageSize() * cfg.imageSize();
    float[] one = new float[n];
    System.arraycopy(all, image * n, one, 0, n);
    return PixelValues.wrap(cfg.imageSize(), cfg.imageSize(), one);
  }

  @Test
  void config() {
    assertThat(cfg.layersRun()).isEqualTo(2);
    assertThat(cfg.numPositions()).isEqualTo(17);
    assertThat(cfg.numImageTokens()).isEqualTo(16);
    assertThat(graphs.splitGraphs().keySet())
        .contains("embed_pre0", "post_pre_0", "post_projector", "pre_1", "post_1")
        .doesNotContain("pre_2", "post_2", "post_pre_1");
  }

  @Test
  void splitMatchesReference() {
    for (int img = 0; img < 2; img++) {
      VisionOutput out = encoder.encode(pixels(img));
      assertThat(out.tokens()).isEqualTo(16);
      assertThat(out.dim()).isEqualTo(48);
      assertClose(out.features(), golden.floats("img" + img + ".image_features"), TOL);
      assertThat(out.tokensPerLayer()).containsExactly(17, 17);
      assertThat(out.clsAttention()).isEmpty();
    }
  }

  @Test
  void fusedMatchesReference() {
    try (FusedVisionEncoder fused =
        FusedVisionEncoder.create(graphs, SessionConfig.singleThreaded())) {
      for (int img = 0; img < 2; img++) {
        assertClose(
            fused.encode(pixels(img)).features(),
            golden.floats("img" + img + ".image_features"),
            TOL);
      }
    }
  }

  @Test
  void bundleWithExternalWeightsLoadsByPath(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("bundle");
    try (BundleWriter w = new BundleWriter(out, true)) {
      com.fasterxml.jackson.databind.JsonNode section =
          VisionBundle.write(resourceDir(), store, w, true);
      // a vision-only bundle: the manifest needs an LM section only for the LM runtime
      w.finish("llava", null, section, null, Map.of());
    }
    assertThat(out.resolve("vision/weights.bin")).exists();
    assertThat(out.resolve("vision/fused.onnx")).exists();
    Bundle bundle = Bundle.open(out);
    VisionBundle.Spec spec = VisionBundle.spec(bundle);
    assertThat(spec.config()).isEqualTo(cfg);
    assertThat(spec.preprocessor().outputHeight(32, 32)).isEqualTo(32);
    try (VisionEncoder split = VisionBundle.openSplit(bundle, SessionConfig.singleThreaded());
        FusedVisionEncoder fused = VisionBundle.openFused(bundle, SessionConfig.singleThreaded())) {
      assertClose(split.encode(pixels(1)).features(), golden.floats("img1.image_features"), TOL);
      assertClose(fused.encode(pixels(1)).features(), golden.floats("img1.image_features"), TOL);
    }
  }

  private static ModelShape shape() {
    return new ModelShape(
        cfg.numLayers(),
        cfg.numHeads(),
        cfg.gridSize(),
        cfg.gridSize(),
        true,
        cfg.layersRun() - 1,
        2,
        2,
        2,
        8);
  }

  private static HookRunner plan(TokenOperator... ops) {
    return new HookRunner(List.of(ops), shape(), 0L);
  }

  /**
   * Keeps {@code keep} (rows, CLS = 0) at {@code point} of ViT layer {@code layer}; records the
   * signals it got.
   */
  private static TokenOperator keepRows(
      VisionPoint point, int layer, int[] keep, Map<String, FloatTensor> seen, Signal... signals) {
    return new TestOperator("keep", EnumSet.of(Hook.VISION_LAYER), signals) {
      @Override
      public VisionPoint visionPoint() {
        return point;
      }

      @Override
      public TokenReduction reduceVisionLayer(VisionLayerContext c) {
        for (Signal s : c.signals().signals()) {
          seen.put(s + "@" + c.layer(), c.signals().get(s));
        }
        return c.layer() == layer && keep != null
            ? TokenReduction.of(TokenSelection.of(c.tokens(), keep, PositionMode.REPACK))
            : TokenReduction.keepAll(c.tokens());
      }
    };
  }

  @Test
  void clsAttentionOnlyWhenAskedWithTheOneKernel() {
    Map<String, FloatTensor> seen = new HashMap<>();
    TokenOperator visual =
        new TestOperator(
            "vis",
            EnumSet.of(Hook.VISUAL_TOKENS),
            new Signal.ClsAttention(0),
            new Signal.ClsAttention(1)) {
          @Override
          public TokenSelection selectVisualTokens(VisualTokensContext c) {
            for (Signal s : c.signals().signals()) {
              seen.put(s.toString(), c.signals().get(s));
            }
            return TokenSelection.keepAll(c.count());
          }
        };
    TokenOperator inside =
        keepRows(
            VisionPoint.AFTER_ATTENTION,
            -1,
            null,
            seen,
            new Signal.VitClsAttention(0),
            new Signal.VitClsAttention(1),
            new Signal.VitKeys(1),
            new Signal.VitHiddenStates(0));
    HookRunner hooks = plan(visual, inside);
    VisionOutput out = encoder.encode(pixels(0), hooks);
    hooks.visualTokens(out.features(), out.tokens(), out.dim(), 1, 1);
    for (int layer = 0; layer < 2; layer++) {
      float[] expected = golden.floats("img0.cls_attention." + layer);
      assertClose(out.clsAttention().get(layer), expected, 1e-6);
      assertClose(
          seen.get("VitClsAttention[vitLayer=" + layer + "]@" + layer).toArray(), expected, 1e-6);
      float[] patches = new float[expected.length - 1];
      System.arraycopy(expected, 1, patches, 0, patches.length);
      assertClose(seen.get("ClsAttention[vitLayer=" + layer + "]").toArray(), patches, 1e-6);
      double sum = 0;
      for (float v : out.clsAttention().get(layer)) {
        sum += v;
      }
      assertThat(sum).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-5));
    }
    assertThat(seen.get("VitKeys[vitLayer=1]@1").shape()).containsExactly(17, cfg.headDim());
    assertThat(seen.get("VitHiddenStates[vitLayer=0]@0").shape())
        .containsExactly(17, cfg.hiddenSize());
    assertThat(seen).doesNotContainKey("VitKeys[vitLayer=1]@0");
    assertClose(out.features(), golden.floats("img0.image_features"), TOL);
    // without a plan, no CLS attention is computed
    assertThat(encoder.encode(pixels(0)).clsAttention()).isEmpty();
  }

  @Test
  void operatorDropsTokensAfterAVitLayer() {
    int[] keep = new int[9];
    for (int i = 1; i < keep.length; i++) {
      keep[i] = 2 * i; // CLS + patches at even positions 2, 4, .., 16
    }
    for (int img = 0; img < 2; img++) {
      HookRunner hooks = plan(keepRows(VisionPoint.AFTER_LAYER, 0, keep, new HashMap<>()));
      VisionOutput out = encoder.encode(pixels(img), hooks);
      assertThat(out.tokens()).isEqualTo(8);
      assertThat(out.tokensPerLayer()).containsExactly(17, 9);
      assertClose(
          out.features(), golden.floats("img" + img + ".image_features_keep_even_after0"), TOL);
      assertThat(hooks.keptMaps()).hasSize(1);
      assertThat(hooks.keptMaps().get(0).original()).containsExactly(1, 3, 5, 7, 9, 11, 13, 15);
    }
    // operators at both points that keep everything change nothing
    HookRunner identity =
        plan(
            keepRows(VisionPoint.AFTER_LAYER, -1, null, new HashMap<>()),
            keepRows(VisionPoint.AFTER_ATTENTION, -1, null, new HashMap<>()));
    assertClose(
        encoder.encode(pixels(1), identity).features(), golden.floats("img1.image_features"), TOL);
  }

  @Test
  void layerOutputSignalIsTheNextLayersInputAndSeesEarlierReductionsOfItsPoint() {
    Map<String, FloatTensor> seen = new HashMap<>();
    Map<String, FloatTensor> after = new HashMap<>();
    int[] keep = {0, 2, 4, 6, 8, 10, 12, 14, 16};
    HookRunner hooks =
        plan(
            keepRows(
                VisionPoint.AFTER_LAYER,
                -1,
                null,
                seen,
                new Signal.VitLayerOutput(0),
                new Signal.VitHiddenStates(1),
                new Signal.VitLayerOutput(1)));
    VisionOutput out = encoder.encode(pixels(0), hooks);
    assertClose(out.features(), golden.floats("img0.image_features"), TOL);
    FloatTensor out0 = seen.get("VitLayerOutput[vitLayer=0]@0");
    assertThat(out0.shape()).containsExactly(17, cfg.hiddenSize());
    assertThat(out0.toArray()).containsExactly(seen.get("VitHiddenStates[vitLayer=1]@1").toArray());
    assertThat(seen.get("VitLayerOutput[vitLayer=1]@1").shape())
        .containsExactly(17, cfg.hiddenSize());
    // a second operator at the same point gets the rows the first one left
    HookRunner two =
        plan(
            keepRows(VisionPoint.AFTER_LAYER, 0, keep, new HashMap<>()),
            keepRows(VisionPoint.AFTER_LAYER, -1, null, after, new Signal.VitLayerOutput(0)));
    encoder.encode(pixels(0), two);
    float[] reduced = after.get("VitLayerOutput[vitLayer=0]@0").toArray();
    int d = cfg.hiddenSize();
    assertThat(reduced).hasSize(keep.length * d);
    for (int r = 0; r < keep.length; r++) {
      assertThat(java.util.Arrays.copyOfRange(reduced, r * d, (r + 1) * d))
          .containsExactly(
              java.util.Arrays.copyOfRange(out0.toArray(), keep[r] * d, (keep[r] + 1) * d));
    }
  }

  @Test
  void perHeadClsAttentionAveragesToTheHeadMeanSignalAndIsReducedPerHead() {
    Map<String, FloatTensor> seen = new HashMap<>();
    HookRunner hooks =
        plan(
            keepRows(
                VisionPoint.AFTER_ATTENTION,
                -1,
                null,
                seen,
                new Signal.VitClsAttention(1),
                new Signal.VitClsHeadAttention(1)));
    encoder.encode(pixels(0), hooks);
    FloatTensor mean = seen.get("VitClsAttention[vitLayer=1]@1");
    FloatTensor heads = seen.get("VitClsHeadAttention[vitLayer=1]@1");
    int h = cfg.numHeads();
    int t = mean.dim(0);
    assertThat(heads.shape()).containsExactly(h, t);
    float[] x = heads.toArray();
    for (int head = 0; head < h; head++) {
      double sum = 0;
      for (int j = 0; j < t; j++) {
        sum += x[head * t + j];
      }
      assertThat(sum).isCloseTo(1.0, within(1e-5));
    }
    // the head-mean signal is exactly the mean over heads of the per-head one (one kernel)
    assertThat(Kernels.meanOverHeads(x, h, t)).containsExactly(mean.toArray());
    // after a reduction at the same point, a second operator gets each head's row summed per group
    int[] keep = {0, 2, 4, 6, 8, 10, 12, 14, 16};
    Map<String, FloatTensor> after = new HashMap<>();
    encoder.encode(
        pixels(0),
        plan(
            keepRows(VisionPoint.AFTER_ATTENTION, 1, keep, new HashMap<>()),
            keepRows(
                VisionPoint.AFTER_ATTENTION, -1, null, after, new Signal.VitClsHeadAttention(1))));
    float[] reduced = after.get("VitClsHeadAttention[vitLayer=1]@1").toArray();
    assertThat(reduced).hasSize(h * keep.length);
    for (int head = 0; head < h; head++) {
      for (int r = 0; r < keep.length; r++) {
        assertThat(reduced[head * keep.length + r]).isEqualTo(x[head * t + keep[r]]);
      }
    }
  }

  /** Merges patch rows {@code 1+2i, 2+2i} pairwise at layer 0 after attention, size-weighted. */
  private static TokenOperator pairMerge(boolean proportional) {
    return new TestOperator("pairs", EnumSet.of(Hook.VISION_LAYER)) {
      @Override
      public boolean proportionalAttention() {
        return proportional;
      }

      @Override
      public TokenReduction reduceVisionLayer(VisionLayerContext c) {
        if (c.layer() != 0) {
          return TokenReduction.keepAll(c.tokens());
        }
        int pairs = (c.tokens() - 1) / 2;
        int[][] g = new int[pairs + 1][];
        float[][] w = new float[pairs + 1][];
        g[0] = new int[] {0};
        w[0] = new float[] {1};
        for (int i = 0; i < pairs; i++) {
          g[i + 1] = new int[] {1 + 2 * i, 2 + 2 * i};
          w[i + 1] = new float[] {c.size(1 + 2 * i), c.size(2 + 2 * i)};
        }
        return TokenReduction.of(c.tokens(), g, w, PositionMode.REPACK);
      }
    };
  }

  @Test
  void mergesTrackSizesAndProvenanceAndProportionalAttentionRunsTheBiasGraph() {
    HookRunner plain = plan(pairMerge(false));
    VisionOutput a = encoder.encode(pixels(0), plain);
    assertThat(a.tokens()).isEqualTo(8);
    assertThat(a.tokensPerLayer()).containsExactly(17, 9);
    // layer 0: attention over 17 tokens, output projection and MLP over the 9 left after the merge
    assertThat(a.flops())
        .isEqualTo(
            VisionFlops.embedding(cfg)
                + VisionFlops.layer(cfg, 17, 9)
                + VisionFlops.layer(cfg, 9)
                + VisionFlops.projector(cfg, 8));
    assertThat(VisionFlops.layer(cfg, 17, 9)).isLessThan(VisionFlops.layer(cfg, 17));
    assertThat(plain.visionSizes()).containsExactly(1, 2, 2, 2, 2, 2, 2, 2, 2);
    assertThat(plain.keptMaps().get(0).merged()).isEqualTo(8);
    float[] visual = plain.visualTokens(a.features(), a.tokens(), a.dim(), 2, 3);
    assertThat(visual).hasSize(8 * a.dim());
    TokenProvenance p = plain.visualProvenance();
    assertThat(p.count()).isEqualTo(8);
    assertThat(p.patches(3)).containsExactly(6, 7);
    assertThat(p.weights(3)).containsExactly(0.5f, 0.5f);
    SequenceLayout layout = plain.layout();
    assertThat(layout.visualCount()).isEqualTo(8);
    assertThat(layout.length()).isEqualTo(2 + 8 + 3);
    assertThat(layout.visualIndex(2 + 3)).isEqualTo(6);
    assertThat(layout.positionId(2 + 8)).isEqualTo(2 + 8); // re-packed: the span shrank to 8 tokens

    HookRunner prop = plan(pairMerge(true));
    VisionOutput b = encoder.encode(pixels(0), prop);
    assertThat(prop.visionKeyBias())
        .containsExactly(
            0f,
            (float) Math.log(2),
            (float) Math.log(2),
            (float) Math.log(2),
            (float) Math.log(2),
            (float) Math.log(2),
            (float) Math.log(2),
            (float) Math.log(2),
            (float) Math.log(2));
    double diff = 0;
    for (int i = 0; i < a.features().length; i++) {
      diff = Math.max(diff, Math.abs(a.features()[i] - b.features()[i]));
    }
    assertThat(diff).as("log(size) bias changes layer 1's attention").isGreaterThan(1e-4);
  }

  @Test
  void rejectsWrongImageSize() {
    assertThatThrownBy(() -> encoder.encode(PixelValues.wrap(16, 16, new float[3 * 16 * 16])))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("16x16");
  }

  @Test
  void flopsCountActualTokens() {
    VisionOutput full = encoder.encode(pixels(0));
    long expected =
        VisionFlops.embedding(cfg)
            + 2 * VisionFlops.layer(cfg, 17)
            + VisionFlops.projector(cfg, 16);
    assertThat(full.flops()).isEqualTo(expected);
    // hand count of one layer: D=32, I=64, T=17
    assertThat(VisionFlops.layer(cfg, 17))
        .isEqualTo(2L * 17 * 32 * 32 * 4 + 2L * 17 * 17 * 32 * 2 + 2L * 17 * 32 * 64 * 2);
  }

  static void assertClose(float[] actual, float[] expected, double tol) {
    assertThat(actual).hasSameSizeAs(expected);
    double max = 0;
    int at = -1;
    for (int i = 0; i < actual.length; i++) {
      double d = Math.abs(actual[i] - expected[i]);
      if (d > max) {
        max = d;
        at = i;
      }
    }
    assertThat(max).as("max abs difference (at " + at + ")").isLessThanOrEqualTo(tol);
  }
}
