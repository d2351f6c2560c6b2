package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import dev.tokenpress.runtime.text.PromptTooLongException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link VlmRuntime#generateImage} against {@link VlmRuntime#generate} request by request on the
 * bundled model: the same answers, kept tokens, FLOPs and KV caches, logits within 1e-4, with one
 * shared vision pass per image and one prefix prefill per group of equal prefixes.
 */
class ImageGenerationTest {
  private static final String EMPTY = "[]";
  private static final String RANDOM_DROP = "[{\"op\":\"random-drop\",\"keep\":64}]";
  private static final String VTC_CLS = "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"0..0\"}]";
  private static final String FASTV = "[{\"op\":\"fastv\",\"layer\":2,\"keep\":64}]";
  private static final String TOME = "[{\"op\":\"tome\",\"r\":64}]";
  private static final String VMTC = "[{\"op\":\"vmtc\",\"keep\":64}]";
  private static final List<String> QUESTIONS =
      List.of(
          "is there a red circle?",
          "what color is the square?",
          "how many shapes are there?",
          "describe the image.");

  private static VlmRuntime rt;
  private static VlmRuntime fp16;
  private static List<byte[]> images = new ArrayList<>();

  @BeforeAll
  static void open() throws Exception {
    Path bundle = TinyLlavaBundle.bundle();
    rt = VlmRuntime.open(bundle, VlmOptions.defaults().withMaxNewTokens(12));
    fp16 =
        VlmRuntime.open(
            bundle, VlmOptions.defaults().withMaxNewTokens(12).withKvPrecision(KvPrecision.FP16));
    try (var s = Files.list(TinyLlavaBundle.checkpoint().resolve("reference_images"))) {
      for (Path p : s.sorted().limit(2).toList()) {
        images.add(Files.readAllBytes(p));
      }
    }
  }

  @AfterAll
  static void close() {
    if (rt != null) {
      rt.close();
    }
    if (fp16 != null) {
      fp16.close();
    }
  }

  /** Every question of {@code image} under every plan, plan after plan. */
  private static List<VlmRequest> requests(byte[] image, int imageIndex, List<String> plans) {
    List<VlmRequest> out = new ArrayList<>();
    for (String plan : plans) {
      for (int q = 0; q < QUESTIONS.size(); q++) {
        out.add(
            VlmRequest.ofBytes("img" + imageIndex + "-q" + q, image, QUESTIONS.get(q))
                .withPlan(CompressionPlan.parse(plan))
                .withRecordLogits(true));
      }
    }
    return out;
  }

  private static void assertSameAsAlone(
      VlmRuntime runtime, List<VlmRequest> requests, ImageBatchResult batch) {
    assertThat(batch.outcomes()).hasSameSizeAs(requests);
    for (int i = 0; i < requests.size(); i++) {
      ImageBatchResult.Outcome o = batch.outcomes().get(i);
      assertThat(o.error()).as("request %d", i).isNull();
      VlmResult shared = o.result();
      VlmResult alone = runtime.generate(requests.get(i));
      String what = requests.get(i).plan().toJson() + " / " + requests.get(i).prompt();
      assertThat(shared.answer()).as(what).isEqualTo(alone.answer());
      assertThat(shared.tokenIds()).as(what).isEqualTo(alone.tokenIds());
      assertThat(shared.visualTokensKept()).as(what).isEqualTo(alone.visualTokensKept());
      assertThat(shared.flops()).as(what).isEqualTo(alone.flops());
      assertThat(shared.kvCache().lengths()).as(what).isEqualTo(alone.kvCache().lengths());
      assertThat(shared.kvCache().storedBytes()).as(what).isEqualTo(alone.kvCache().storedBytes());
      assertThat(shared.kvCache().layer(3).tokenIndices())
          .as(what)
          .isEqualTo(alone.kvCache().layer(3).tokenIndices());
      assertThat(shared.kvCache().layer(3).positions())
          .as(what)
          .isEqualTo(alone.kvCache().layer(3).positions());
      assertClose(
          shared.kvCache().layer(3).keys(), alone.kvCache().layer(3).keys(), what + " keys");
      assertThat(shared.stepLogits()).as(what).hasSameSizeAs(alone.stepLogits());
      for (int s = 0; s < alone.stepLogits().size(); s++) {
        assertClose(shared.stepLogits().get(s), alone.stepLogits().get(s), what + " step " + s);
      }
      assertThat(shared.recordSeed()).isEqualTo(alone.recordSeed());
      assertThat(shared.keptMaps()).hasSameSizeAs(alone.keptMaps());
      assertThat(o.ms()).isPositive().isEqualTo(shared.timingsMs().get("total"));
    }
  }

  private static void assertClose(float[] a, float[] b, String what) {
    assertThat(a).as(what).hasSameSizeAs(b);
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    assertThat(worst).as(what + ": largest difference").isLessThanOrEqualTo(1e-4);
  }

  @Test
  void sharedWorkGivesWhatEachRequestGivesAlone() {
    List<String> plans = List.of(EMPTY, RANDOM_DROP, VTC_CLS, FASTV);
    for (int i = 0; i < images.size(); i++) {
      List<VlmRequest> requests = requests(images.get(i), i, plans);
      ImageBatchResult batch = rt.generateImage(requests);
      // no plan acts inside the ViT: one pass for 16 requests
      assertThat(batch.visionPasses()).isEqualTo(1);
      // the empty plan and VTC-CLS (deterministic, before the LM) share a prefix per plan; random
      // drop
      // draws other tokens per question (its seed) and FastV acts in the LM: those prefill alone
      assertThat(batch.prefixPrefills()).isEqualTo(2);
      assertThat(batch.prefixedRequests()).isEqualTo(2 * QUESTIONS.size());
      assertSameAsAlone(rt, requests, batch);
    }
  }

  @Test
  void plansInsideTheVitShareTheirPassOnlyWithoutSeedOrState() {
    List<VlmRequest> requests = requests(images.get(0), 0, List.of(EMPTY, TOME, VMTC));
    ImageBatchResult batch = rt.generateImage(requests);
    // the shared pass; one ToMe pass its other questions adopt (no seed, no per-record state);
    // VMTC's
    // k-means draws on each question's seed, so a pass per question
    assertThat(batch.visionPasses()).isEqualTo(1 + 1 + QUESTIONS.size());
    // ToMe merges the same tokens for every question: equal prefixes, so they share one prefill
    assertThat(batch.prefixPrefills()).isGreaterThanOrEqualTo(2);
    assertSameAsAlone(rt, requests, batch);
  }

  @Test
  void aFloat16CacheIsBuiltFromTheSameFloat32Rows() {
    List<VlmRequest> requests = requests(images.get(1), 1, List.of(EMPTY, VTC_CLS));
    ImageBatchResult batch = fp16.generateImage(requests);
    assertThat(batch.prefixPrefills()).isEqualTo(2);
    assertSameAsAlone(fp16, requests, batch);
  }

  @Test
  void aFailingRequestFailsAloneAndSharedTimeIsSplit() {
    byte[] image = images.get(0);
    List<VlmRequest> requests =
        List.of(
            VlmRequest.ofBytes("a", image, "is there a red circle?"),
            VlmRequest.ofBytes("b", image, "is there a red circle? ".repeat(60)),
            VlmRequest.ofBytes("c", image, "what color is the square?"));
    ImageBatchResult batch = rt.generateImage(requests);
    assertThat(batch.outcomes().get(1).error()).isInstanceOf(PromptTooLongException.class);
    assertThat(batch.outcomes().get(0).result().answer())
        .isEqualTo(rt.generate(requests.get(0)).answer());
    assertThat(batch.outcomes().get(2).result().answer())
        .isEqualTo(rt.generate(requests.get(2)).answer());
    VlmResult a = batch.outcomes().get(0).result();
    VlmResult c = batch.outcomes().get(2).result();
    // one vision pass, shared in equal parts (the failed request used it too)
    assertThat(batch.visionPasses()).isEqualTo(1);
    assertThat(a.timingsMs().get("vision")).isEqualTo(c.timingsMs().get("vision"));
    assertThat(a.timingsMs().get("image_decode")).isEqualTo(c.timingsMs().get("image_decode"));

    ImageBatchResult bad =
        rt.generateImage(
            List.of(
                VlmRequest.ofBytes("x", new byte[0], "q"),
                VlmRequest.ofBytes("y", new byte[0], "r")));
    assertThat(bad.outcomes()).allSatisfy(o -> assertThat(o.error()).isNotNull());
    assertThat(bad.visionPasses()).isZero();
  }

  @Test
  void requestsOfAnotherImageAreRejected() {
    assertThatThrownBy(
            () ->
                rt.generateImage(
                    List.of(
                        VlmRequest.ofBytes("a", images.get(0), "q"),
                        VlmRequest.ofBytes("b", images.get(1), "q"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("request b carries another image");
  }
}
