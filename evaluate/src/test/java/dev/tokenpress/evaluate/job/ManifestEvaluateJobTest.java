package dev.tokenpress.evaluate.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.datasets.Question;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.evaluate.eval.ShapesVqaSource;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.spark.ExecutorRuntimes;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The evaluate job over JSONL and Parquet manifests of rendered ShapesVQA images, in local[2] on
 * the bundled model.
 */
class ManifestEvaluateJobTest {
  private static final Path PROJECT = Path.of(System.getProperty("tokenpress.project.dir", ".."));
  private static final List<String> KINDS = List.of("exists", "count", "caption");
  private static final String PLANS = "plans=[[{op: vtc-cls, keep: 64, layers: \"0..0\"}]]";
  private static SparkSession spark;

  @TempDir Path dir;

  @BeforeAll
  static void session() {
    spark = LocalSpark.session("evaluate-manifest-test");
  }

  @AfterAll
  static void stop() {
    ExecutorRuntimes.closeAll();
  }

  private static EvaluateConfig config(Path out, String... extra) {
    List<String> sets =
        new ArrayList<>(
            List.of(
                "model.bundle=" + PROJECT.resolve("models/tiny-llava-shapes"),
                "model.maxNewTokens=16",
                PLANS,
                "output.path=" + out,
                "report.resamples=100"));
    sets.addAll(List.of(extra));
    return EvaluateConfig.load(null, sets);
  }

  private static EvaluateJob.Result run(EvaluateConfig c) {
    return run(c, new ByteArrayOutputStream());
  }

  private static EvaluateJob.Result run(EvaluateConfig c, ByteArrayOutputStream log) {
    return EvaluateJob.run(
        spark, c, VlmProcessorFactory.INSTANCE, new PrintStream(log, true, StandardCharsets.UTF_8));
  }

  /**
   * Renders ShapesVQA val images 0..n-1 to {@code imgs/} and writes one manifest line per question
   * of KINDS.
   */
  private Path jsonlManifest(int n) throws Exception {
    ShapesVqaSource data = new ShapesVqaSource(ShapesVqaSource.TEST_SEED, 128, "val");
    Files.createDirectories(dir.resolve("imgs"));
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Scene scene = data.scene(i);
      Files.write(dir.resolve("imgs/val-" + i + ".png"), ShapesVqaSource.png(scene));
      for (Question q : scene.questions()) {
        if (KINDS.contains(q.kind())) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("image", "imgs/val-" + i + ".png");
          m.put("question", q.question());
          m.put("answer", q.answer());
          m.put("id", q.id());
          m.put("kind", q.kind());
          m.put("image_id", scene.imageId());
          lines.add(Json.write(m));
        }
      }
    }
    Path manifest = dir.resolve("manifest.jsonl");
    Files.write(manifest, lines);
    return manifest;
  }

  private static List<Row> rows(Path out) {
    return spark
        .read()
        .parquet(out.resolve("results").toString())
        .selectExpr(
            "plan_index",
            "image_id",
            "question_id",
            "kind",
            "expected",
            "answer",
            "correct",
            "visual_tokens_kept",
            "flops_vision",
            "flops_prefill",
            "flops_decode",
            "generated_tokens",
            "kv_bytes",
            "error")
        .orderBy("plan_index", "question_id")
        .collectAsList();
  }

  @Test
  void jsonlManifestGivesTheRowsOfTheShapesVqaSplitAndSkipsPopeAndChair() throws Exception {
    Path manifest = jsonlManifest(2);
    Path fromManifest = dir.resolve("manifest-out");
    Path fromSplit = dir.resolve("split-out");
    EvaluateJob.Result m =
        run(config(fromManifest, "sample.split=null", "sample.manifest=" + manifest));
    run(
        config(
            fromSplit,
            "sample.split=val",
            "sample.images=2",
            "sample.kinds=[exists, count, caption]"));

    assertThat(m.errors()).isZero();
    assertThat(m.questions()).as("2 plans x 2 images x (2 exists + count + caption)").isEqualTo(16);
    List<Row> a = rows(fromManifest);
    assertThat(a).hasSize(16).containsExactlyElementsOf(rows(fromSplit));
    assertThat(a)
        .filteredOn(r -> r.getString(3).equals("caption"))
        .hasSize(4)
        .allMatch(r -> r.isNullAt(6));
    assertThat(a).filteredOn(r -> !r.getString(3).equals("caption")).noneMatch(r -> r.isNullAt(6));

    @SuppressWarnings("unchecked")
    Map<String, Object> summary =
        (Map<String, Object>) Json.parse(Files.readString(fromManifest.resolve("summary.json")));
    assertThat(summary.get("skipped").toString()).contains("POPE").contains("CHAIR");
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> plans = (List<Map<String, Object>>) summary.get("plans");
    assertThat(plans).hasSize(2);
    assertThat(plans.get(0)).doesNotContainKeys("pope", "chair", "caption_object_f1");
    @SuppressWarnings("unchecked")
    Map<String, Object> byKind = (Map<String, Object>) plans.get(0).get("accuracy_by_kind");
    assertThat(byKind).containsOnlyKeys("exists", "count");
    assertThat(Files.readString(fromManifest.resolve("report.html"))).contains("manifest");
  }

  @Test
  void parquetManifestWithImageBytesDerivesIdsAndKindsAndAllowsOneImageLimit() throws Exception {
    ShapesVqaSource data = new ShapesVqaSource(ShapesVqaSource.TEST_SEED, 128, "val");
    List<Row> rows = new ArrayList<>();
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      Scene scene = data.scene(i);
      byte[] png = ShapesVqaSource.png(scene);
      for (Question q : scene.questions()) {
        if (q.kind().equals("count")) {
          rows.add(RowFactory.create(png, q.question(), q.answer()));
          if (i == 0) {
            expected.add(q.answer());
          }
        }
      }
    }
    StructType schema =
        new StructType()
            .add("image", DataTypes.BinaryType)
            .add("question", DataTypes.StringType)
            .add("answer", DataTypes.StringType);
    Path manifest = dir.resolve("manifest.parquet");
    spark.createDataFrame(rows, schema).coalesce(1).write().parquet(manifest.toString());

    Path out = dir.resolve("parquet-out");
    EvaluateJob.Result r =
        run(config(out, "sample.split=null", "sample.manifest=" + manifest, "sample.images=1"));
    assertThat(r.errors()).isZero();
    List<Row> got = rows(out);
    assertThat(got).hasSize(2 * expected.size());
    assertThat(got)
        .allMatch(x -> x.getString(3).equals("qa"))
        .allMatch(x -> x.getString(1).startsWith("sha256:") && x.getString(1).length() == 7 + 16)
        .allMatch(x -> x.getString(2).equals(x.getString(1) + "#0")) // one count question per image
        .allMatch(x -> !x.isNullAt(6));
    assertThat(got)
        .extracting(x -> x.getString(4))
        .containsExactlyElementsOf(List.of(expected.get(0), expected.get(0)));
    @SuppressWarnings("unchecked")
    Map<String, Object> summary =
        (Map<String, Object>) Json.parse(Files.readString(out.resolve("summary.json")));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> plans = (List<Map<String, Object>>) summary.get("plans");
    assertThat((Map<String, Object>) plans.get(0).get("accuracy_by_kind")).containsOnlyKeys("qa");
  }

  @Test
  void corruptAndMissingImagesGiveErrorRowsNotADeadJob() throws Exception {
    Path manifest = jsonlManifest(1);
    Files.write(
        dir.resolve("imgs/corrupt.png"), "not a png at all".getBytes(StandardCharsets.UTF_8));
    Files.writeString(
        manifest,
        Files.readString(manifest)
            + "{\"image\": \"imgs/corrupt.png\", \"question\": \"How many shapes?\", \"answer\": \"2\"}\n"
            + "{\"image\": \"imgs/missing.png\", \"question\": \"How many shapes?\", \"answer\": \"3\", \"id\": \"m1\"}\n");
    Path out = dir.resolve("bad-out");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    EvaluateJob.Result r =
        run(config(out, "sample.split=null", "sample.manifest=" + manifest), log);
    assertThat(r.errors()).as("2 plans x 2 broken images").isEqualTo(4);
    // the progress total comes from the manifest's rows; error rows count as done and as errors
    long total = r.questions();
    assertThat(log.toString(StandardCharsets.UTF_8))
        .contains(": " + total + " (plan, question) evaluations")
        .containsPattern(
            "\\[tokenpress\\] " + total + "/" + total + " questions \\(100\\.0%\\) .*\\| errors 4");
    List<Row> got = rows(out);
    assertThat(got)
        .filteredOn(x -> !x.isNullAt(13))
        .extracting(x -> x.getString(2))
        .containsExactlyInAnyOrder("imgs/corrupt.png#0", "imgs/corrupt.png#0", "m1", "m1");
    assertThat(got)
        .filteredOn(x -> x.getString(2).equals("m1"))
        .allMatch(x -> x.getString(13).contains("missing.png"));
    assertThat(got).filteredOn(x -> x.isNullAt(13)).hasSize(8).allMatch(x -> !x.isNullAt(5));
  }

  @Test
  void driverRejectsBadManifestsNamingTheFieldAndColumn() throws Exception {
    Path out = dir.resolve("x");
    assertThatThrownBy(() -> config(out, "sample.split=val", "sample.manifest=/tmp/m.jsonl"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("sample.manifest")
        .hasMessageContaining("split");
    Path noAnswer = dir.resolve("no-answer.jsonl");
    Files.writeString(noAnswer, "{\"image\": \"a.png\", \"question\": \"How many shapes?\"}\n");
    assertThatThrownBy(() -> run(config(out, "sample.split=null", "sample.manifest=" + noAnswer)))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("sample.manifest")
        .hasMessageContaining("no column 'answer'");
    assertThat(out).as("a bad manifest stops the job before the output is touched").doesNotExist();
    Path dup = dir.resolve("dup.jsonl");
    Files.writeString(
        dup,
        "{\"image\": \"a.png\", \"question\": \"q\", \"answer\": \"1\", \"id\": \"q1\"}\n"
            + "{\"image\": \"b.png\", \"question\": \"q\", \"answer\": \"1\", \"id\": \"q1\"}\n");
    assertThatThrownBy(
            () -> run(config(dir.resolve("y"), "sample.split=null", "sample.manifest=" + dup)))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("'q1' occurs twice");
    assertThatThrownBy(
            () ->
                run(
                    config(
                        dir.resolve("z"),
                        "sample.split=null",
                        "sample.manifest=" + dir.resolve("nope.jsonl"))))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("does not exist");
  }
}
