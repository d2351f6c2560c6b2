package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.spark.InputRecord;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Acceptance: the compress job with the real ONNX runtime over the bundled ShapesVQA sample and
 * public-domain photos on local[2], read back with DuckDB and compared with the runtime's direct
 * results for the same inputs and plan.
 */
class RealRuntimeEndToEndTest {
  static final String PLAN =
      "[{op: vtc-cls, keep: 32, layers: \"1..L-2\"}, {op: fastv, layer: 2, drop_ratio: 0.5}]";

  static Path project() {
    return Path.of(System.getProperty("tokenpress.project.dir", "..")).toAbsolutePath().normalize();
  }

  @Test
  void jobOutputMatchesTheRuntimeAnswersAndKvCachesExactly(@TempDir Path tmp) throws IOException {
    Path model = project().resolve("models/tiny-llava-shapes");
    Path images = project().resolve("datasets/sample/images");
    assumeTrue(
        Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    assumeTrue(Files.isDirectory(images), "skipped: no sample corpus at " + images);
    // 12 ShapesVQA scenes and the 4 photos keep the test short on a shared 2-core machine.
    Path corpus = tmp.resolve("corpus");
    List<String> ids = new ArrayList<>();
    try (Stream<Path> s = Files.walk(images)) {
      for (Path p : s.filter(Files::isRegularFile).sorted().collect(Collectors.toList())) {
        String rel = images.relativize(p).toString();
        if (rel.startsWith("shapes/")
            && ids.stream().filter(i -> i.startsWith("shapes/")).count() >= 12) {
          continue;
        }
        TestImages.write(corpus.resolve(rel), Files.readAllBytes(p));
        ids.add(rel);
      }
    }
    Path out = tmp.resolve("out");
    JobConfig config =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=" + corpus,
                "model.bundle=" + model,
                "model.maxNewTokens=12",
                "plan=" + PLAN,
                "output.path=" + out,
                "output.mode=overwrite",
                "output.rowsPerTask=4",
                "run.progressIntervalSeconds=5"));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    SparkSession spark = SparkTestSession.get();

    RunSummary s =
        CompressJob.run(
            spark,
            config,
            VlmProcessorFactory.INSTANCE,
            new PrintStream(log, true, StandardCharsets.UTF_8));

    assertThat(s.processed()).isEqualTo(ids.size());
    assertThat(s.errors()).as(log.toString(StandardCharsets.UTF_8)).isZero();
    PlanSpec plan = PlanSpec.of(config.plan());
    ProcessorSpec spec =
        new ProcessorSpec(
            model.toString(),
            12,
            0,
            config.model().maxPixels(),
            1,
            config.kv().dtype().precision());
    try (RecordProcessor direct = VlmProcessorFactory.INSTANCE.create(spec, 1);
        DuckDb db = new DuckDb()) {
      List<Map<String, Object>> rows =
          db.query(
              "SELECT id, status, answer, answer_token_ids, plan_hash, model_sha256, "
                  + "kv_layers FROM "
                  + DuckDb.outputs(out)
                  + " ORDER BY id");
      assertThat(rows)
          .extracting(r -> r.get("id"))
          .containsExactlyElementsOf(ids.stream().sorted().toList());
      assertThat(db.scalarLong("SELECT count(DISTINCT id) FROM " + DuckDb.outputs(out)))
          .isEqualTo(ids.size());
      for (Map<String, Object> r : rows) {
        String id = (String) r.get("id");
        RecordResult expected =
            direct.process(
                new InputRecord(
                    id, id, Files.readAllBytes(corpus.resolve(id)), "describe the image.", null),
                plan.plan());
        assertThat(r.get("status")).isEqualTo("ok");
        assertThat(r.get("answer")).as(id).isEqualTo(expected.answer());
        assertThat(ints(r.get("answer_token_ids")))
            .as(id)
            .containsExactly(expected.answerTokenIds());
        assertThat(r.get("plan_hash")).isEqualTo(plan.hash());
        assertThat(r.get("model_sha256")).isEqualTo(direct.engineInfo().modelSha256());
        assertThat(r.get("kv_layers")).isEqualTo(expected.kvCache().numLayers());
        // Every stored chunk is byte-identical to the runtime's cache (fp16 data, metadata).
        List<Map<String, Object>> kv =
            db.query(
                "SELECT layer, chunk, k.data AS kd, v.data AS vd, k.shape AS ks, "
                    + "k.dtype AS kt, token_index, position FROM "
                    + DuckDb.kv(out)
                    + " WHERE id = '"
                    + id.replace("'", "''")
                    + "' ORDER BY layer, chunk");
        List<KvChunk> chunks = new ArrayList<>();
        List<int[]> at = new ArrayList<>();
        for (int l = 0; l < expected.kvCache().numLayers(); l++) {
          List<KvChunk> lc = expected.kvCache().layer(l).chunks();
          for (int c = 0; c < lc.size(); c++) {
            chunks.add(lc.get(c));
            at.add(new int[] {l, c});
          }
        }
        assertThat(kv).hasSize(chunks.size());
        for (int i = 0; i < chunks.size(); i++) {
          KvChunk e = chunks.get(i);
          Map<String, Object> row = kv.get(i);
          assertThat(row.get("layer")).isEqualTo(at.get(i)[0]);
          assertThat((byte[]) row.get("kd"))
              .as(id + " layer " + at.get(i)[0] + " k")
              .isEqualTo(e.k().data());
          assertThat((byte[]) row.get("vd"))
              .as(id + " layer " + at.get(i)[0] + " v")
              .isEqualTo(e.v().data());
          assertThat(ints(row.get("ks"))).containsExactly(e.k().shape());
          assertThat(row.get("kt")).isEqualTo("float16");
          assertThat(ints(row.get("token_index"))).containsExactly(e.tokenIndex());
          assertThat(ints(row.get("position"))).containsExactly(e.position());
        }
      }
      // FastV at layer 2 keeps fewer entries in layers >= 2 than in layers < 2: ragged KV.
      List<Map<String, Object>> lens =
          db.query(
              "SELECT layer, max(k.shape[1]) AS t FROM "
                  + DuckDb.kv(out)
                  + " GROUP BY layer ORDER BY layer");
      assertThat(((Number) lens.get(3).get("t")).intValue())
          .isLessThan(((Number) lens.get(0).get("t")).intValue());
    }
  }

  @Test
  void brokenFilesAreExactlyTheErrorRowsWithTheRuntimesTypedErrors(@TempDir Path tmp)
      throws IOException {
    Path model = project().resolve("models/tiny-llava-shapes");
    Path shapes = project().resolve("datasets/sample/images/shapes");
    assumeTrue(
        Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    assumeTrue(Files.isDirectory(shapes), "skipped: no sample corpus at " + shapes);
    Path corpus = tmp.resolve("corpus");
    List<Path> pngs;
    try (Stream<Path> s = Files.list(shapes)) {
      pngs = s.sorted().limit(36).collect(Collectors.toList());
    }
    for (Path p : pngs) {
      Files.copy(p, Files.createDirectories(corpus).resolve(p.getFileName()));
    }
    // 36 good files: the 32 sample scenes and 4 of them again under other names.
    for (int i = 0; pngs.size() + i < 36; i++) {
      Files.copy(pngs.get(i), corpus.resolve("dup-" + pngs.get(i).getFileName()));
    }
    // 4 of 40 files (10%) broken, one of each kind.
    byte[] good = Files.readAllBytes(pngs.get(0));
    Map<String, String> broken =
        Map.of(
            "broken-truncated.png",
            "truncated",
            "broken-empty.png",
            "zero-byte",
            "broken-text.png",
            "not an image",
            "broken-huge.png",
            "over the pixel limit");
    TestImages.write(corpus.resolve("broken-truncated.png"), Arrays.copyOf(good, good.length / 3));
    TestImages.write(corpus.resolve("broken-empty.png"), new byte[0]);
    TestImages.write(
        corpus.resolve("broken-text.png"), "this is not a PNG".getBytes(StandardCharsets.UTF_8));
    TestImages.write(corpus.resolve("broken-huge.png"), TestImages.png(300, 300, 1));
    Path out = tmp.resolve("out");
    JobConfig config =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=" + corpus,
                "input.glob=*.png",
                "model.bundle=" + model,
                "model.maxNewTokens=4",
                "model.maxPixels=40000",
                "output.path=" + out,
                "output.mode=overwrite",
                "output.rowsPerTask=8"));

    RunSummary s =
        CompressJob.run(
            SparkTestSession.get(),
            config,
            VlmProcessorFactory.INSTANCE,
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));

    assertThat(s.processed()).isEqualTo(40);
    assertThat(s.errors()).isEqualTo(4);
    try (DuckDb db = new DuckDb()) {
      List<Map<String, Object>> errors =
          db.query(
              "SELECT id, error.class AS cls, error.message AS msg FROM "
                  + DuckDb.outputs(out)
                  + " WHERE status = 'error' ORDER BY id");
      assertThat(errors)
          .extracting(r -> r.get("id"))
          .containsExactlyInAnyOrderElementsOf(broken.keySet());
      assertThat(errors).allSatisfy(r -> assertThat((String) r.get("msg")).isNotBlank());
      assertThat(
              db.scalarLong("SELECT count(*) FROM " + DuckDb.outputs(out) + " WHERE status = 'ok'"))
          .isEqualTo(36);
      assertThat(db.scalarLong("SELECT count(DISTINCT id) FROM " + DuckDb.kv(out))).isEqualTo(36);
    }
  }

  private static int[] ints(Object array) {
    return Arrays.stream((Object[]) array).mapToInt(o -> ((Number) o).intValue()).toArray();
  }
}
