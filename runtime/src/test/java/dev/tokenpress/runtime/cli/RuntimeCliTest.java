package dev.tokenpress.runtime.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.testing.TinyCheckpoints;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RuntimeCliTest {
  @TempDir Path tmp;

  private static CliRun run(String... args) {
    return CliRun.of(args);
  }

  @Test
  void usageErrorsExitTwoWithAMessage() {
    CliRun r = run("model", "build", "--checkpoint");
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("missing value after --checkpoint").contains("usage:");
    assertThat(run("model", "build", "--out", "x").err()).contains("--checkpoint is required");
    assertThat(run("model", "frobnicate").err()).contains("unknown command 'model frobnicate'");
    assertThat(run("bench", "lm", "--bundle", "b").err())
        .contains("unknown command 'bench lm'"); // in evaluate/
    assertThat(run("lm", "generate", "--bundle", tmp.toString()).code())
        .isEqualTo(1); // not a bundle
  }

  @Test
  void buildAndGeneratePrintJson() throws Exception {
    Path ckpt = TinyCheckpoints.write(tmp.resolve("ckpt"), 3, true, false);
    Path bundle = tmp.resolve("bundle");
    ObjectMapper json = new ObjectMapper();
    CliRun b =
        run(
            "model",
            "build",
            "--checkpoint",
            ckpt.toString(),
            "--out",
            bundle.toString(),
            "--fused");
    assertThat(b.code()).as(b.err()).isZero();
    assertThat(json.readTree(b.out()).get("family").asText()).isEqualTo("llava");

    CliRun g =
        run(
            "lm",
            "generate",
            "--bundle",
            bundle.toString(),
            "--prompt-ids",
            "1,4,9",
            "--max-new-tokens",
            "4",
            "--stop-ids",
            "",
            "--kv",
            "fp16");
    assertThat(g.code()).as(g.err()).isZero();
    JsonNode o = json.readTree(g.out());
    assertThat(o.get("token_ids")).hasSize(4);
    assertThat(o.get("flops").get("total").asLong()).isPositive();
    assertThat(o.get("kv_lengths").get(0).asInt()).isEqualTo(3 + 3);

    assertThat(TinyCheckpoints.LAYERS).isEqualTo(3);
  }
}
