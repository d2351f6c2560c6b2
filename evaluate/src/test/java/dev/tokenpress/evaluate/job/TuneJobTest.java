package dev.tokenpress.evaluate.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.spark.ExecutorRuntimes;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tune job end to end on the bundled model: four candidates, halving 2 -> 4 images, a FLOPs
 * limit.
 */
class TuneJobTest {
  private static final Path PROJECT = Path.of(System.getProperty("tokenpress.project.dir", ".."));

  @TempDir Path dir;

  @AfterAll
  static void stop() {
    ExecutorRuntimes.closeAll();
  }

  private TuneConfig config(Path out, String... extra) {
    List<String> sets =
        new ArrayList<>(
            List.of(
                "model.bundle=" + PROJECT.resolve("models/tiny-llava-shapes"),
                "model.maxNewTokens=8",
                "grid.op=random-drop",
                "grid.values={keep: [16, 64, 128, 200]}",
                "constraints.flopsRatio=0.7",
                "halving.eta=2",
                "halving.minImages=2",
                "halving.maxImages=4",
                "validation.images=4",
                "validation.kinds=[count, color]",
                "holdout.images=2",
                "holdout.kinds=[count, color]",
                "output.path=" + out,
                "output.overwrite=false",
                "report.resamples=50"));
    sets.addAll(List.of(extra));
    return TuneConfig.load(null, sets);
  }

  @Test
  void choosesAFeasiblePlanBySuccessiveHalvingAndConfirmsItOnHeldOutImages() throws Exception {
    SparkSession spark = LocalSpark.session("tune-test");
    Path out = dir.resolve("tune");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    TuneJob.Result r =
        TuneJob.run(
            spark,
            config(out),
            VlmProcessorFactory.INSTANCE,
            new PrintStream(log, true, StandardCharsets.UTF_8));

    // keep 200 of 256 is over the FLOPs limit; the choice is one of the feasible three
    assertThat(r.feasible()).isTrue();
    assertThat(r.label())
        .isIn("random-drop(keep=16)", "random-drop(keep=64)", "random-drop(keep=128)");
    assertThat(((Number) r.confirmation().get("flops_ratio")).doubleValue())
        .isLessThanOrEqualTo(0.7);
    // round 0: 4 candidates + empty on 2 images; round 1: 2 + empty on 4 images; 2 questions per
    // image
    assertThat(r.rounds()).isEqualTo(2);
    assertThat(r.evaluations()).isEqualTo(5 * 2 * 2 + 3 * 4 * 2);
    assertThat(r.fullGridEvaluations()).isEqualTo(5 * 4 * 2);
    @SuppressWarnings("unchecked")
    Map<String, Object> tune =
        (Map<String, Object>) Json.parse(Files.readString(out.resolve("tune.json")));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> rounds = (List<Map<String, Object>>) tune.get("rounds");
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> first = (List<Map<String, Object>>) rounds.get(0).get("candidates");
    assertThat(first).hasSize(4);
    assertThat(first.get(3).get("label"))
        .isEqualTo("random-drop(keep=200)"); // infeasible: ranked last
    assertThat(first.get(3).get("feasible")).isEqualTo(false);
    assertThat(out.resolve("confirm/report.html")).exists();
    // the chosen plan as a compress config that the compress job loads
    JobConfig compress =
        ConfigLoader.load(
            out.resolve("tuned.yaml"),
            List.of(
                "input.path=" + dir,
                "input.prompt=describe the image.",
                "output.path=" + dir.resolve("c")));
    assertThat(ConfigLoader.canonicalJson(compress.plan())).isEqualTo(r.planJson());
    assertThat(log.toString(StandardCharsets.UTF_8))
        .contains("round 1, 2 candidates on 4 images")
        .contains("chose");
  }

  @Test
  void holdoutMustNotOverlapValidation() {
    assertThatThrownBy(() -> config(dir.resolve("x"), "holdout.split=val"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("holdout");
    assertThatThrownBy(() -> config(dir.resolve("x"), "halving.maxImages=10"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("halving.maxImages");
    assertThatThrownBy(() -> config(dir.resolve("x"), "objective=speed"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("objective");
    assertThatThrownBy(() -> config(dir.resolve("x"), "validation.split=dev"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("validation.split");
  }
}
