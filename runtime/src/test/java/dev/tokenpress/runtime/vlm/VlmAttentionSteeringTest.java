package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.OperatorStat;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * VAR and CMAI on the bundled model through the whole pipeline: neutral settings reproduce the
 * empty plan (logits within 1e-5, same tokens) while the rewrite path runs; active settings change
 * the attention and say so in their stats; both compose with token reduction.
 */
class VlmAttentionSteeringTest {
  private static VlmRuntime rt;
  private static byte[] image;
  private static final String Q = "is there a red circle?";

  /**
   * Dimensions and threshold at which the bundled model has many "sinks" (see docs/benchmarks.md).
   */
  private static final String SINKS = "\"tau\":4.25,\"sink_dims\":[13,25,33]";

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

  private static VlmResult run(String plan) {
    return rt.generate(
        VlmRequest.ofBytes("rec", image, Q)
            .withPlan(CompressionPlan.parse(plan))
            .withoutStopTokens()
            .withRecordLogits(true));
  }

  private static double maxLogitDiff(VlmResult a, VlmResult b) {
    double max = 0;
    int steps = Math.min(a.stepLogits().size(), b.stepLogits().size());
    for (int s = 0; s < steps; s++) {
      float[] x = a.stepLogits().get(s);
      float[] y = b.stepLogits().get(s);
      for (int i = 0; i < x.length; i++) {
        max = Math.max(max, Math.abs(x[i] - y[i]));
      }
    }
    return max;
  }

  private static long stat(VlmResult r, String op, String name) {
    long sum = 0;
    for (OperatorStat s : r.operatorStats()) {
      if (s.operator().equals(op) && s.name().equals(name)) {
        sum += s.values()[0];
      }
    }
    return sum;
  }

  @Test
  void varWithSinkKeepOneReproducesTheEmptyPlanThroughTheRewritePath() {
    VlmResult empty = run("[]");
    VlmResult var = run("[{\"op\":\"var\",\"sink_keep\":1," + SINKS + "}]");
    assertThat(stat(var, "var", "visual_sinks")).isPositive();
    assertThat(stat(var, "var", "prefill_pairs")).isPositive();
    assertThat(stat(var, "var", "decode_pairs")).isPositive();
    assertThat(var.tokenIds()).containsExactly(empty.tokenIds());
    assertThat(maxLogitDiff(var, empty)).isLessThanOrEqualTo(1e-5);
  }

  @Test
  void varChangesAttentionWhereItFindsVisualSinksAndNothingWhereItFindsNone() {
    VlmResult empty = run("[]");
    VlmResult var = run("[{\"op\":\"var\",\"sink_keep\":0.6," + SINKS + "}]");
    assertThat(maxLogitDiff(var, empty)).isGreaterThan(1e-4);
    // the paper's tau = 20 exceeds sqrt(128): no sinks, no change at all
    VlmResult none = run("[{\"op\":\"var\",\"sink_dims\":[13,25,33]}]");
    assertThat(stat(none, "var", "sinks")).isZero();
    assertThat(none.tokenIds()).containsExactly(empty.tokenIds());
    assertThat(maxLogitDiff(none, empty)).isZero();
    assertThat(none.operatorStats()).contains(new OperatorStat("var", -1, "sink_dims", 13, 25, 33));
  }

  @Test
  void cmaiWithoutInhibitedPairsReproducesTheEmptyPlan() {
    VlmResult empty = run("[]");
    VlmResult cmai = run("[{\"op\":\"cmai\",\"threshold\":0}]");
    assertThat(stat(cmai, "cmai", "prefill_inhibited_pairs")).isZero();
    assertThat(cmai.tokenIds()).containsExactly(empty.tokenIds());
    assertThat(maxLogitDiff(cmai, empty)).isLessThanOrEqualTo(1e-5);
  }

  @Test
  void cmaiInhibitsLowFocusPairsInPrefillAndDecode() {
    VlmResult empty = run("[]");
    VlmResult cmai = run("[{\"op\":\"cmai\",\"threshold\":0.5}]");
    assertThat(stat(cmai, "cmai", "prefill_inhibited_pairs")).isPositive();
    assertThat(stat(cmai, "cmai", "decode_inhibited_pairs")).isPositive();
    assertThat(maxLogitDiff(cmai, empty)).isGreaterThan(1e-4);
  }

  @Test
  void cmaiRunsAProbePrefillWhenItInhibitsAtOrBeforeItsFocusLayer() {
    VlmResult empty = run("[]");
    VlmResult neutral =
        run("[{\"op\":\"cmai\",\"threshold\":0,\"focus_layers\":\"L-1\",\"layers\":\"0..L-1\"}]");
    assertThat(neutral.tokenIds()).containsExactly(empty.tokenIds());
    assertThat(maxLogitDiff(neutral, empty)).isLessThanOrEqualTo(1e-5);
    VlmResult twoPass =
        run("[{\"op\":\"cmai\",\"threshold\":0.5,\"focus_layers\":\"1\",\"layers\":\"1..L-1\"}]");
    VlmResult onePass =
        run("[{\"op\":\"cmai\",\"threshold\":0.5,\"focus_layers\":\"1\",\"layers\":\"2..L-1\"}]");
    // the probe's focus (layer 1, no bias) is the single pass's focus: same pairs at layers 2 and 3
    for (String name : List.of("prefill_inhibited_pairs")) {
      for (OperatorStat s : onePass.operatorStats()) {
        if (s.name().equals(name)) {
          assertThat(twoPass.operatorStats()).contains(s);
        }
      }
    }
    assertThat(twoPass.operatorStats())
        .anyMatch(
            s -> s.layer() == 1 && s.name().equals("prefill_inhibited_pairs") && s.values()[0] > 0);
    assertThat(twoPass.operatorStats())
        .anyMatch(
            s -> s.layer() == 1 && s.name().equals("decode_inhibited_pairs") && s.values()[0] > 0);
  }

  @Test
  void composeWithTokenReduction() {
    VlmResult a =
        run(
            "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"0..0\"},{\"op\":\"var\","
                + SINKS
                + "}]");
    assertThat(a.visualTokensKept()).isEqualTo(64);
    assertThat(a.keptMaps()).hasSize(1);
    assertThat(stat(a, "var", "visual_sinks")).isPositive();
    VlmResult b =
        run("[{\"op\":\"fastv\",\"layer\":2,\"keep\":64},{\"op\":\"cmai\",\"threshold\":0.5}]");
    assertThat(b.keptMaps()).hasSize(1);
    assertThat(stat(b, "cmai", "prefill_inhibited_pairs")).isPositive();
    assertThat(stat(b, "cmai", "decode_inhibited_pairs")).isPositive();
    List<String> names = b.operatorStats().stream().map(OperatorStat::operator).distinct().toList();
    assertThat(names).containsExactly("cmai");
  }
}
