package dev.tokenpress.runtime.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tokenpress generate} and {@code bench runtime} on the bundled tiny LLaVA. */
class GenerateCommandTest {
  private static CliRun run(String... args) {
    return CliRun.of(args);
  }

  private static Path firstImage() throws Exception {
    return TinyLlavaBundle.firstReferenceImage();
  }

  @Test
  void generatePrintsTheDocumentedJson() throws Exception {
    Path bundle = TinyLlavaBundle.bundle();
    CliRun r =
        run(
            "generate",
            "--bundle",
            bundle.toString(),
            "--image",
            firstImage().toString(),
            "--prompt",
            "describe the image.",
            "--max-new-tokens",
            "4",
            "--plan",
            "[{\"op\":\"random-drop\",\"keep_ratio\":0.25}]");
    assertThat(r.code()).as(r.err()).isZero();
    JsonNode o = new ObjectMapper().readTree(r.out());
    assertThat(o.get("answer").isTextual()).isTrue();
    assertThat(o.get("token_ids").size()).isBetween(0, 4);
    assertThat(o.get("visual_tokens_in").asInt()).isEqualTo(256);
    assertThat(o.get("visual_tokens_kept").asInt()).isEqualTo(64);
    assertThat(o.get("flops").fieldNames())
        .toIterable()
        .contains("vision", "prefill", "decode", "total");
    assertThat(o.get("timings_ms").fieldNames())
        .toIterable()
        .contains("vision", "prefill", "decode", "total");
    assertThat(o.has("visual_token_sizes")).isFalse();

    CliRun tome =
        run(
            "generate",
            "--bundle",
            bundle.toString(),
            "--image",
            firstImage().toString(),
            "--prompt",
            "describe the image.",
            "--max-new-tokens",
            "2",
            "--plan",
            "[{\"op\":\"tome\",\"r\":8}]");
    assertThat(tome.code()).as(tome.err()).isZero();
    JsonNode t = new ObjectMapper().readTree(tome.out());
    assertThat(t.get("visual_tokens_kept").asInt()).isEqualTo(256 - 3 * 8);
    int patches = 0;
    for (JsonNode n : t.get("visual_token_sizes")) {
      patches += n.asInt();
    }
    assertThat(patches).isEqualTo(256);
    assertThat(t.get("kept").get(0).get("merged").asInt()).isEqualTo(8);
  }

  @Test
  void errorsAreOneLineWithTheReason(@TempDir Path dir) throws Exception {
    CliRun usage = run("generate", "--image", "x.png");
    assertThat(usage.code()).isEqualTo(2);
    assertThat(usage.err()).contains("--bundle is required");
    Path bundle = TinyLlavaBundle.bundle();
    Path bad = dir.resolve("bad.png");
    Files.write(bad, new byte[] {(byte) 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0});
    CliRun trunc =
        run("generate", "--bundle", bundle.toString(), "--image", bad.toString(), "--prompt", "q");
    assertThat(trunc.code()).isEqualTo(1);
    assertThat(trunc.err()).startsWith("error: TRUNCATED");
    CliRun plan =
        run(
            "generate",
            "--bundle",
            bundle.toString(),
            "--image",
            firstImage().toString(),
            "--prompt",
            "q",
            "--plan",
            "[{\"op\":\"nope\"}]");
    assertThat(plan.code()).isEqualTo(1);
    assertThat(plan.err()).contains("unknown operator");
  }
}
