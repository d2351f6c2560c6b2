package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.api.OperatorStat;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.RecordResult;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * VAR and CMAI composed with VTC-CLS in one plan of the compress job: every output row's {@code
 * operator_stats} holds what the runtime reports for the same record (sink dimensions, sinks and
 * selected pairs per layer, inhibited pairs).
 */
class AttentionSteeringJobTest {
  static final String PLAN =
      "[{op: vtc-cls, keep: 64, layers: \"0..0\"},"
          + " {op: var, tau: 4.25, sink_dims: [13, 25, 33]}, {op: cmai, threshold: 0.5}]";

  @Test
  void operatorStatsReachTheParquetOutput(@TempDir Path tmp) throws Exception {
    Path project = RealRuntimeEndToEndTest.project();
    Path model = project.resolve("models/tiny-llava-shapes");
    Path images = project.resolve("datasets/sample/images/shapes");
    assumeTrue(
        Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    assumeTrue(Files.isDirectory(images), "skipped: no sample corpus at " + images);
    Path corpus = tmp.resolve("corpus");
    List<String> ids = new ArrayList<>();
    try (Stream<Path> s = Files.list(images)) {
      for (Path p : s.filter(Files::isRegularFile).sorted().limit(4).toList()) {
        TestImages.write(corpus.resolve(p.getFileName().toString()), Files.readAllBytes(p));
        ids.add(p.getFileName().toString());
      }
    }
    Path out = tmp.resolve("out");
    JobConfig config =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=" + corpus,
                "model.bundle=" + model,
                "model.maxNewTokens=6",
                "plan=" + PLAN,
                "output.path=" + out,
                "output.mode=overwrite",
                "kv.enabled=false"));
    SparkSession spark = SparkTestSession.get();
    RunSummary summary =
        CompressJob.run(
            spark,
            config,
            VlmProcessorFactory.INSTANCE,
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertThat(summary.errors()).isZero();
    PlanSpec plan = PlanSpec.of(config.plan());
    ProcessorSpec spec =
        new ProcessorSpec(
            model.toString(), 6, 0, config.model().maxPixels(), 1, config.kv().dtype().precision());
    List<Row> rows =
        spark
            .read()
            .parquet(out.resolve("outputs").toString())
            .select("id", "operator_stats")
            .collectAsList();
    assertThat(rows).hasSize(ids.size());
    try (RecordProcessor direct = VlmProcessorFactory.INSTANCE.create(spec, 1)) {
      for (Row r : rows) {
        String id = r.getString(0);
        RecordResult expected =
            direct.process(
                new InputRecord(
                    id, id, Files.readAllBytes(corpus.resolve(id)), "describe the image.", null),
                plan.plan());
        List<OperatorStat> got = new ArrayList<>();
        for (Row s : r.<Row>getList(1)) {
          List<Long> v = s.getList(3);
          got.add(
              new OperatorStat(
                  s.getString(0),
                  s.getInt(1),
                  s.getString(2),
                  v.stream().mapToLong(Long::longValue).toArray()));
        }
        assertThat(got).as(id).containsExactlyElementsOf(expected.operatorStats());
        assertThat(got).as(id).contains(new OperatorStat("var", -1, "sink_dims", 13, 25, 33));
        assertThat(got.stream().map(OperatorStat::operator).distinct())
            .containsExactly("var", "cmai");
      }
    }
  }
}
