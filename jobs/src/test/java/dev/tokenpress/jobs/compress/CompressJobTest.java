package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.spark.RecordFailedException;
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
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The compress job's Spark plumbing on local[2], checked with DuckDB as an independent reader. */
class CompressJobTest {
  private final SparkSession spark = SparkTestSession.get();
  private final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
  private final PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);

  static JobConfig config(Path corpus, Path out, String... sets) {
    List<String> all =
        new ArrayList<>(
            List.of(
                "input.format=directory",
                "input.path=" + corpus,
                "input.glob=*.png",
                "input.prompt=describe the image.",
                "model.bundle=test-bundle",
                "output.path=" + out,
                "output.mode=resume",
                "run.progressIntervalSeconds=1",
                "output.rowsPerTask=4"));
    all.addAll(Arrays.asList(sets));
    return ConfigLoader.load(null, all);
  }

  static List<String> writeCorpus(Path dir, int n) {
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String id = (i % 2 == 0 ? "a/" : "b/c/") + String.format("img-%03d.png", i);
      TestImages.write(dir.resolve(id), TestImages.png(24 + i % 5, 20 + i % 3, i));
      ids.add(id);
    }
    return ids;
  }

  @Test
  void writesOneRowPerInputAndKvThatRoundTrips(@TempDir Path tmp) throws IOException {
    Path corpus = tmp.resolve("corpus");
    List<String> ids = writeCorpus(corpus, 12);
    TestImages.write(
        corpus.resolve("a/notes.txt"), "not matched by the glob".getBytes(StandardCharsets.UTF_8));
    Path out = tmp.resolve("out");
    boolean hadTsType = spark.conf().contains("spark.sql.parquet.outputTimestampType");

    RunSummary s = CompressJob.run(spark, config(corpus, out), new TestProcessorFactory(), log);

    // The job's own session settings are restored afterwards.
    assertThat(spark.conf().contains("spark.sql.parquet.outputTimestampType")).isEqualTo(hadTsType);
    assertThat(s.inputs()).isEqualTo(12);
    assertThat(s.ok()).isEqualTo(12);
    assertThat(s.errors()).isZero();
    assertThat(s.kvRows()).isEqualTo(36);
    assertThat(out.resolve("outputs/_SUCCESS")).exists();
    assertThat(out.resolve("kv_cache/_SUCCESS")).exists();
    try (DuckDb db = new DuckDb()) {
      List<Map<String, Object>> rows =
          db.query(
              "SELECT id, status, answer, plan_hash, model_sha256, run_id, flops.total AS flops_total, "
                  + "len(answer_token_ids) AS ntok, stages[1].tokens_out AS kept FROM "
                  + DuckDb.outputs(out)
                  + " ORDER BY id");
      assertThat(rows).extracting(r -> r.get("id")).containsExactlyElementsOf(new TreeSet<>(ids));
      assertThat(rows)
          .allSatisfy(
              r -> {
                assertThat(r.get("status")).isEqualTo("ok");
                assertThat(r.get("model_sha256")).isEqualTo("test-model-sha256");
                assertThat(r.get("run_id")).isEqualTo(s.runId());
                assertThat(r.get("flops_total")).isEqualTo(3300L);
                assertThat(r.get("kept")).isEqualTo(8);
              });
      // Answers equal what the processor returns for the same input.
      var direct =
          new TestProcessorFactory()
              .create(
                  new dev.tokenpress.spark.ProcessorSpec(
                      "test-bundle", 32, 0, 1 << 24, 1, KvPrecision.FP16),
                  1);
      for (Map<String, Object> r : rows) {
        String id = (String) r.get("id");
        byte[] bytes = Files.readAllBytes(corpus.resolve(id));
        String answer =
            direct
                .process(
                    new dev.tokenpress.spark.InputRecord(id, id, bytes, "p", null),
                    dev.tokenpress.operators.api.CompressionPlan.empty())
                .answer();
        assertThat(r.get("answer")).as(id).isEqualTo(answer);
        assertThat(((Number) r.get("ntok")).intValue()).isEqualTo(answer.length());
      }
      // KV rows: one per (id, layer, chunk); tensors byte-identical to the processor's cache.
      assertThat(db.scalarLong("SELECT count(*) FROM " + DuckDb.kv(out))).isEqualTo(36);
      assertThat(db.scalarLong("SELECT count(DISTINCT (id, layer, chunk)) FROM " + DuckDb.kv(out)))
          .isEqualTo(36);
      for (String id : ids.subList(0, 4)) {
        KvCache cache = TestProcessorFactory.kv(id, KvPrecision.FP16);
        List<KvChunk> expected = new ArrayList<>(cache.layer(0).chunks());
        expected.addAll(cache.layer(1).chunks());
        List<Map<String, Object>> kv =
            db.query(
                "SELECT layer, chunk, precision, k.data AS kd, k.shape AS ks, "
                    + "k.dtype AS kt, k.layout AS kl, k.scales AS ksc, v.data AS vd, v.channel_scales AS vcs, entries, "
                    + "token_index, position, next_position FROM "
                    + DuckDb.kv(out)
                    + " WHERE id = '"
                    + id
                    + "' ORDER BY layer, chunk");
        assertThat(kv).hasSize(3);
        for (int i = 0; i < 3; i++) {
          KvChunk e = expected.get(i);
          Map<String, Object> r = kv.get(i);
          assertThat((byte[]) r.get("kd")).isEqualTo(e.k().data());
          assertThat((byte[]) r.get("vd")).isEqualTo(e.v().data());
          assertThat(ints(r.get("ks"))).containsExactly(e.k().shape());
          assertThat(r.get("kt")).isEqualTo(e.k().dtype());
          assertThat(r.get("kl")).isEqualTo(e.k().layout());
          assertThat(r.get("precision")).isEqualTo(e.precision().name());
          assertThat(floats(r.get("ksc"))).containsExactly(e.k().scales());
          assertThat(floats(r.get("vcs"))).containsExactly(e.v().channelScales());
          assertThat(ints(r.get("entries"))).containsExactly(e.entries());
          assertThat(ints(r.get("token_index"))).containsExactly(e.tokenIndex());
          assertThat(ints(r.get("position"))).containsExactly(e.position());
          assertThat(r.get("next_position")).isEqualTo(20);
        }
        assertThat(kv)
            .extracting(r -> r.get("kt"))
            .containsExactly("float16", "uint4x2", "uint2x4");
      }
      // Parquet physical layout: zstd everywhere, no dictionary on tensor bytes, micros timestamps.
      List<Map<String, Object>> meta =
          db.query(
              "SELECT DISTINCT path_in_schema, compression, encodings FROM parquet_metadata('"
                  + out.resolve("kv_cache")
                  + "/*/*.parquet')");
      assertThat(meta).allSatisfy(m -> assertThat(m.get("compression")).isEqualTo("ZSTD"));
      assertThat(meta)
          .filteredOn(m -> m.get("path_in_schema").toString().matches("(k|v), data"))
          .isNotEmpty()
          .allSatisfy(m -> assertThat(m.get("encodings").toString()).doesNotContain("DICTIONARY"));
      List<Map<String, Object>> ts =
          db.query(
              "SELECT DISTINCT logical_type, converted_type FROM parquet_schema('"
                  + out.resolve("outputs")
                  + "/*.parquet') WHERE name = 'created_at'");
      assertThat(ts.toString()).contains("MICROS");
    }
    String runJson = Files.readString(out.resolve("_run.json"));
    assertThat(runJson)
        .contains(
            "\"status\" : \"succeeded\"",
            "\"model_sha256\" : \"test-model-sha256\"",
            "\"ok\" : 12");
    assertThat(logBytes.toString(StandardCharsets.UTF_8))
        .contains("[tokenpress] done: 12 processed (12 ok, 0 error)");
  }

  @Test
  void brokenFilesBecomeErrorRowsAndTheRestSucceed(@TempDir Path tmp) {
    Path corpus = tmp.resolve("corpus");
    List<String> ids = writeCorpus(corpus, 36);
    Map<String, String> broken =
        Map.of(
            "a/img-000.png", "truncated",
            "b/c/img-001.png", "zero-byte",
            "a/img-002.png", "not-an-image",
            "b/c/img-003.png", "over-pixel-limit");
    TestImages.write(
        corpus.resolve("a/img-000.png"), TestImages.truncated(TestImages.png(64, 64, 7)));
    TestImages.write(corpus.resolve("b/c/img-001.png"), new byte[0]);
    TestImages.write(
        corpus.resolve("a/img-002.png"), "GIF? no, just text".getBytes(StandardCharsets.UTF_8));
    TestImages.write(corpus.resolve("b/c/img-003.png"), TestImages.png(200, 100, 3));
    Path out = tmp.resolve("out");

    RunSummary s =
        CompressJob.run(
            spark, config(corpus, out, "model.maxPixels=10000"), new TestProcessorFactory(), log);

    assertThat(s.processed()).isEqualTo(36);
    assertThat(s.errors()).isEqualTo(4);
    assertThat(s.errorClasses().values().stream().mapToLong(Long::longValue).sum()).isEqualTo(4);
    try (DuckDb db = new DuckDb()) {
      List<Map<String, Object>> errors =
          db.query(
              "SELECT id, error.class AS cls, error.message AS msg FROM "
                  + DuckDb.outputs(out)
                  + " WHERE status = 'error' ORDER BY id");
      // The summary's per-class counts (tallied by the write job) equal what the output holds.
      Map<String, Long> byClass = new java.util.TreeMap<>();
      errors.forEach(r -> byClass.merge((String) r.get("cls"), 1L, Long::sum));
      assertThat(new java.util.TreeMap<>(s.errorClasses())).isEqualTo(byClass);
      assertThat(errors)
          .extracting(r -> r.get("id"))
          .containsExactlyInAnyOrderElementsOf(broken.keySet());
      assertThat(errors).allSatisfy(r -> assertThat((String) r.get("msg")).isNotBlank());
      Map<String, String> classById =
          errors.stream()
              .collect(Collectors.toMap(r -> (String) r.get("id"), r -> (String) r.get("cls")));
      assertThat(classById.get("b/c/img-001.png"))
          .isEqualTo("dev.tokenpress.spark.EmptyInputException");
      assertThat(
              db.scalarLong("SELECT count(*) FROM " + DuckDb.outputs(out) + " WHERE status = 'ok'"))
          .isEqualTo(32);
      assertThat(
              db.scalarLong(
                  "SELECT count(*) FROM "
                      + DuckDb.outputs(out)
                      + " WHERE status = 'ok' AND error IS NULL"))
          .isEqualTo(32);
      assertThat(db.scalarLong("SELECT count(DISTINCT id) FROM " + DuckDb.kv(out))).isEqualTo(32);
    }
    assertThat(ids).hasSize(36);
  }

  @Test
  void failFastFailsTheJobOnTheFirstBrokenRecord(@TempDir Path tmp) {
    Path corpus = tmp.resolve("corpus");
    writeCorpus(corpus, 6);
    TestImages.write(corpus.resolve("a/img-002.png"), new byte[0]);
    JobConfig c = config(corpus, tmp.resolve("out"), "run.failFast=true");

    assertThatThrownBy(() -> CompressJob.run(spark, c, new TestProcessorFactory(), log))
        .hasStackTraceContaining(RecordFailedException.class.getName())
        .hasStackTraceContaining("a/img-002.png");
  }

  @Test
  void resumeAfterAnInjectedCrashEndsWithEveryIdExactlyOnce(@TempDir Path tmp) throws IOException {
    Path corpus = tmp.resolve("corpus");
    List<String> ids = writeCorpus(corpus, 40);
    Path out = tmp.resolve("out");
    JobConfig c = config(corpus, out, "output.batchRows=10");
    // Crash on one id: its batch fails, other batches may have committed before it.
    String victim = ids.get(17);
    var pool =
        dev.tokenpress.spark.ExecutorRuntimes.workers(
            2); // the pool the job's tasks use in local[2]

    assertThatThrownBy(() -> CompressJob.run(spark, c, new TestProcessorFactory(victim, 0), log))
        .hasStackTraceContaining("injected crash at " + victim);
    long committedAfterCrash;
    try (DuckDb db = new DuckDb()) {
      committedAfterCrash =
          Files.exists(out.resolve("outputs"))
                  && Files.list(out.resolve("outputs"))
                      .anyMatch(p -> p.toString().endsWith(".parquet"))
              ? db.scalarLong("SELECT count(*) FROM " + DuckDb.outputs(out))
              : 0;
    }
    assertThat(committedAfterCrash).isLessThan(40);
    // The failed batch's task attempts and job were aborted: no staging or temporary files remain.
    try (var walk = Files.walk(out)) {
      assertThat(walk.map(p -> out.relativize(p).toString()))
          .noneMatch(p -> p.contains(".spark-staging") || p.contains("_temporary"));
    }
    assertThat(Files.readString(out.resolve("_run.json"))).contains("\"status\" : \"failed\"");
    // The failed tasks returned every place in flight of the shared inference pool (2 threads, 4
    // places).
    assertThat(dev.tokenpress.spark.ExecutorRuntimes.workers(2)).isSameAs(pool);
    assertThat(pool.freePermits()).isEqualTo(4);

    RunSummary s = CompressJob.run(spark, c, new TestProcessorFactory(), log);

    assertThat(s.alreadyCommitted()).isEqualTo(committedAfterCrash);
    assertThat(s.processed()).isEqualTo(40 - committedAfterCrash);
    try (DuckDb db = new DuckDb()) {
      assertThat(db.scalarLong("SELECT count(*) FROM " + DuckDb.outputs(out))).isEqualTo(40);
      assertThat(db.scalarLong("SELECT count(DISTINCT id) FROM " + DuckDb.outputs(out)))
          .isEqualTo(40);
      assertThat(db.scalarLong("SELECT count(*) FROM " + DuckDb.kv(out))).isEqualTo(120);
      assertThat(db.scalarLong("SELECT count(DISTINCT (id, layer, chunk)) FROM " + DuckDb.kv(out)))
          .isEqualTo(120);
      // Every KV batch belongs to a committed outputs batch.
      Set<Object> outBatches =
          db.query("SELECT DISTINCT batch_id FROM " + DuckDb.outputs(out)).stream()
              .map(r -> r.get("batch_id"))
              .collect(Collectors.toSet());
      Set<Object> kvBatches =
          db.query("SELECT DISTINCT batch_id FROM " + DuckDb.kv(out)).stream()
              .map(r -> r.get("batch_id"))
              .collect(Collectors.toSet());
      assertThat(outBatches).containsAll(kvBatches);
    }
    // A third run has nothing left to do.
    RunSummary again = CompressJob.run(spark, c, new TestProcessorFactory(), log);
    assertThat(again.processed()).isZero();
    assertThat(again.alreadyCommitted()).isEqualTo(40);
  }

  @Test
  void withoutKvWritesOnlyOutputs(@TempDir Path tmp) throws IOException {
    Path corpus = tmp.resolve("corpus");
    List<String> ids = writeCorpus(corpus, 7);
    Path out = tmp.resolve("out");

    RunSummary s =
        CompressJob.run(
            spark, config(corpus, out, "kv.enabled=false"), new TestProcessorFactory(), log);

    assertThat(s.ok()).isEqualTo(7);
    assertThat(s.kvRows()).isZero();
    try (var kv = Files.walk(out)) {
      assertThat(kv.map(p -> out.relativize(p).toString()))
          .noneMatch(p -> p.endsWith(".parquet") && p.startsWith("kv_cache"));
    }
    try (DuckDb db = new DuckDb()) {
      assertThat(db.query("SELECT id FROM " + DuckDb.outputs(out) + " ORDER BY id"))
          .extracting(r -> r.get("id"))
          .containsExactlyElementsOf(new TreeSet<>(ids));
    }
  }

  @Test
  void resumeRefusesAnotherPlan(@TempDir Path tmp) {
    Path corpus = tmp.resolve("corpus");
    writeCorpus(corpus, 3);
    Path out = tmp.resolve("out");
    CompressJob.run(spark, config(corpus, out), new TestProcessorFactory(), log);

    JobConfig other = config(corpus, out, "plan=[{op: fastv, layer: 2, drop_ratio: 0.5}]");
    assertThatThrownBy(() -> CompressJob.run(spark, other, new TestProcessorFactory(), log))
        .hasMessageContaining("output.mode")
        .hasMessageContaining("plan_hash");
  }

  private static float[] floats(Object array) {
    Object[] a = (Object[]) array;
    float[] f = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      f[i] = ((Number) a[i]).floatValue();
    }
    return f;
  }

  private static int[] ints(Object array) {
    Object[] a = (Object[]) array;
    return Arrays.stream(a).mapToInt(o -> ((Number) o).intValue()).toArray();
  }
}
