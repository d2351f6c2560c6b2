package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.media.MediaDecodeException;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.TestOperator;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import dev.tokenpress.runtime.text.PromptTooLongException;
import dev.tokenpress.runtime.vision.ClsAttention;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionEncoder;
import dev.tokenpress.runtime.vision.VisionOutput;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Operators through the whole pipeline on the bundled model: counts, positions, caches, seeds. */
class VlmPlanTest {
  private static VlmRuntime rt;
  private static byte[] image;
  private static final String Q = "is there a red circle?";

  @BeforeAll
  static void open() throws Exception {
    Path bundle = TinyLlavaBundle.bundle();
    rt = VlmRuntime.open(bundle, VlmOptions.defaults().withMaxNewTokens(8));
    image = Files.readAllBytes(TinyLlavaBundle.firstReferenceImage());
  }

  @AfterAll
  static void close() {
    if (rt != null) {
      rt.close();
    }
  }

  /**
   * Generated tokens that went back through the decoder (and so into the KV cache): all of them
   * when a stop token ended generation, all but the last when the token limit did.
   */
  private static int fedBack(VlmResult r) {
    return r.tokenIds().length
        - (r.stopReason() == dev.tokenpress.runtime.lm.StopReason.STOP_TOKEN ? 0 : 1);
  }

  private static VlmResult run(String plan, String id) {
    return rt.generate(VlmRequest.ofBytes(id, image, Q).withPlan(CompressionPlan.parse(plan)));
  }

  @Test
  void emptyPlanKeepsEverything() {
    VlmResult r = run("[]", "a");
    assertThat(r.visualTokensIn()).isEqualTo(256);
    assertThat(r.visualTokensKept()).isEqualTo(256);
    assertThat(r.keptMaps()).isEmpty();
    int rows = r.promptIds().length - 1 + 256;
    assertThat(r.kvCache().layer(0).length()).isEqualTo(rows + fedBack(r));
    assertThat(r.flops().get("total"))
        .isEqualTo(r.flops().get("vision") + r.flops().get("prefill") + r.flops().get("decode"));
    assertThat(r.timingsMs())
        .containsKeys("image_decode", "preprocess", "vision", "prefill", "decode", "total");
  }

  @Test
  void randomDropIsSeededPerRecord() {
    String plan = "[{\"op\":\"random-drop\",\"keep\":64,\"seed\":7}]";
    VlmResult a = run(plan, "rec-1");
    VlmResult b = run(plan, "rec-1");
    VlmResult c = run(plan, "rec-2");
    assertThat(a.visualTokensKept()).isEqualTo(64);
    assertThat(a.keptMaps()).hasSize(1);
    assertThat(a.keptMaps().get(0).original()).containsExactly(b.keptMaps().get(0).original());
    assertThat(a.keptMaps().get(0).original()).isNotEqualTo(c.keptMaps().get(0).original());
    assertThat(a.tokenIds()).containsExactly(b.tokenIds());
    assertThat(a.flops().get("prefill")).isLessThan(run("[]", "rec-1").flops().get("prefill"));
  }

  @Test
  void vtcClsKeepsTheTopClsAttentionPatchesInSpatialOrder() {
    VlmResult r = run("[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"1..L-2\"}]", "v");
    assertThat(r.visualTokensKept()).isEqualTo(64);
    KeptMap m = r.keptMaps().get(0);
    assertThat(m.hook()).isEqualTo(Hook.VISUAL_TOKENS);
    // independent route: the encoder's CLS rows of layers 1..2, summed, top 64, ascending
    Bundle bundle = rt.bundle();
    VisionBundle.Spec spec = VisionBundle.spec(bundle);
    float[] score = new float[256];
    try (VisionEncoder enc = VisionBundle.openSplit(bundle, SessionConfig.singleThreaded())) {
      HookRunner signalsOnly =
          new HookRunner(
              List.of(
                  new TestOperator(
                      "cls",
                      EnumSet.of(Hook.VISUAL_TOKENS),
                      new Signal.ClsAttention(1),
                      new Signal.ClsAttention(2)) {}),
              rt.shape(),
              0L);
      VisionOutput out =
          enc.encode(rt.preprocessor().preprocess(rt.decoder().decode(image)), signalsOnly);
      for (int layer : List.of(1, 2)) {
        float[] p = ClsAttention.patches(out.clsAttention().get(layer));
        for (int j = 0; j < 256; j++) {
          score[j] += p[j];
        }
      }
    }
    int[] top = Kernels.topK(score, 64);
    Arrays.sort(top);
    assertThat(m.original()).containsExactly(top);
    // VTC-CLS re-packs positions: the prompt after the image continues right after 64 tokens
    SequenceLayout l = r.prefillLayout();
    int prefix = 3;
    assertThat(l.positionId(prefix)).isEqualTo(prefix);
    assertThat(l.positionId(prefix + 63)).isEqualTo(prefix + 63);
    assertThat(l.positionId(prefix + 64)).isEqualTo(prefix + 64);
    assertThat(spec.config().numImageTokens()).isEqualTo(256);
  }

  @Test
  void fastVDropsAfterItsLayerWithOriginalPositions() {
    VlmResult full = run("[]", "f");
    VlmResult r = run("[{\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5}]", "f");
    assertThat(r.visualTokensKept()).isEqualTo(256); // FastV acts inside the LM
    KeptMap m = r.keptMaps().get(0);
    assertThat(m.hook()).isEqualTo(Hook.PREFILL_AFTER);
    assertThat(m.layer())
        .isEqualTo(1); // FastV K=2: scored with layer 1's attention, layers 2.. run on fewer rows
    int[] lengths = r.kvCache().lengths();
    int rows = r.promptIds().length - 1 + 256;
    int gen = fedBack(r);
    assertThat(lengths[0]).isEqualTo(rows + gen);
    assertThat(lengths[1]).isEqualTo(rows + gen);
    assertThat(lengths[2]).isEqualTo(rows - 128 + gen);
    assertThat(lengths[3]).isEqualTo(rows - 128 + gen);
    // kept rows keep their original positions; the next position is unchanged
    int[] pos3 = r.kvCache().layer(3).positions();
    assertThat(pos3[pos3.length - 1])
        .isEqualTo(full.kvCache().layer(3).positions()[rows + gen - 1]);
    assertThat(r.flops().get("prefill")).isLessThan(full.flops().get("prefill"));
  }

  private static VlmResult logits(String plan) {
    return rt.generate(
        VlmRequest.ofBytes("t", image, Q)
            .withPlan(CompressionPlan.parse(plan))
            .withRecordLogits(true)
            .withoutStopTokens()
            .withMaxNewTokens(3));
  }

  @Test
  void toMeWithRZeroGivesTheEmptyPlansLogits() {
    VlmResult empty = logits("[]");
    VlmResult zero = logits("[{\"op\":\"tome\",\"r\":0}]");
    assertThat(zero.tokenIds()).containsExactly(empty.tokenIds());
    for (int s = 0; s < empty.stepLogits().size(); s++) {
      float[] a = empty.stepLogits().get(s);
      float[] b = zero.stepLogits().get(s);
      double max = 0;
      for (int i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs(a[i] - b[i]));
      }
      assertThat(max).as("step %d", s).isLessThanOrEqualTo(1e-5);
    }
    assertThat(zero.visualTokensKept()).isEqualTo(256);
    assertThat(zero.keptMaps()).isEmpty();
  }

  @Test
  void toMeMergesInsideTheVitAndTheLmGetsFewerTokensWithProvenance() {
    VlmResult full = run("[]", "m");
    VlmResult r = run("[{\"op\":\"tome\",\"r\":[40,30,20]}]", "m");
    int kept = 256 - 90;
    assertThat(r.visualTokensIn()).isEqualTo(256);
    assertThat(r.visualTokensKept()).isEqualTo(kept);
    assertThat(r.keptMaps()).hasSize(3);
    assertThat(r.keptMaps()).extracting(KeptMap::hook).containsOnly(Hook.VISION_LAYER);
    assertThat(r.keptMaps()).extracting(KeptMap::merged).containsExactly(40, 30, 20);
    // provenance: every patch stands in exactly one kept token, weights 1/size, raster order of
    // representatives
    TokenProvenance p = r.provenance();
    assertThat(p.count()).isEqualTo(kept);
    boolean[] seen = new boolean[256];
    int prev = -1;
    for (int t = 0; t < kept; t++) {
      int[] patches = p.patches(t);
      assertThat(patches[0]).isGreaterThan(prev);
      prev = patches[0];
      double sum = 0;
      for (int i = 0; i < patches.length; i++) {
        assertThat(seen[patches[i]]).isFalse();
        seen[patches[i]] = true;
        assertThat((double) p.weights(t)[i])
            .isCloseTo(1.0 / patches.length, org.assertj.core.api.Assertions.within(1e-6));
        sum += p.weights(t)[i];
      }
      assertThat(sum).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-5));
    }
    assertThat(seen).containsOnly(true);
    // the LM sequence: the visual span shrank, positions re-packed, KV caches shorter, ViT ran on
    // fewer tokens
    SequenceLayout l = r.prefillLayout();
    assertThat(l.visualCount()).isEqualTo(kept);
    assertThat(l.visualIndices()).contains(p.representatives());
    int rows = r.promptIds().length - 1 + kept;
    assertThat(l.length()).isEqualTo(rows);
    assertThat(l.nextPosition()).isEqualTo(rows);
    assertThat(r.kvCache().layer(0).length()).isEqualTo(rows + fedBack(r));
    assertThat(r.flops().get("vision")).isLessThan(full.flops().get("vision"));
    assertThat(r.flops().get("prefill")).isLessThan(full.flops().get("prefill"));
    // proportional attention changes the answer's logits relative to plain averaging
    VlmResult prop = logits("[{\"op\":\"tome\",\"r\":[40,30,20]}]");
    VlmResult plain = logits("[{\"op\":\"tome\",\"r\":[40,30,20],\"prop_attn\":false}]");
    double diff = 0;
    for (int i = 0; i < prop.stepLogits().get(0).length; i++) {
      diff = Math.max(diff, Math.abs(prop.stepLogits().get(0)[i] - plain.stepLogits().get(0)[i]));
    }
    assertThat(diff).isGreaterThan(1e-4);
    assertThatThrownBy(() -> run("[{\"op\":\"tome\",\"r\":129}]", "x"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("plan[0]: tome.r must be in [0, 128]");
  }

  @Test
  void toMeThenVtcClsThenFastVComposeAcrossHooks() {
    VlmResult r =
        run(
            "[{\"op\":\"tome\",\"r\":16},{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"1..L-2\"},"
                + "{\"op\":\"fastv\",\"layer\":2,\"keep\":32}]",
            "c");
    assertThat(r.keptMaps())
        .extracting(KeptMap::hook)
        .containsExactly(
            Hook.VISION_LAYER,
            Hook.VISION_LAYER,
            Hook.VISION_LAYER,
            Hook.VISUAL_TOKENS,
            Hook.PREFILL_AFTER);
    KeptMap vtc = r.keptMaps().get(3);
    assertThat(vtc.inputCount()).isEqualTo(256 - 48);
    assertThat(r.visualTokensKept()).isEqualTo(64);
    // VTC-CLS scored the merged tokens at their representative patches and kept their provenance
    TokenProvenance p = r.provenance();
    assertThat(p.count()).isEqualTo(64);
    assertThat(p.representatives()).containsExactly(vtc.original());
    int patches = 0;
    for (int t = 0; t < p.count(); t++) {
      patches += p.size(t);
    }
    assertThat(patches).isGreaterThan(64);
    KeptMap fastv = r.keptMaps().get(4);
    assertThat(fastv.inputCount()).isEqualTo(r.promptIds().length - 1 + 64);
    assertThat(r.kvCache().layer(2).length()).isEqualTo(r.promptIds().length - 1 + 32 + fedBack(r));
  }

  @Test
  void concurrentRequestsEqualSequentialOnes() throws Exception {
    String plan =
        "[{\"op\":\"vtc-cls\",\"keep\":96,\"layers\":\"1..L-2\"},{\"op\":\"fastv\",\"layer\":2}]";
    String[] ids = {"c0", "c1", "c2", "c3", "c4", "c5"};
    int[][] sequential = new int[ids.length][];
    for (int i = 0; i < ids.length; i++) {
      sequential[i] = run(i % 2 == 0 ? plan : "[]", ids[i]).tokenIds();
    }
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newFixedThreadPool(3);
    try {
      List<java.util.concurrent.Future<int[]>> futures = new java.util.ArrayList<>();
      for (int i = 0; i < ids.length; i++) {
        final int k = i;
        futures.add(pool.submit(() -> run(k % 2 == 0 ? plan : "[]", ids[k]).tokenIds()));
      }
      for (int i = 0; i < ids.length; i++) {
        assertThat(futures.get(i).get()).as(ids[i]).containsExactly(sequential[i]);
      }
    } finally {
      pool.shutdown();
    }
  }

  @Test
  void badInputsAreTyped() {
    assertThatThrownBy(() -> rt.generate(VlmRequest.ofBytes("x", new byte[0], Q)))
        .isInstanceOf(MediaDecodeException.class);
    assertThatThrownBy(
            () -> rt.generate(VlmRequest.ofBytes("x", image, "is there a red circle? ".repeat(60))))
        .isInstanceOf(PromptTooLongException.class)
        .hasMessageContaining("context is 512");
    assertThatThrownBy(() -> run("[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"3..3\"}]", "x"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("ViT layer");
    assertThatThrownBy(() -> run("[{\"op\":\"fastv\",\"layer\":9}]", "x"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("fastv.layer");
  }

  @Test
  void planChecksFromTheManifestMatchTheOpenRuntime() {
    // The driver's check (manifest only, no session) and the open runtime apply the same rules.
    ModelShape shape = VlmRuntime.shape(Bundle.open(rt.bundle().directory(), Bundle.Verify.SIZE));
    assertThat(shape).isEqualTo(rt.shape());
    assertThat(shape.numPatches()).isEqualTo(256);
    for (String plan :
        new String[] {
          "[{\"op\":\"fastv\",\"layer\":9}]",
          "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"1..99\"}]",
          "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"3..3\"}]",
          "[{\"op\":\"random-drop\",\"keep\":257}]",
          "[{\"op\":\"random-drop\",\"keep\":64},{\"op\":\"fastv\",\"layer\":2,\"keep\":65}]"
        }) {
      CompressionPlan p = CompressionPlan.parse(plan);
      Throwable driver = catchThrowable(() -> VlmRuntime.checkPlan(p, shape));
      assertThat(driver)
          .as(plan)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("plan[");
      assertThatThrownBy(() -> rt.validate(p)).as(plan).hasMessage(driver.getMessage());
    }
    assertThatThrownBy(
            () ->
                VlmRuntime.checkPlan(
                    CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":257}]"), shape))
        .hasMessageContaining("random-drop.keep must be in [1, 256]")
        .hasMessageContaining("got 257");
    VlmRuntime.checkPlan(
        CompressionPlan.parse(
            "[{\"op\":\"random-drop\",\"keep\":256},{\"op\":\"fastv\",\"layer\":3}]"),
        shape);
  }
}
