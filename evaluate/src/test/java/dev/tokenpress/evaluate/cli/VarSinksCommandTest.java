package dev.tokenpress.evaluate.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.cli.CliRun;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tokenpress var sinks}: the diagnostics it prints and the dimensions it stores in the
 * manifest.
 */
class VarSinksCommandTest {

  private static Path copy(Path from, Path to) throws Exception {
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : s.toList()) {
        Path q = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(q);
        } else {
          Files.copy(p, q);
        }
      }
    }
    return to;
  }

  @Test
  void findsNoSinkDimensionAtTheDefaultThresholdAndStoresWhatItFinds(@TempDir Path tmp)
      throws Exception {
    Path bundle = copy(TinyLlavaBundle.bundle(), tmp.resolve("b"));
    CliRun r = ToolsRun.of("var", "sinks", "--bundle", bundle.toString(), "--images", "2");
    assertThat(r.code()).as(r.err()).isZero();
    JsonNode o = new ObjectMapper().readTree(r.out());
    // hidden size 128: no dimension can exceed sqrt(128) = 11.31 < tau = 20
    assertThat(o.get("max_possible_normalised_activation").asDouble()).isEqualTo(11.3137);
    assertThat(o.get("sink_dims").size()).isZero();
    assertThat(o.get("top_dims").get(0).get("max_normalised_activation").asDouble())
        .isBetween(0.0, 11.3137);
    assertThat(o.get("written").asBoolean()).isFalse();
    assertThat(Bundle.open(bundle).manifest().analysis()).isNull();

    CliRun w =
        ToolsRun.of(
            "var",
            "sinks",
            "--bundle",
            bundle.toString(),
            "--images",
            "2",
            "--tau",
            "3.5",
            "--write");
    assertThat(w.code()).as(w.err()).isZero();
    JsonNode x = new ObjectMapper().readTree(w.out());
    assertThat(x.get("sink_dims").size()).isPositive();
    assertThat(x.get("sinks_per_image_by_layer").get("2").get("visual").asDouble()).isPositive();
    Bundle b = Bundle.open(bundle); // every listed file still verifies
    assertThat(b.manifest().analysis("var").get("tau").asDouble()).isEqualTo(3.5);
    List<Integer> dims = VlmRuntime.shape(b).lmSinkDims();
    assertThat(dims).hasSize(x.get("sink_dims").size());
    assertThat(dims.get(0)).isEqualTo(x.get("sink_dims").get(0).asInt());
    VlmRuntime.checkPlan(
        CompressionPlan.parse("[{\"op\":\"var\",\"tau\":3.5}]"), VlmRuntime.shape(b));
  }
}
