package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.KeptTokens;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.RecordResult;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DAMRO with sampled decoding through the compress job on the real runtime: the outlier indices
 * (kept map with hook BRANCH, score order) and the record seed reach Parquet, and the sampled
 * answers equal the runtime's direct ones for the same id and job seed.
 */
class DamroJobTest {
  static final String PLAN = "[{op: damro, decoding: sample, seed: 5}]";

  @Test
  void outlierIndicesAndRecordSeedsAreWrittenAndSamplingIsReproducible(@TempDir Path tmp)
      throws IOException {
    Path model = RealRuntimeEndToEndTest.project().resolve("models/tiny-llava-shapes");
    Path shapes = RealRuntimeEndToEndTest.project().resolve("datasets/sample/images/shapes");
    assumeTrue(
        Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    assumeTrue(Files.isDirectory(shapes), "skipped: no sample corpus at " + shapes);
    Path corpus = tmp.resolve("corpus");
    List<Path> pngs;
    try (Stream<Path> s = Files.list(shapes)) {
      pngs = s.sorted().limit(4).collect(Collectors.toList());
    }
    for (Path p : pngs) {
      Files.copy(p, Files.createDirectories(corpus).resolve(p.getFileName()));
    }
    Path out = tmp.resolve("out");
    JobConfig config =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=" + corpus,
                "model.bundle=" + model,
                "model.maxNewTokens=8",
                "model.seed=11",
                "plan=" + PLAN,
                "output.path=" + out,
                "output.mode=overwrite",
                "output.rowsPerTask=2"));
    RunSummary s =
        CompressJob.run(
            SparkTestSession.get(),
            config,
            VlmProcessorFactory.INSTANCE,
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertThat(s.errors()).isZero();
    PlanSpec plan = PlanSpec.of(config.plan());
    ProcessorSpec spec =
        new ProcessorSpec(
            model.toString(),
            8,
            11,
            config.model().maxPixels(),
            1,
            config.kv().dtype().precision());
    try (RecordProcessor direct = VlmProcessorFactory.INSTANCE.create(spec, 1);
        DuckDb db = new DuckDb()) {
      List<Map<String, Object>> rows =
          db.query(
              "SELECT id, answer, record_seed, "
                  + "list_filter(kept_maps, lambda m: m.hook = 'BRANCH')[1].original AS outliers FROM "
                  + DuckDb.outputs(out)
                  + " ORDER BY id");
      assertThat(rows).hasSize(4);
      for (Map<String, Object> r : rows) {
        String id = (String) r.get("id");
        assertThat(((Number) r.get("record_seed")).longValue()).isEqualTo(Seeds.recordSeed(id, 11));
        RecordResult expected =
            direct.process(
                new InputRecord(
                    id, id, Files.readAllBytes(corpus.resolve(id)), "describe the image.", null),
                plan.plan());
        assertThat(r.get("answer")).as(id).isEqualTo(expected.answer());
        KeptTokens branch =
            expected.keptMaps().stream()
                .filter(k -> k.hook().equals("BRANCH"))
                .findFirst()
                .orElseThrow();
        int[] outliers =
            Arrays.stream((Object[]) r.get("outliers"))
                .mapToInt(o -> ((Number) o).intValue())
                .toArray();
        assertThat(outliers).hasSize(4).containsExactly(branch.original());
      }
    }
  }
}
