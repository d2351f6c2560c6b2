package dev.tokenpress.runtime.vision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleWriter;
import dev.tokenpress.runtime.checkpoint.TensorStore;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Against {@code src/test/python/gen_vision_golden.py} (torch transcription of HF CLIP + LLaVA). */
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
      return Path.of(VisionEncoderTest.class.getResource("/vision/config.json").toURI()).getParent();
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
    assertThat(graphs.splitGraphs().keySet()).contains("embed_pre0", "post_pre_0", "post_projector", "pre_1", "post_1")
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
    try (FusedVisionEncoder fused = FusedVisionEncoder.create(graphs, SessionConfig.singleThreaded())) {
      for (int img = 0; img < 2; img++) {
        assertClose(fused.encode(pixels(img)).features(), golden.floats("img" + img + ".image_features"), TOL);
      }
    }
  }

  @Test
  void bundleWithExternalWeightsLoadsByPath(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("bundle");
    try (BundleWriter w = new BundleWriter(out, true)) {
      com.fasterxml.jackson.databind.JsonNode section = VisionBundle.write(resourceDir(), store, w, true);
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

  @Test
  void clsAttentionOnlyWhenAsked() {
    Map<Integer, float[]> seen = new HashMap<>();
    VisionHook hook = new VisionHook() {
      @Override
      public Set<Integer> clsAttentionLayers() {
        return Set.of(0, 1);
      }

      @Override
      public void clsAttention(int layer, float[] row) {
        seen.put(layer, row);
      }
    };
    VisionOutput out = encoder.encode(pixels(0), hook);
    for (int layer = 0; layer < 2; layer++) {
      float[] expected = golden.floats("img0.cls_attention." + layer);
      assertClose(seen.get(layer), expected, 1e-6);
      assertClose(out.clsAttention().get(layer), expected, 1e-6);
      double sum = 0;
      for (float v : seen.get(layer)) {
        sum += v;
      }
      assertThat(sum).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-5));
    }
    assertClose(out.features(), golden.floats("img0.image_features"), TOL);
  }

  @Test
  void hookDropsTokensInsideTheVit() {
    int[] keep = new int[9];
    for (int i = 1; i < keep.length; i++) {
      keep[i] = 2 * i; // CLS + patches at even positions 2, 4, .., 16
    }
    VisionHook drop = new VisionHook() {
      @Override
      public Set<Integer> tokenLayers() {
        return Set.of(0);
      }

      @Override
      public float[] afterLayer(int layer, float[] hidden, int tokens) {
        int d = cfg.hiddenSize();
        float[] out = new float[keep.length * d];
        for (int r = 0; r < keep.length; r++) {
          System.arraycopy(hidden, keep[r] * d, out, r * d, d);
        }
        return out;
      }
    };
    for (int img = 0; img < 2; img++) {
      VisionOutput out = encoder.encode(pixels(img), drop);
      assertThat(out.tokens()).isEqualTo(8);
      assertThat(out.tokensPerLayer()).containsExactly(17, 9);
      assertClose(out.features(), golden.floats("img" + img + ".image_features_keep_even_after0"), TOL);
    }
    // a hook on the last layer that keeps everything goes through post + projector
    VisionHook identity = new VisionHook() {
      @Override
      public Set<Integer> tokenLayers() {
        return Set.of(0, 1);
      }
    };
    assertClose(encoder.encode(pixels(1), identity).features(), golden.floats("img1.image_features"), TOL);
  }

  @Test
  void rejectsWrongImageSize() {
    assertThatThrownBy(() -> encoder.encode(PixelValues.wrap(16, 16, new float[3 * 16 * 16])))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("16x16");
  }

  @Test
  void flopsCountActualTokens() {
    VisionOutput full = encoder.encode(pixels(0));
    long expected = VisionFlops.embedding(cfg) + 2 * VisionFlops.layer(cfg, 17) + VisionFlops.projector(cfg, 16);
    assertThat(full.flops()).isEqualTo(expected);
    // hand count of one layer: D=32, I=64, T=17
    assertThat(VisionFlops.layer(cfg, 17)).isEqualTo(2L * 17 * 32 * 32 * 4 + 2L * 17 * 17 * 32 * 2 + 2L * 17 * 32 * 64 * 2);
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
