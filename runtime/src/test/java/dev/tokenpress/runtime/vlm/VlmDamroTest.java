package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.lm.GenerationResult;
import dev.tokenpress.runtime.lm.LlamaRuntime;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.TestOperator;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import dev.tokenpress.runtime.text.EncodedPrompt;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionEncoder;
import dev.tokenpress.runtime.vision.VisionOutput;
import java.nio.file.Files;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * DAMRO through the whole pipeline on the bundled model: the outlier branch, neutrality,
 * composition.
 */
class VlmDamroTest {
  private static final String Q = "describe the image.";
  private static VlmRuntime rt;
  private static byte[] image;

  @BeforeAll
  static void open() throws Exception {
    rt = VlmRuntime.open(TinyLlavaBundle.bundle(), VlmOptions.defaults().withMaxNewTokens(12));
    image = Files.readAllBytes(TinyLlavaBundle.firstReferenceImage());
  }

  @AfterAll
  static void close() {
    if (rt != null) {
      rt.close();
    }
  }

  private static VlmResult run(String plan) {
    return rt.generate(
        VlmRequest.ofBytes("rec", image, Q)
            .withPlan(CompressionPlan.parse(plan))
            .withRecordLogits(true));
  }

  private static KeptMap branchMap(VlmResult r) {
    return r.keptMaps().stream().filter(m -> m.hook() == Hook.BRANCH).findFirst().orElseThrow();
  }

  /**
   * Per-head CLS probabilities of the feature layer, by an independent route (VitClsHeadAttention).
   */
  private static float[] clsHeads(int layer) {
    Bundle bundle = rt.bundle();
    try (VisionEncoder enc = VisionBundle.openSplit(bundle, SessionConfig.singleThreaded())) {
      float[][] out = new float[1][];
      HookRunner h =
          new HookRunner(
              List.of(
                  new TestOperator(
                      "probe",
                      EnumSet.of(Hook.VISION_LAYER),
                      new Signal.VitClsHeadAttention(layer)) {
                    @Override
                    public dev.tokenpress.operators.api.TokenReduction reduceVisionLayer(
                        dev.tokenpress.operators.api.VisionLayerContext c) {
                      if (c.layer() == layer) {
                        out[0] = c.signals().get(new Signal.VitClsHeadAttention(layer)).toArray();
                      }
                      return dev.tokenpress.operators.api.TokenReduction.keepAll(c.tokens());
                    }
                  }),
              rt.shape(),
              0L);
      enc.encode(rt.preprocessor().preprocess(rt.decoder().decode(image)), h);
      return out[0];
    }
  }

  @Test
  void outliersAreTheTopCombinedClsLogitsInScoreOrder() {
    int layer = rt.shape().visionFeatureLayer();
    int heads = rt.shape().vitHeads();
    float[] p = clsHeads(layer);
    int t = p.length / heads;
    // Σ_h log p_h(j) = Σ_h z_h(j) − const: the same ranking as the summed logits
    float[] concat = new float[t - 1];
    float[] mean = new float[t - 1];
    for (int j = 1; j < t; j++) {
      for (int h = 0; h < heads; h++) {
        concat[j - 1] += (float) Math.log(p[h * t + j]);
        mean[j - 1] += p[h * t + j] / heads;
      }
    }
    VlmResult r = run("[{\"op\":\"damro\"}]");
    assertThat(branchMap(r).original()).containsExactly(Kernels.topK(concat, 4));
    VlmResult m = run("[{\"op\":\"damro\",\"mode\":\"head_mean_prob\"}]");
    assertThat(branchMap(m).original()).containsExactly(Kernels.topK(mean, 4));
  }

  @Test
  void alphaZeroReproducesTheEmptyPlan() {
    VlmResult e = run("[]");
    VlmResult d = run("[{\"op\":\"damro\",\"alpha\":0}]");
    assertThat(d.tokenIds()).containsExactly(e.tokenIds());
    assertThat(d.visualTokensKept()).isEqualTo(256);
    assertThat(d.stepLogits()).hasSameSizeAs(e.stepLogits());
    for (int s = 0; s < e.stepLogits().size(); s++) {
      float[] a = e.stepLogits().get(s);
      float[] b = d.stepLogits().get(s);
      int kept = 0;
      for (int i = 0; i < a.length; i++) {
        if (b[i] != Float.NEGATIVE_INFINITY) {
          assertThat(Math.abs(a[i] - b[i])).as("step %d token %d", s, i).isLessThanOrEqualTo(1e-5f);
          kept++;
        } else {
          assertThat((double) a[i]).isLessThan(max(a) + Math.log(0.1));
        }
      }
      assertThat(kept).isPositive();
    }
    // the main KV cache is the empty plan's; the branch doubles the LM work roughly
    assertThat(d.kvCache().layer(0).length()).isEqualTo(e.kvCache().layer(0).length());
    assertThat(d.flops().get("prefill")).isGreaterThan(e.flops().get("prefill"));
    assertThat(d.flops().get("decode")).isGreaterThan(e.flops().get("decode"));
  }

  @Test
  void branchLogitsAreThoseOfTheOutlierOnlySequence() {
    // alpha 1, beta tiny: s = 2l − l_cd on every token, so l_cd = 2l − s at step 0
    VlmResult e = run("[]");
    VlmResult d = run("[{\"op\":\"damro\",\"alpha\":1,\"beta\":1e-30}]");
    float[] l = e.stepLogits().get(0);
    float[] s = d.stepLogits().get(0);
    int[] outliers = branchMap(d).original();
    // independent route: the projector features of those patches between the prompt's text,
    // positions 0..n-1
    Bundle bundle = rt.bundle();
    VisionOutput vis;
    try (VisionEncoder enc = VisionBundle.openSplit(bundle, SessionConfig.singleThreaded())) {
      vis = enc.encode(rt.preprocessor().preprocess(rt.decoder().decode(image)));
    }
    EncodedPrompt p = rt.prompts().encode(Q, vis.tokens());
    try (LlamaRuntime lm = LlamaRuntime.open(bundle, SessionConfig.singleThreaded())) {
      int d0 = lm.embedding().dim();
      int len = p.prefix().length + outliers.length + p.suffix().length;
      float[] emb = new float[len * d0];
      int row = 0;
      for (int id : p.prefix()) {
        lm.embedding().lookup(id, emb, row++ * d0);
      }
      for (int o : outliers) {
        System.arraycopy(vis.token(o), 0, emb, row++ * d0, d0);
      }
      for (int id : p.suffix()) {
        lm.embedding().lookup(id, emb, row++ * d0);
      }
      int[] pos = new int[len];
      for (int i = 0; i < len; i++) {
        pos[i] = i;
      }
      GenerationResult g =
          lm.generate(
              new LmRequest(
                  emb,
                  pos,
                  pos.clone(),
                  new int[0],
                  1,
                  dev.tokenpress.operators.kv.KvPrecision.FP32,
                  true));
      float[] lcd = g.stepLogits().get(0);
      for (int i = 0; i < l.length; i++) {
        assertThat(Math.abs((2 * l[i] - s[i]) - lcd[i]))
            .as("token %d", i)
            .isLessThanOrEqualTo(1e-3f);
      }
    }
  }

  @Test
  void composesWithATokenReductionOperator() {
    VlmResult r = run("[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"0..0\"},{\"op\":\"damro\"}]");
    assertThat(r.visualTokensKept()).isEqualTo(64);
    assertThat(branchMap(r).original()).hasSize(4);
    assertThat(r.keptMaps().stream().map(KeptMap::hook)).contains(Hook.VISUAL_TOKENS, Hook.BRANCH);
    assertThat(r.tokenIds()).isNotEmpty();
  }

  @Test
  void samplingIsReproduciblePerRecord() {
    String plan = "[{\"op\":\"damro\",\"decoding\":\"sample\",\"seed\":3}]";
    VlmResult a = run(plan);
    VlmResult b = run(plan);
    assertThat(a.tokenIds()).containsExactly(b.tokenIds());
  }

  private static float max(float[] x) {
    float m = Float.NEGATIVE_INFINITY;
    for (float v : x) {
      m = Math.max(m, v);
    }
    return m;
  }
}
