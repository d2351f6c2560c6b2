package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.spark.KvCacheReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Crash and fault injection: a driver JVM ({@link FaultInjectionMain}) is killed as under {@code
 * kill -9} at each step of the commit protocol, or a task fails and is retried; then a resume (in
 * this JVM) must leave each id exactly once in {@code outputs/} and each (id, layer, chunk) exactly
 * once in {@code kv_cache/}, every ok id's cache loadable with {@link KvCacheReader}, and nothing
 * that a reader's {@code **}{@code /*.parquet} glob trips over — checked with DuckDB, also right
 * after the crash.
 */
class FaultInjectionTest {
  static final int N = 30;
  static final int KV_ROWS_PER_ID = 3; // TestProcessorFactory's cache: 3 (layer, chunk) rows
  private final SparkSession spark = SparkTestSession.get();

  /**
   * Three batches of 10 ids; the driver dies at the given step of the given batch: during inference
   * (a record halts the JVM) before anything or after one batch committed, once tasks finished
   * (nothing committed), once the journal is written, between the two datasets' moves, after a
   * batch's commit, and in the final summary.
   */
  @ParameterizedTest(name = "driver killed at {0} #{1}")
  @CsvSource({
    "INFERENCE, 1",
    "INFERENCE, 2",
    "TASKS_FINISHED, 1",
    "JOURNAL_WRITTEN, 2",
    "KV_MOVED, 1",
    "KV_MOVED, 3",
    "BATCH_COMMITTED, 2",
    "SUMMARY, 1"
  })
  void resumeAfterADriverKillLeavesEveryIdExactlyOnce(
      String step, int occurrence, @TempDir Path tmp) throws Exception {
    Path corpus = tmp.resolve("corpus");
    List<String> ids = CompressJobTest.writeCorpus(corpus, N);
    Path out = tmp.resolve("out");
    List<String> sets = sets(corpus, out);
    String haltOn = "-";
    String probeStep = step;
    if (step.equals("INFERENCE")) {
      // A record of the occurrence-th batch (batches are chosen by id hash): find one by the job's
      // own rule.
      haltOn = idOfBatch(ids, occurrence - 1);
      probeStep = "-";
    }

    Child child = runChild(tmp, "local[2]", probeStep, occurrence, haltOn, "-", sets);

    assertThat(child.exit).as(child.log).isEqualTo(137);
    assertReadableByGlobs(out);
    try (Stream<Path> files = Files.walk(out)) {
      assertThat(files.map(p -> out.relativize(p).toString()))
          .noneMatch(p -> p.contains("_temporary") || p.contains(".spark-staging"));
    }

    ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
    RunSummary s =
        CompressJob.run(
            spark,
            CompressJobTest.config(corpus, out, "output.batchRows=10"),
            new TestProcessorFactory(),
            new PrintStream(logBytes, true, StandardCharsets.UTF_8));

    assertThat(s.alreadyCommitted() + s.processed()).isEqualTo(N);
    assertExactlyOnce(out, ids);
    assertThat(Files.exists(out.resolve(OutputLayout.STAGING))).isFalse();
    assertThat(
            Files.exists(out.resolve(OutputLayout.COMMITS))
                ? Files.list(out.resolve(OutputLayout.COMMITS)).count()
                : 0)
        .isZero();
    assertThat(Files.readString(out.resolve("_run.json"))).contains("\"status\" : \"succeeded\"");
    if (step.equals("JOURNAL_WRITTEN") || step.equals("KV_MOVED")) {
      // The dead run's journaled batch was completed by the resume, not reprocessed.
      assertThat(logBytes.toString(StandardCharsets.UTF_8))
          .contains("completed the commit of batches");
    }
  }

  /**
   * A journal whose staged files something else removed (here by hand, as a second run on the same
   * output would) cannot be completed: the resume rolls its batch back and processes its ids again.
   */
  @Test
  void aJournalWhoseStagedFilesWereRemovedIsRolledBack(@TempDir Path tmp) throws Exception {
    Path corpus = tmp.resolve("corpus");
    List<String> ids = CompressJobTest.writeCorpus(corpus, N);
    Path out = tmp.resolve("out");
    Child child = runChild(tmp, "local[2]", "KV_MOVED", 1, "-", "-", sets(corpus, out));
    assertThat(child.exit).as(child.log).isEqualTo(137);
    assertThat(
            Files.list(out.resolve("kv_cache"))
                .anyMatch(p -> p.getFileName().toString().startsWith("batch_id=")))
        .as("the first batch's KV is in place")
        .isTrue();
    try (Stream<Path> s = Files.walk(out.resolve(OutputLayout.STAGING))) {
      for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }

    ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
    RunSummary s =
        CompressJob.run(
            spark,
            CompressJobTest.config(corpus, out, "output.batchRows=10"),
            new TestProcessorFactory(),
            new PrintStream(logBytes, true, StandardCharsets.UTF_8));

    assertThat(logBytes.toString(StandardCharsets.UTF_8)).contains("rolled back batches");
    assertThat(s.alreadyCommitted()).isZero();
    assertThat(s.processed()).isEqualTo(N);
    assertExactlyOnce(out, ids);
  }

  /**
   * A task whose attempt fails is retried (local[2,3]: 3 attempts); its first attempt's files never
   * commit.
   */
  @Test
  void aFailedAndRetriedTaskCommitsOnce(@TempDir Path tmp) throws Exception {
    Path corpus = tmp.resolve("corpus");
    List<String> ids = CompressJobTest.writeCorpus(corpus, N);
    Path out = tmp.resolve("out");

    Child child = runChild(tmp, "local[2,3]", "-", 0, "-", ids.get(7), sets(corpus, out));

    assertThat(child.exit).as(child.log).isZero();
    assertThat(Files.exists(tmp.resolve("markers/failed-once")))
        .as("the task failed once")
        .isTrue();
    assertExactlyOnce(out, ids);
    assertReadableByGlobs(out);
  }

  private static List<String> sets(Path corpus, Path out) {
    return List.of(
        "input.format=directory",
        "input.path=" + corpus,
        "input.glob=*.png",
        "input.prompt=describe the image.",
        "model.bundle=test-bundle",
        "output.path=" + out,
        "output.mode=resume",
        "run.progressIntervalSeconds=1",
        "output.rowsPerTask=4",
        "output.batchRows=10");
  }

  /**
   * An id that the job's batching rule ({@code pmod(xxhash64(id), batches)}) puts in batch {@code
   * b}.
   */
  private String idOfBatch(List<String> ids, int b) {
    List<Row> rows =
        spark
            .createDataset(ids, org.apache.spark.sql.Encoders.STRING())
            .toDF("id")
            .where(
                org.apache
                    .spark
                    .sql
                    .functions
                    .pmod(
                        org.apache.spark.sql.functions.xxhash64(
                            org.apache.spark.sql.functions.col("id")),
                        org.apache.spark.sql.functions.lit(3))
                    .equalTo(b))
            .orderBy("id")
            .collectAsList();
    return rows.get(0).getString(0);
  }

  private static void assertReadableByGlobs(Path out) {
    if (!Files.exists(out)) {
      return;
    }
    try (DuckDb db = new DuckDb()) {
      // Every Parquet file below the output, whatever the dataset, is a complete Parquet file.
      if (hasParquet(out)) {
        db.query(
            "SELECT count(*) FROM read_parquet('" + out + "/**/*.parquet', union_by_name = true)");
      }
      if (hasParquet(out.resolve("kv_cache"))) {
        db.query("SELECT count(*) FROM read_parquet('" + out + "/kv_cache/**/*.parquet')");
      }
    }
  }

  private static boolean hasParquet(Path dir) {
    if (!Files.exists(dir)) {
      return false;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      return s.anyMatch(p -> p.toString().endsWith(".parquet"));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private void assertExactlyOnce(Path out, List<String> ids) {
    try (DuckDb db = new DuckDb()) {
      assertThat(db.scalarLong("SELECT count(*) FROM " + DuckDb.outputs(out))).isEqualTo(N);
      assertThat(db.query("SELECT DISTINCT id FROM " + DuckDb.outputs(out) + " ORDER BY id"))
          .extracting(r -> r.get("id"))
          .containsExactlyElementsOf(new TreeSet<>(ids));
      assertThat(db.scalarLong("SELECT count(*) FROM " + DuckDb.kv(out)))
          .isEqualTo((long) N * KV_ROWS_PER_ID);
      assertThat(db.scalarLong("SELECT count(DISTINCT (id, layer, chunk)) FROM " + DuckDb.kv(out)))
          .isEqualTo((long) N * KV_ROWS_PER_ID);
      // Every KV row belongs to the batch that committed its id's output row.
      assertThat(
              db.scalarLong(
                  "SELECT count(*) FROM "
                      + DuckDb.kv(out)
                      + " k JOIN "
                      + DuckDb.outputs(out)
                      + " o ON k.id = o.id WHERE k.batch_id <> o.batch_id"))
          .isZero();
    }
    // The KV reader loads every ok id's cache.
    Map<String, List<Row>> byId =
        spark.read().parquet(out.resolve("kv_cache").toString()).collectAsList().stream()
            .collect(Collectors.groupingBy(r -> r.getString(r.fieldIndex("id"))));
    List<Row> ok =
        spark
            .read()
            .parquet(out.resolve("outputs").toString())
            .where("status = 'ok'")
            .select("id")
            .collectAsList();
    assertThat(ok).hasSize(N);
    for (Row r : ok) {
      KvCache cache = KvCacheReader.fromRows(r.getString(0), byId.get(r.getString(0)));
      assertThat(cache.numLayers()).isPositive();
      assertThat(cache.storedBytes()).isPositive();
    }
  }

  private record Child(int exit, String log) {}

  /** Runs {@link FaultInjectionMain} in a new JVM with this JVM's class path and module options. */
  private static Child runChild(
      Path tmp,
      String master,
      String step,
      int occurrence,
      String haltOn,
      String failOnce,
      List<String> sets)
      throws Exception {
    Path markers = Files.createDirectories(tmp.resolve("markers"));
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens")
          || a.startsWith("--add-exports")
          || a.startsWith("-Djdk.reflect")
          || a.startsWith("-Dio.netty")
          || a.startsWith("-XX:+IgnoreUnrecognized")) {
        cmd.add(a);
      }
    }
    cmd.addAll(
        List.of(
            "-Xmx1g",
            "-Djava.awt.headless=true",
            "-cp",
            System.getProperty("java.class.path"),
            FaultInjectionMain.class.getName(),
            master,
            step,
            String.valueOf(occurrence),
            haltOn,
            failOnce,
            markers.toString()));
    cmd.addAll(sets);
    Path log = tmp.resolve("child.log");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(5, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new AssertionError(
          "fault-injection child did not end in 5 minutes:\n" + Files.readString(log));
    }
    return new Child(p.exitValue(), Files.readString(log));
  }
}
