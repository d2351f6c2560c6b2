package dev.tokenpress.evaluate.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code calibrate mustdrop} on a few validation images of the bundled model: the chosen plan
 * reaches the target from below within tolerance, the probes are non-increasing in the threshold,
 * and {@code eval} with the printed plan reports the same layer-averaged count; eval's layer
 * average and KV bytes on FastV, RandomDrop and the empty plan.
 */
class CalibrateCommandTest {
  private static JsonNode json(String s) throws Exception {
    return new ObjectMapper().readTree(s);
  }

  @Test
  void usageErrorsNameTheOption() {
    assertThatThrownBy(() -> CalibrateCommand.run(new String[] {"--bundle", "x"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--target-tokens is required");
    assertThatThrownBy(
            () -> CalibrateCommand.run(new String[] {"--bundle", "x", "--target-tokens", "many"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--target-tokens must be a number, found 'many'");
    assertThatThrownBy(
            () -> CalibrateCommand.run(new String[] {"--bundle", "x", "--target-tokens", "0"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--target-tokens must be a finite number > 0");
    assertThatThrownBy(
            () ->
                CalibrateCommand.run(
                    new String[] {"--bundle", "x", "--target-tokens", "64", "--vary", "beta"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--vary must be gamma, alpha or both, found 'beta'");
    assertThatThrownBy(
            () ->
                CalibrateCommand.run(
                    new String[] {
                      "--bundle",
                      "x",
                      "--target-tokens",
                      "64",
                      "--base-plan",
                      "[{\"op\":\"random-drop\",\"keep\":64}]"
                    }))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("exactly one mustdrop operator, found none");
    assertThatThrownBy(
            () ->
                CalibrateCommand.run(
                    new String[] {
                      "--bundle",
                      "x",
                      "--target-tokens",
                      "64",
                      "--vary",
                      "both",
                      "--base-plan",
                      "[{\"op\":\"mustdrop\",\"global_thr\":0}]"
                    }))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("mustdrop.global_thr > 0, found 0.0");
  }

  @Test
  void reachesTheTargetOnValidationImagesAndTheCountsAreMonotone() throws Exception {
    String bundle = TinyLlavaBundle.bundle().toString();
    double target = 64;
    JsonNode o =
        json(
            CalibrateCommand.run(
                new String[] {
                  "--bundle",
                  bundle,
                  "--split",
                  "val",
                  "--images",
                  "3",
                  "--target-tokens",
                  "64",
                  "--vary",
                  "both",
                  "--iterations",
                  "14",
                  "--workers",
                  "2"
                }));
    assertThat(o.get("reached").asBoolean()).isTrue();
    double got = o.get("mean_visual_tokens_layer_average").asDouble();
    assertThat(got).isLessThanOrEqualTo(target).isGreaterThan(target - 3);
    // probes ordered by threshold; counts never increase with it, and span the target
    List<Double> counts = new ArrayList<>();
    double lastThr = 0;
    for (JsonNode p : o.get("probes")) {
      assertThat(p.get("global_thr").asDouble()).isGreaterThan(lastThr);
      lastThr = p.get("global_thr").asDouble();
      assertThat(p.get("individual_thr").asDouble())
          .isCloseTo(lastThr, within(1e-12)); // default α0/γ0 = 1 (float noise)
      counts.add(p.get("mean_visual_tokens_layer_average").asDouble());
      // stage A runs before the thresholds: the tokens entering the LM do not depend on them
      assertThat(p.get("mean_visual_tokens_kept").asDouble())
          .isEqualTo(o.get("mean_visual_tokens_kept").asDouble());
    }
    assertThat(counts).hasSizeGreaterThan(5).isSortedAccordingTo((a, b) -> Double.compare(b, a));
    assertThat(counts.get(0)).isGreaterThan(target);
    assertThat(o.get("monotone").asBoolean()).isTrue();
    // eval with the printed plan counts the same way
    JsonNode e =
        json(
            EvalCommand.run(
                new String[] {
                  "--bundle",
                  bundle,
                  "--split",
                  "val",
                  "--images",
                  "3",
                  "--max-new-tokens",
                  "1",
                  "--plan",
                  o.get("plan").asText()
                }));
    assertThat(e.get("mean_visual_tokens_layer_average").asDouble()).isCloseTo(got, within(1e-3));
    assertThat(e.get("mean_visual_tokens_kept").asDouble())
        .isCloseTo(o.get("mean_visual_tokens_kept").asDouble(), within(1e-3));
  }

  @Test
  void evalAveragesTheVisualCountAfterEachLmLayer() throws Exception {
    String bundle = TinyLlavaBundle.bundle().toString();
    // FastV at layer 2 drops after layer 1 (its score is layer 1's attention): 256 after layer 0,
    // 64 after 1..3
    JsonNode e =
        json(
            EvalCommand.run(
                new String[] {
                  "--bundle",
                  bundle,
                  "--images",
                  "1",
                  "--max-new-tokens",
                  "1",
                  "--plan",
                  "[{\"op\":\"fastv\",\"layer\":2,\"keep\":64}]"
                }));
    assertThat(e.get("mean_visual_tokens_layer_average").asDouble())
        .isEqualTo((256 + 3 * 64) / 4.0);
    JsonNode r =
        json(
            EvalCommand.run(
                new String[] {
                  "--bundle",
                  bundle,
                  "--images",
                  "1",
                  "--max-new-tokens",
                  "1",
                  "--plan",
                  "[{\"op\":\"random-drop\",\"keep\":28}]"
                }));
    assertThat(r.get("mean_visual_tokens_layer_average").asDouble()).isEqualTo(28.0);
    JsonNode empty =
        json(
            EvalCommand.run(
                new String[] {"--bundle", bundle, "--images", "1", "--max-new-tokens", "1"}));
    assertThat(empty.get("mean_visual_tokens_layer_average").asDouble()).isEqualTo(256.0);
    // the split runtime's KV cache: fp32 K and V per layer; fewer visual tokens, fewer bytes
    assertThat(r.get("mean_kv_bytes").asLong())
        .isPositive()
        .isLessThan(empty.get("mean_kv_bytes").asLong());
    assertThat(e.get("mean_kv_bytes").asLong())
        .isLessThan(empty.get("mean_kv_bytes").asLong())
        .isGreaterThan(r.get("mean_kv_bytes").asLong());
  }
}
