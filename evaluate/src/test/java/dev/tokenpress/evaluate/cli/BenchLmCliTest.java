package dev.tokenpress.evaluate.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.cli.CliRun;
import dev.tokenpress.runtime.testing.TinyCheckpoints;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code bench lm} through {@code bin/tokenpress}'s dispatch on a tiny random checkpoint. */
class BenchLmCliTest {
  @TempDir Path tmp;

  @Test
  void benchLmPrintsJsonAndChecksItsOptions() throws Exception {
    assertThat(ToolsRun.of("bench", "lm", "--bundle", "b", "--runs", "0").err())
        .contains("--runs must be >= 1");
    Path ckpt = TinyCheckpoints.write(tmp.resolve("ckpt"), 3, true, false);
    Path bundle = tmp.resolve("bundle");
    CliRun b =
        ToolsRun.of(
            "model",
            "build",
            "--checkpoint",
            ckpt.toString(),
            "--out",
            bundle.toString(),
            "--fused");
    assertThat(b.code()).as(b.err()).isZero();
    CliRun bench =
        ToolsRun.of(
            "bench",
            "lm",
            "--bundle",
            bundle.toString(),
            "--new-tokens",
            "4",
            "--warmup",
            "0",
            "--runs",
            "1");
    assertThat(bench.code()).as(bench.err()).isZero();
    JsonNode bj = new ObjectMapper().readTree(bench.out());
    assertThat(bj.get("same_tokens").asBoolean()).isTrue();
    assertThat(bj.get("ratio").asDouble()).isPositive();
    assertThat(bj.get("decode_tokens_per_s").asDouble()).isPositive();
  }
}
