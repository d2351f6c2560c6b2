package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.TestOperator;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import dev.tokenpress.runtime.vision.ClsAttention;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionEncoder;
import dev.tokenpress.runtime.vision.VisionOutput;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * VMTC end to end on the bundled model: neutral budget, 64 tokens with provenance and clusters,
 * FastV after it.
 */
class VlmVmtcTest {
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

  private static VlmResult run(String plan, String id) {
    return rt.generate(VlmRequest.ofBytes(id, image, Q).withPlan(CompressionPlan.parse(plan)));
  }

  private static VlmResult logits(String plan) {
    return rt.generate(
        VlmRequest.ofBytes("t", image, Q)
            .withPlan(CompressionPlan.parse(plan))
            .withRecordLogits(true)
            .withoutStopTokens()
            .withMaxNewTokens(3));
  }

  private static int fedBack(VlmResult r) {
    return r.tokenIds().length
        - (r.stopReason() == dev.tokenpress.runtime.lm.StopReason.STOP_TOKEN ? 0 : 1);
  }

  @Test
  void keepingEveryTokenGivesTheEmptyPlansLogits() {
    VlmResult empty = logits("[]");
    VlmResult all = logits("[{\"op\":\"vmtc\",\"keep\":256}]");
    assertThat(all.tokenIds()).containsExactly(empty.tokenIds());
    for (int s = 0; s < empty.stepLogits().size(); s++) {
      float[] a = empty.stepLogits().get(s);
      float[] b = all.stepLogits().get(s);
      double max = 0;
      for (int i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs(a[i] - b[i]));
      }
      assertThat(max).as("step %d", s).isLessThanOrEqualTo(1e-5);
    }
    assertThat(all.visualTokensKept()).isEqualTo(256);
    assertThat(all.keptMaps())
        .isEmpty(); // 128 primary + 128 one-member clusters: every row kept in place
  }

  /** Every patch in exactly one token, weights summing to 1 per token, tokens in raster order. */
  private static void assertCoversEveryPatchOnce(TokenProvenance p) {
    int[] seen = new int[256];
    int prev = -1;
    for (int t = 0; t < p.count(); t++) {
      int[] patches = p.patches(t);
      assertThat(patches[0]).isGreaterThan(prev);
      prev = patches[0];
      double sum = 0;
      for (int i = 0; i < patches.length; i++) {
        seen[patches[i]]++;
        sum += p.weights(t)[i];
      }
      assertThat(sum).as("token %d", t).isCloseTo(1.0, within(1e-5));
    }
    assertThat(seen).containsOnly(1);
  }

  @Test
  void keep64SendsSixtyFourTokensWithProvenanceAndClusters() {
    VlmResult full = run("[]", "m");
    VlmResult r = run("[{\"op\":\"vmtc\",\"keep\":64}]", "m");
    assertThat(r.visualTokensIn()).isEqualTo(256);
    assertThat(r.visualTokensKept()).isEqualTo(64);
    assertThat(r.keptMaps()).hasSize(1);
    KeptMap m = r.keptMaps().get(0);
    assertThat(m.operator()).isEqualTo("vmtc");
    assertThat(m.hook()).isEqualTo(Hook.VISION_LAYER);
    assertThat(m.layer()).isEqualTo(rt.shape().visionFeatureLayer());
    assertThat(m.inputCount()).isEqualTo(256);
    assertThat(m.merged()).isEqualTo(256 - 64);
    TokenProvenance p = r.provenance();
    assertThat(p.count()).isEqualTo(64);
    assertCoversEveryPatchOnce(p);
    // the cluster assignment agrees with provenance: 32 primary tokens alone, 32 clusters = 32
    // merged tokens
    int[] labels = m.labels();
    assertThat(labels).hasSize(256);
    int primary = 0;
    boolean[] clusterSeen = new boolean[32];
    for (int t = 0; t < 64; t++) {
      int[] patches = p.patches(t);
      int label = labels[patches[0]];
      for (int patch : patches) {
        assertThat(labels[patch]).isEqualTo(label);
      }
      if (label == -1) {
        assertThat(patches).hasSize(1);
        primary++;
      } else {
        assertThat(label).isBetween(0, 31);
        assertThat(clusterSeen[label]).isFalse();
        clusterSeen[label] = true;
      }
    }
    assertThat(primary).isEqualTo(32);
    assertThat(clusterSeen).containsOnly(true);
    // independent route: the primary tokens are the top 32 of the feature layer's CLS attention
    float[] cls;
    try (VisionEncoder enc = VisionBundle.openSplit(rt.bundle(), SessionConfig.singleThreaded())) {
      int f = rt.shape().visionFeatureLayer();
      HookRunner signalsOnly =
          new HookRunner(
              List.of(
                  new TestOperator(
                      "cls", EnumSet.of(Hook.VISUAL_TOKENS), new Signal.ClsAttention(f)) {}),
              rt.shape(),
              0L);
      VisionOutput out =
          enc.encode(rt.preprocessor().preprocess(rt.decoder().decode(image)), signalsOnly);
      cls = ClsAttention.patches(out.clsAttention().get(f));
    }
    int[] top = Kernels.topK(cls, 32);
    Arrays.sort(top);
    int[] primaries = new int[32];
    int k = 0;
    for (int i = 0; i < 256; i++) {
      if (labels[i] == -1) {
        primaries[k++] = i;
      }
    }
    assertThat(primaries).containsExactly(top);
    // the LM sequence: 64 visual tokens, positions re-packed, shorter caches, cheaper prefill
    SequenceLayout l = r.prefillLayout();
    assertThat(l.visualCount()).isEqualTo(64);
    assertThat(Arrays.stream(l.visualIndices()).filter(v -> v >= 0).toArray())
        .containsExactly(p.representatives());
    int rows = r.promptIds().length - 1 + 64;
    assertThat(l.nextPosition()).isEqualTo(rows);
    assertThat(r.kvCache().layer(0).length()).isEqualTo(rows + fedBack(r));
    assertThat(r.flops().get("prefill")).isLessThan(full.flops().get("prefill"));
    // deterministic per record, seeded per record
    assertThat(run("[{\"op\":\"vmtc\",\"keep\":64}]", "m").keptMaps().get(0).labels())
        .containsExactly(labels);
  }

  @Test
  void projectedMergingAndFastVAfterItCompose() {
    VlmResult r =
        run("[{\"op\":\"vmtc\",\"keep\":64},{\"op\":\"fastv\",\"layer\":2,\"keep\":32}]", "c");
    assertThat(r.keptMaps())
        .extracting(KeptMap::hook)
        .containsExactly(Hook.VISION_LAYER, Hook.PREFILL_AFTER);
    assertThat(r.visualTokensKept()).isEqualTo(64);
    assertCoversEveryPatchOnce(r.provenance());
    KeptMap fastv = r.keptMaps().get(1);
    assertThat(fastv.inputCount()).isEqualTo(r.promptIds().length - 1 + 64);
    assertThat(r.kvCache().layer(2).length()).isEqualTo(r.promptIds().length - 1 + 32 + fedBack(r));

    VlmResult projected =
        run(
            "[{\"op\":\"vmtc\",\"keep\":48,\"merge_at\":\"projected\","
                + "\"importance_layers\":\"1..L-2\"}]",
            "c");
    assertThat(projected.visualTokensKept()).isEqualTo(48);
    assertThat(projected.keptMaps()).extracting(KeptMap::hook).containsExactly(Hook.VISUAL_TOKENS);
    assertThat(projected.keptMaps().get(0).labels()).hasSize(256);
    assertCoversEveryPatchOnce(projected.provenance());
  }

  @Test
  void maxOverHeadsRunsOnThePerHeadClsAttention() {
    VlmResult mean = run("[{\"op\":\"vmtc\",\"keep\":64}]", "m");
    VlmResult max = run("[{\"op\":\"vmtc\",\"keep\":64,\"importance_heads\":\"max\"}]", "m");
    assertThat(max.visualTokensKept()).isEqualTo(64);
    assertCoversEveryPatchOnce(max.provenance());
    int[] labels = max.keptMaps().get(0).labels();
    assertThat(Arrays.stream(labels).filter(l -> l == -1).count()).isEqualTo(32);
    // on this model the per-head maximum ranks patches differently from the head mean
    assertThat(labels).isNotEqualTo(mean.keptMaps().get(0).labels());
  }

  @Test
  void badConfigsFailAtPlanStartNamingTheField() {
    assertThatThrownBy(() -> run("[{\"op\":\"vmtc\",\"keep\":257}]", "x"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("plan[0]: vmtc.keep must be in [1, 256]");
    assertThatThrownBy(
            () ->
                run(
                    "[{\"op\":\"vmtc\",\"keep\":64,\"importance_heads\":\"max\","
                        + "\"merge_at\":\"projected\"}]",
                    "x"))
        .hasMessageStartingWith(
            "plan[0]: vmtc.importance_heads must be \"mean\" at merge_at \"projected\"");
    assertThatThrownBy(
            () -> run("[{\"op\":\"vmtc\",\"keep\":64,\"importance_layers\":\"1..L-2\"}]", "x"))
        .hasMessageStartingWith(
            "plan[0]: vmtc.importance_layers must be the vision feature layer alone (2");
    assertThatThrownBy(() -> run("[{\"op\":\"vmtc\",\"keep\":64,\"metric\":\"l1\"}]", "x"))
        .hasMessageContaining("vmtc.metric must be one of [cosine, euclidean]");
  }
}
