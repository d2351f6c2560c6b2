package dev.tokenpress.evaluate.eval;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code eval}'s hallucination figures on a few test images, with DAMRO and the empty plan. */
class EvalCommandTest {

  @Test
  void aCheckpointFolderIsBuiltIntoACachedBundle() throws Exception {
    String checkpoint = TinyLlavaBundle.checkpoint(TinyLlavaBundle.DROPTRAINED).toString();
    String[] args = {
      "--bundle", checkpoint, "--images", "1", "--kinds", "exists", "--max-new-tokens", "2"
    };
    JsonNode a = new ObjectMapper().readTree(EvalCommand.run(args));
    JsonNode b = new ObjectMapper().readTree(EvalCommand.run(args));
    assertThat(a.get("bundle").asText())
        .contains("tokenpress-bundles")
        .isEqualTo(b.get("bundle").asText());
    assertThat(Path.of(a.get("bundle").asText()).resolve("bundle.json")).isRegularFile();
    assertThat(a.get("questions").asInt()).isPositive();
  }

  @Test
  void reportsPopePerNegativeSamplingChairAndCost(@TempDir Path tmp) throws Exception {
    String bundle = TinyLlavaBundle.bundle().toString();
    Path details = tmp.resolve("d.jsonl");
    JsonNode e =
        new ObjectMapper()
            .readTree(
                EvalCommand.run(
                    new String[] {
                      "--bundle",
                      bundle,
                      "--images",
                      "6",
                      "--kinds",
                      "exists,caption",
                      "--max-new-tokens",
                      "24",
                      "--details",
                      details.toString()
                    }));
    JsonNode pope = e.get("pope");
    assertThat(pope.get("all").get("questions").asInt()).isEqualTo(12);
    // an image's two exists questions belong to the split of its absent-object question
    assertThat(
            pope.path("random").path("questions").asInt(0)
                + pope.path("adversarial").path("questions").asInt(0))
        .isEqualTo(12);
    assertThat(pope.get("all").get("accuracy").asDouble())
        .isEqualTo(e.get("accuracy").get("exists").asDouble());
    assertThat(e.get("chair_i").asDouble()).isEqualTo(e.get("chair").asDouble());
    assertThat(e.get("chair_s").asDouble()).isBetween(0.0, 1.0);
    assertThat(e.get("lm_work_factor").asDouble()).isEqualTo(1.0);
    assertThat(e.get("decode_ms_per_token").asDouble()).isPositive();
    List<String> lines = Files.readAllLines(details);
    assertThat(lines).hasSize(18);
    assertThat(lines)
        .filteredOn(l -> l.contains("\"kind\":\"exists\""))
        .allSatisfy(
            l ->
                assertThat(l)
                    .containsPattern("\"sampling\":\"(random|adversarial)\"")
                    .contains("pope_yes"));
    assertThat(lines)
        .filteredOn(l -> l.contains("\"kind\":\"caption\""))
        .allSatisfy(l -> assertThat(l).contains("\"objects\":", "\"hallucinated\":"));

    JsonNode d =
        new ObjectMapper()
            .readTree(
                EvalCommand.run(
                    new String[] {
                      "--bundle",
                      bundle,
                      "--images",
                      "2",
                      "--kinds",
                      "exists",
                      "--max-new-tokens",
                      "4",
                      "--plan",
                      "[{\"op\":\"damro\"}]"
                    }));
    // the outlier branch adds about as many LM FLOPs as the 4-token sequence costs
    assertThat(d.get("lm_work_factor").asDouble()).isGreaterThan(1.0).isLessThan(2.0);
  }
}
