package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.media.MediaDecodeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VlmCommandsTest {
  @Test
  void generatePrintsTheDocumentedJson() throws Exception {
    Path bundle = TinyLlavaBundle.bundle();
    Path image;
    try (Stream<Path> s = Files.list(TinyLlavaBundle.checkpoint().resolve("reference_images"))) {
      image = s.sorted().findFirst().orElseThrow();
    }
    String out = VlmCommands.generate(new String[] {"--bundle", bundle.toString(), "--image", image.toString(),
        "--prompt", "describe the image.", "--max-new-tokens", "4",
        "--plan", "[{\"op\":\"random-drop\",\"keep_ratio\":0.25}]"});
    JsonNode o = new ObjectMapper().readTree(out);
    assertThat(o.get("answer").isTextual()).isTrue();
    assertThat(o.get("token_ids").size()).isBetween(0, 4);
    assertThat(o.get("visual_tokens_in").asInt()).isEqualTo(256);
    assertThat(o.get("visual_tokens_kept").asInt()).isEqualTo(64);
    assertThat(o.get("flops").fieldNames()).toIterable().contains("vision", "prefill", "decode", "total");
    assertThat(o.get("timings_ms").fieldNames()).toIterable().contains("vision", "prefill", "decode", "total");
  }

  @Test
  void usageAndInputErrorsAreClear(@TempDir Path dir) throws Exception {
    assertThatThrownBy(() -> VlmCommands.generate(new String[] {"--image", "x.png"}))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--bundle is required");
    assertThatThrownBy(() -> VlmCommands.generate(new String[] {"--bogus"}))
        .hasMessageContaining("unknown option --bogus");
    Path bundle = TinyLlavaBundle.bundle();
    Path bad = dir.resolve("bad.png");
    Files.write(bad, new byte[] {(byte) 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0});
    assertThatThrownBy(() -> VlmCommands.generate(new String[] {"--bundle", bundle.toString(), "--image", bad.toString(),
        "--prompt", "q"})).isInstanceOfSatisfying(MediaDecodeException.class,
            e -> assertThat(e.reason()).isEqualTo(MediaDecodeException.Reason.TRUNCATED));
    assertThatThrownBy(() -> VlmCommands.generate(new String[] {"--bundle", bundle.toString(), "--image", bad.toString(),
        "--prompt", "q", "--plan", "[{\"op\":\"nope\"}]"})).hasMessageContaining("unknown operator");
  }
}
