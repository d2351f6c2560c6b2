package dev.tokenpress.evaluate.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.evaluate.eval.EvalCommand;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.cli.UsageException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Usage errors of {@code bench runtime}, {@code bench memory} and {@code eval}, and a tiny run of
 * each on the bundled model (built once, split + fused) so the commands cannot silently rot.
 */
class BenchCommandsTest {
  @TempDir static Path tmp;

  private static Path bundle;

  @BeforeAll
  static void buildBundle() {
    Path ckpt =
        Path.of(System.getProperty("tokenpress.project.dir", "."), "models", "tiny-llava-shapes");
    if (Files.isRegularFile(ckpt.resolve("model.safetensors"))) {
      bundle = tmp.resolve("bundle");
      BundleBuilder.build(ckpt, bundle, new BuildOptions(true, true));
    }
  }

  private static Path bundle() {
    assumeTrue(
        bundle != null,
        "skipped: models/tiny-llava-shapes not found (set -Dtokenpress.project.dir)");
    return bundle;
  }

  private static JsonNode json(String s) throws Exception {
    return new ObjectMapper().readTree(s);
  }

  @Test
  void usageErrorsNameTheOption() {
    assertThatThrownBy(() -> RuntimeBenchCommand.run(new String[] {"--images"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("missing value after --images");
    assertThatThrownBy(
            () -> RuntimeBenchCommand.run(new String[] {"--bundle", "x", "--images", "many"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--images must be an integer, found 'many'");
    assertThatThrownBy(
            () -> RuntimeBenchCommand.run(new String[] {"--bundle", "x", "--new-tokens", "0"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--new-tokens must be in [1, 4096], found 0");
    assertThatThrownBy(() -> RuntimeBenchCommand.run(new String[] {"--images", "3"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--bundle is required");
    assertThatThrownBy(() -> RuntimeBenchCommand.run(new String[] {"--bundle", "x", "--fast"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("unknown option --fast");
    assertThatThrownBy(
            () ->
                MemoryBenchCommand.run(
                    new String[] {"--bundle", "x", "--generations", "10", "--warmup", "10"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--warmup (10) must be below --generations (10)");
    assertThatThrownBy(
            () ->
                MemoryBenchCommand.run(
                    new String[] {"--bundle", "x", "--plan", "[{\"op\":\"nope\"}]"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("invalid --plan")
        .hasMessageContaining("nope");
    assertThatThrownBy(
            () -> EvalCommand.run(new String[] {"--bundle", "x", "--kinds", "exists,colour"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("unknown kind 'colour'");
    assertThatThrownBy(() -> EvalCommand.run(new String[] {"--bundle", "x", "--split", "dev"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--split");
    assertThatThrownBy(
            () ->
                EvalCommand.run(
                    new String[] {"--bundle", "x", "--plan", "@" + tmp.resolve("absent.json")}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("cannot read plan file");
    assertThatThrownBy(() -> EvalCommand.run(new String[] {"--bundle", "x", "--plan", "{}"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("invalid --plan");
    assertThatThrownBy(
            () ->
                EvalCommand.run(
                    new String[] {"--plan", "[]"})) // tokenpress.home unset: no models/ here
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--bundle not given and the bundled evaluation model");
  }

  @Test
  void rssParsing() {
    assertThat(
            ProcessMemory.parseRssKib(
                "Name:\tjava\nVmPeak:\t 10 kB\nVmRSS:\t  123456 kB\nVmData: 5 kB\n"))
        .isEqualTo(123456L);
    assertThatThrownBy(() -> ProcessMemory.parseRssKib("Name:\tjava\n"))
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void runtimeBenchSmoke() throws Exception {
    JsonNode o =
        json(
            RuntimeBenchCommand.run(
                new String[] {
                  "--bundle",
                  bundle().toString(),
                  "--images",
                  "2",
                  "--warmup",
                  "0",
                  "--new-tokens",
                  "3",
                  "--parity-images",
                  "1"
                }));
    assertThat(o.get("images").asInt()).isEqualTo(2);
    assertThat(o.get("split_ms_per_image").asDouble()).isPositive();
    assertThat(o.get("fused_ms_per_image").asDouble()).isPositive();
    assertThat(o.get("ratio").asDouble()).isPositive();
    assertThat(o.get("decode_tokens_per_s").get("split").asDouble()).isPositive();
    assertThat(o.get("stage_medians_ms").get("fused").has("prefill")).isTrue();
    assertThat(o.get("parity").get("max_abs_logit_diff").asDouble()).isLessThanOrEqualTo(1e-4);
    assertThat(o.get("parity").get("same_tokens").asBoolean()).isTrue();
    assertThat(o.get("split_cpu_ms_per_image").asDouble()).isPositive();
    assertThat(o.get("stage_medians_ms").get("split").get("total").asDouble())
        .isEqualTo(o.get("split_ms_per_image").asDouble());
  }

  @Test
  void memoryBenchSmoke() throws Exception {
    assumeTrue(ProcessMemory.available(), "skipped: no /proc/self/status");
    JsonNode o =
        json(
            MemoryBenchCommand.run(
                new String[] {
                  "--bundle",
                  bundle().toString(),
                  "--generations",
                  "3",
                  "--warmup",
                  "1",
                  "--sample-every",
                  "1",
                  "--images",
                  "2",
                  "--max-new-tokens",
                  "2"
                }));
    assertThat(o.get("generations").asInt()).isEqualTo(3);
    assertThat(o.get("samples")).hasSize(3);
    assertThat(o.get("rss_after_warmup_mib").asDouble()).isPositive();
    assertThat(o.has("growth_pct")).isTrue();
  }

  @Test
  void evalSmokeEmptyPlanHasFlopsRatioOneAndVtcClsKeepsItsBudget() throws Exception {
    JsonNode empty =
        json(
            EvalCommand.run(
                new String[] {
                  "--bundle",
                  bundle().toString(),
                  "--images",
                  "1",
                  "--max-new-tokens",
                  "3",
                  "--kinds",
                  "exists,caption"
                }));
    assertThat(empty.get("questions").asInt()).isEqualTo(3);
    assertThat(empty.get("questions_per_kind").get("exists").asInt()).isEqualTo(2);
    assertThat(empty.get("accuracy").has("exists")).isTrue();
    assertThat(empty.has("caption_object_f1")).isTrue();
    assertThat(empty.get("mean_visual_tokens_kept").asDouble()).isEqualTo(256.0);
    assertThat(empty.get("flops_ratio_vs_empty_plan").get("total").asDouble()).isEqualTo(1.0);
    assertThat(empty.get("object_patch_recall").asDouble()).isEqualTo(1.0);
    assertThat(empty.get("kept_on_object_fraction").asDouble()).isBetween(0.01, 0.99);

    JsonNode vtc =
        json(
            EvalCommand.run(
                new String[] {
                  "--bundle",
                  bundle().toString(),
                  "--images",
                  "1",
                  "--max-new-tokens",
                  "2",
                  "--kinds",
                  "color",
                  "--workers",
                  "2",
                  "--plan",
                  "[{\"op\":\"vtc-cls\",\"keep_ratio\":0.25,\"layers\":\"1..L-2\"}]"
                }));
    assertThat(vtc.get("mean_visual_tokens_kept").asDouble()).isEqualTo(64.0);
    assertThat(vtc.get("flops_ratio_vs_empty_plan").get("prefill").asDouble()).isBetween(0.1, 0.5);
    assertThat(vtc.get("flops_ratio_vs_empty_plan").get("vision").asDouble()).isEqualTo(1.0);
    assertThat(vtc.get("mean_visual_tokens_after_lm_drops").asDouble()).isEqualTo(64.0);

    JsonNode fastv =
        json(
            EvalCommand.run(
                new String[] {
                  "--bundle",
                  bundle().toString(),
                  "--images",
                  "1",
                  "--max-new-tokens",
                  "2",
                  "--kinds",
                  "count",
                  "--plan",
                  "[{\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5}]"
                }));
    assertThat(fastv.get("mean_visual_tokens_kept").asDouble()).isEqualTo(256.0);
    assertThat(fastv.get("mean_visual_tokens_after_lm_drops").asDouble()).isEqualTo(128.0);
    assertThat(fastv.get("flops_ratio_vs_empty_plan").get("prefill").asDouble())
        .isBetween(0.5, 1.0);
  }

  @Test
  void evalDetailsWriteOneSortedLinePerQuestionAgreeingWithTheSummary() throws Exception {
    Path details = tmp.resolve("details/eval.jsonl");
    JsonNode summary =
        json(
            EvalCommand.run(
                new String[] {
                  "--bundle",
                  bundle().toString(),
                  "--images",
                  "2",
                  "--max-new-tokens",
                  "3",
                  "--kinds",
                  "exists,caption",
                  "--workers",
                  "2",
                  "--details",
                  details.toString()
                }));
    java.util.List<String> lines = Files.readAllLines(details);
    assertThat(lines).hasSize(summary.get("questions").asInt()).hasSize(6);
    java.util.List<String> ids = new java.util.ArrayList<>();
    int correct = 0;
    int exists = 0;
    for (String line : lines) {
      JsonNode d = json(line);
      ids.add(d.get("question_id").asText());
      assertThat(d.get("image").asText()).startsWith("test-");
      assertThat(d.get("question").asText()).isNotBlank();
      assertThat(d.has("expected") && d.has("answer")).isTrue();
      if (d.get("kind").asText().equals("caption")) {
        assertThat(d.get("correct").isNull()).isTrue();
      } else {
        exists++;
        correct += d.get("correct").asBoolean() ? 1 : 0;
      }
    }
    assertThat(ids).isSorted();
    assertThat(exists).isEqualTo(4);
    assertThat(correct / (double) exists)
        .isEqualTo(summary.get("accuracy").get("exists").asDouble());
    Path notADirectory = Files.writeString(tmp.resolve("plain-file"), "x");
    assertThatThrownBy(
            () ->
                EvalCommand.run(
                    new String[] {
                      "--bundle",
                      bundle().toString(),
                      "--images",
                      "1",
                      "--max-new-tokens",
                      "1",
                      "--kinds",
                      "exists",
                      "--details",
                      notADirectory.resolve("eval.jsonl").toString()
                    }))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("cannot write --details");
  }
}
