package dev.tokenpress.evaluate.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.spark.EngineInfo;
import dev.tokenpress.spark.ExecutorRuntimes;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.RecordResult;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The evaluate job end to end in local[2] on the bundled model: three plans, one model load. */
class EvaluateJobTest {
  private static final Path PROJECT = Path.of(System.getProperty("tokenpress.project.dir", ".."));
  private static SparkSession spark;

  @TempDir Path dir;

  @BeforeAll
  static void session() {
    spark = LocalSpark.session("evaluate-test");
  }

  @AfterAll
  static void stop() {
    ExecutorRuntimes.closeAll();
  }

  private EvaluateConfig config(Path out, String... extra) {
    List<String> sets =
        new java.util.ArrayList<>(
            List.of(
                "model.bundle=" + PROJECT.resolve("models/tiny-llava-shapes"),
                "model.maxNewTokens=16",
                "sample.images=3",
                "sample.kinds=[exists, count, caption]",
                "plans=[[{op: random-drop, keep: 64}], [{op: vtc-cls, keep: 64, layers: \"0..0\"}]]",
                "output.path=" + out,
                "output.overwrite=false",
                "report.resamples=100"));
    sets.addAll(List.of(extra));
    return EvaluateConfig.load(null, sets);
  }

  @Test
  void threePlansOnOneModelLoadWithResultsSummaryAndReport() throws Exception {
    ExecutorRuntimes.closeAll();
    Path out = dir.resolve("eval");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    EvaluateJob.Result r =
        EvaluateJob.run(
            spark,
            config(out),
            VlmProcessorFactory.INSTANCE,
            new PrintStream(log, true, StandardCharsets.UTF_8));

    assertThat(ExecutorRuntimes.size()).as("one model load for every plan").isEqualTo(1);
    assertThat(r.questions()).as("2 exists + count + caption per image").isEqualTo(3 * 3 * 4);
    assertThat(r.errors()).isZero();
    assertThat(spark.read().parquet(out.resolve("results").toString()).count()).isEqualTo(36);
    assertThat(
            spark
                .read()
                .parquet(out.resolve("results").toString())
                .where("plan_index = 0 AND visual_tokens_kept = 256")
                .count())
        .isEqualTo(12);

    @SuppressWarnings("unchecked")
    Map<String, Object> summary =
        (Map<String, Object>) Json.parse(Files.readString(out.resolve("summary.json")));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> plans = (List<Map<String, Object>>) summary.get("plans");
    assertThat(plans)
        .extracting(p -> p.get("label"))
        .containsExactly("empty", "random-drop(keep=64)", "vtc-cls(keep=64,layers=0..0)");
    assertThat(plans.get(0).get("loss")).isNull();
    assertThat(plans.get(1).get("loss")).isNotNull();
    assertThat(((Number) plans.get(1).get("mean_visual_tokens_kept")).doubleValue())
        .isEqualTo(64.0);
    assertThat(((Number) plans.get(0).get("flops_ratio")).doubleValue()).isEqualTo(1.0);
    assertThat(((Number) plans.get(2).get("flops_ratio")).doubleValue()).isLessThan(0.8);
    assertThat(plans.get(0))
        .containsKeys("caption_object_f1", "chair", "mean_kv_bytes", "ms_per_question", "pope");
    @SuppressWarnings("unchecked")
    Map<String, Object> pope = (Map<String, Object>) plans.get(0).get("pope");
    assertThat(((Number) pope.get("questions")).intValue())
        .isEqualTo(6); // 2 exists questions x 3 images
    assertThat(((Number) pope.get("yes_ratio")).doubleValue()).isBetween(0.0, 1.0);
    String html = Files.readString(out.resolve("report.html"));
    assertThat(html).contains("random-drop(keep=64)").contains("echarts");
    assertThat(log.toString(StandardCharsets.UTF_8))
        .contains("3 plans x 3 images")
        .contains(": 36 (plan, question) evaluations")
        .contains("[tokenpress] 36/36 questions (100.0%)")
        .contains("report:");

    // an earlier evaluation is replaced only when asked; foreign content is never touched
    assertThatThrownBy(
            () ->
                EvaluateJob.run(
                    spark,
                    config(out),
                    VlmProcessorFactory.INSTANCE,
                    new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("output.overwrite");
    Files.writeString(out.resolve("notes.txt"), "mine");
    assertThatThrownBy(
            () ->
                EvaluateJob.run(
                    spark,
                    config(out, "output.overwrite=true"),
                    VlmProcessorFactory.INSTANCE,
                    new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("notes.txt");
    assertThat(out.resolve("notes.txt")).hasContent("mine");
    assertThat(out.resolve("summary.json")).exists();
  }

  /**
   * The production processor without its {@code processImage}: every pair through {@code process},
   * one by one.
   */
  enum OneByOne implements ProcessorFactory {
    INSTANCE;

    @Override
    public RecordProcessor create(ProcessorSpec spec, int intraOpThreads) {
      RecordProcessor p = VlmProcessorFactory.INSTANCE.create(spec, intraOpThreads);
      return new RecordProcessor() {
        @Override
        public RecordResult process(InputRecord record, CompressionPlan plan) {
          return p.process(record, plan);
        }

        @Override
        public EngineInfo engineInfo() {
          return p.engineInfo();
        }

        @Override
        public void close() {
          p.close();
        }
      };
    }

    @Override
    public EngineInfo describe(ProcessorSpec spec) {
      return VlmProcessorFactory.INSTANCE.describe(spec);
    }

    @Override
    public void checkPlan(ProcessorSpec spec, CompressionPlan plan) {
      VlmProcessorFactory.INSTANCE.checkPlan(spec, plan);
    }
  }

  @Test
  void sharedWorkPerImageGivesTheRowsOfOneByOneRuns() throws Exception {
    String plans =
        "plans=[[], [{op: random-drop, keep: 64}], [{op: vtc-cls, keep: 64, layers: \"0..0\"}], "
            + "[{op: fastv, layer: 2, keep: 64}], [{op: tome, r: 64}], [{op: zipvl, heads: per_kv_head}]]";
    Path shared = dir.resolve("shared");
    Path alone = dir.resolve("alone");
    PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    EvaluateJob.run(spark, config(shared, plans), VlmProcessorFactory.INSTANCE, quiet);
    EvaluateJob.run(spark, config(alone, plans), OneByOne.INSTANCE, quiet);
    String cols =
        "plan_index, question_id, answer, correct, visual_tokens_kept, flops_vision, flops_prefill, "
            + "flops_decode, generated_tokens, kv_bytes, error, important_share";
    List<Row> a =
        spark
            .read()
            .parquet(shared.resolve("results").toString())
            .selectExpr(cols.split(", "))
            .orderBy("plan_index", "question_id")
            .collectAsList();
    List<Row> b =
        spark
            .read()
            .parquet(alone.resolve("results").toString())
            .selectExpr(cols.split(", "))
            .orderBy("plan_index", "question_id")
            .collectAsList();
    assertThat(a).hasSize(6 * 3 * 4).containsExactlyElementsOf(b);
    assertThat(spark.read().parquet(shared.resolve("results").toString()).where("ms > 0").count())
        .isEqualTo(72);
    // ZipVL's share of (token, KV head) pairs at 4 bits, per LM layer, in the rows and the summary
    for (Row r : a) {
      assertThat(r.isNullAt(11))
          .as("important_share of plan %d", r.getInt(0))
          .isEqualTo(r.getInt(0) != 5);
    }
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> sums =
        (List<Map<String, Object>>)
            ((Map<String, Object>) Json.parse(Files.readString(shared.resolve("summary.json"))))
                .get("plans");
    assertThat(sums.get(0)).doesNotContainKey("mean_important_share_per_layer");
    @SuppressWarnings("unchecked")
    List<Number> share = (List<Number>) sums.get(5).get("mean_important_share_per_layer");
    assertThat(share)
        .hasSize(4)
        .allSatisfy(x -> assertThat(x.doubleValue()).isGreaterThan(0).isLessThanOrEqualTo(1));
  }

  @Test
  void configErrorsNameTheField() {
    Path out = dir.resolve("x");
    assertThatThrownBy(() -> config(out, "sample.split=dev"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("sample.split");
    assertThatThrownBy(() -> config(out, "report.progressIntervalSeconds=0"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("report.progressIntervalSeconds");
    assertThatThrownBy(() -> config(out, "sample.kinds=[exists, colour]"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("colour");
    assertThatThrownBy(() -> config(out, "plans=[{op: fastv}]"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("plans[0]");
    assertThatThrownBy(() -> config(out, "grid.op=nope"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("grid.op");
    assertThatThrownBy(() -> config(out, "sample.bogus=1"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("bogus");
  }

  @Test
  void gridExpandsToOnePlanPerCombinationAfterTheListedPlans() {
    EvaluateConfig c =
        config(
            dir.resolve("g"),
            "grid.op=vtc-cls",
            "grid.values.keep=[32, 64]",
            "grid.values.layers=[\"0..0\", \"1..2\"]");
    assertThat(c.labelledPlans())
        .extracting(EvaluateConfig.LabelledPlan::label)
        .containsExactly(
            "empty",
            "random-drop(keep=64)",
            "vtc-cls(keep=64,layers=0..0)",
            "vtc-cls(keep=32,layers=0..0)",
            "vtc-cls(keep=32,layers=1..2)",
            "vtc-cls(keep=64,layers=1..2)");
  }
}
