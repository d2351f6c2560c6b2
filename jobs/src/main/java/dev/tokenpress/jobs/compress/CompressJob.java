package dev.tokenpress.jobs.compress;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.pmod;
import static org.apache.spark.sql.functions.xxhash64;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.InputFormat;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.jobs.config.OutputMode;
import dev.tokenpress.jobs.corpus.CorpusReader;
import dev.tokenpress.jobs.corpus.DirectoryListing;
import dev.tokenpress.jobs.launch.JobLauncher;
import dev.tokenpress.jobs.launch.Progress;
import dev.tokenpress.spark.EngineInfo;
import dev.tokenpress.spark.InferencePartitionFunction;
import dev.tokenpress.spark.NioLocalFileSystem;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RowProvenance;
import dev.tokenpress.spark.SerializableHadoopConf;
import java.io.PrintStream;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.LongAccumulator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code compress} job: runs the model with a compression plan over a corpus and writes {@code
 * outputs/} (one row per record) and {@code kv_cache/} (one row per record, layer and chunk) as
 * zstd Parquet through Spark's commit protocol.
 *
 * <h2>One inference pass, two datasets</h2>
 *
 * Work is split into batches of {@code output.batchRows} records. Each batch is one Spark job
 * ({@link BatchWrite}): its tasks run the partition function, which emits an {@code output} row per
 * record followed by its {@code kv} rows, and stream them into an {@code outputs/} and a {@code
 * kv_cache/} Parquet file in the attempt's staging directory; the driver then commits the batch
 * through a journal ({@link BatchCommit}), so a retried or speculative task, a killed executor or a
 * killed driver never duplicates or loses rows, and inference runs once per record.
 *
 * <h2>Output modes and resume</h2>
 *
 * {@code output.path} must be absent, an empty directory, or a directory tokenpress wrote ({@link
 * OutputLayout}); a file or another directory is refused in every mode, and {@code overwrite}
 * removes only tokenpress's own entries. A record is done when its {@code outputs/} row is
 * committed. A rerun first completes any batch whose journal a dead run left, removes the staging
 * area, compares the settings that shape output rows with {@code _tokenpress/dataset.json}
 * (refusing any difference), reads the committed ids and processes only the others.
 */
public final class CompressJob {
  private static final Logger LOG = LoggerFactory.getLogger(CompressJob.class);
  private static final String TS_TYPE = "spark.sql.parquet.outputTimestampType";

  /**
   * Application settings {@link #main} applies in local mode ({@code local[...]} masters) unless
   * the config ({@code spark.conf}) or {@code spark-submit --conf} sets them. {@code
   * spark.hadoop.fs.file.impl}: {@link NioLocalFileSystem}, Hadoop's local filesystem without a
   * {@code chmod} process per file created (only {@code file:} paths are affected). Not applied on
   * a cluster, where Hadoop may instantiate the {@code file:} filesystem from a class loader that
   * does not see the application jar; set it there explicitly if the output is on a local mount.
   */
  public static final Map<String, String> APP_DEFAULTS =
      Map.of("spark.hadoop." + NioLocalFileSystem.IMPL_KEY, NioLocalFileSystem.class.getName());

  /**
   * Session settings the job sets for its own writes and restores afterwards: timestamps as
   * microseconds (readable by every Parquet reader, unlike the legacy INT96 default).
   */
  private static final Map<String, String> SESSION_SETTINGS = Map.of(TS_TYPE, "TIMESTAMP_MICROS");

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /**
   * Column paths of kv_cache written without min/max statistics: the tensor bytes, and the
   * per-entry index lists ({@code entries}, {@code token_index}, {@code position}). The other
   * columns keep them ({@code id}, {@code layer}, {@code chunk}: a reader looking up one record's
   * cache skips row groups by them).
   */
  private static final List<String> PLAIN_KV_COLUMNS =
      List.of(
          "k.data",
          "v.data",
          "entries.list.element",
          "token_index.list.element",
          "position.list.element");

  /**
   * Row-group size of {@code kv_cache/} files. A Parquet writer holds its open row group in memory,
   * so this bounds a task's buffered KV bytes whatever its number of records (Parquet's 128 MB
   * default would let a task of 128 small-model records buffer all of them). A KV row (one layer
   * chunk of one record) is read whole anyway, so small row groups cost readers nothing.
   */
  static final long KV_ROW_GROUP_BYTES = 8L << 20;

  private CompressJob() {}

  /**
   * {@code spark-submit --class dev.tokenpress.jobs.compress.CompressJob tokenpress-jobs.jar
   * [--config FILE] [--set key=value]... [--print-config]}; no {@code --config} runs the embedded
   * {@code conf/local-demo.yaml}.
   */
  public static void main(String[] args) {
    JobLauncher.main(
        args,
        usage(),
        ConfigLoader::load,
        JobConfig::spark,
        c -> Preflight.beforeSession(c, RuntimeFactories.forConfig(c)),
        APP_DEFAULTS,
        "compress",
        (spark, c) -> run(spark, c));
  }

  static String usage() {
    return "usage: CompressJob [--config FILE.yaml] [--set key=value]... [--print-config]\n"
        + "  no --config: the embedded "
        + ConfigLoader.EMBEDDED_DEFAULT
        + "\n"
        + "  --set output.path=/tmp/out --set run.failFast=true --set spark.conf.spark.sql.shuffle.partitions=8";
  }

  /** Runs with the ONNX runtime named by the config's model bundle. */
  public static RunSummary run(SparkSession spark, JobConfig config) {
    return run(spark, config, RuntimeFactories.forConfig(config), System.out);
  }

  /** Runs with {@code factory} supplying the per-executor runtime; progress goes to {@code log}. */
  public static RunSummary run(
      SparkSession spark, JobConfig config, ProcessorFactory factory, PrintStream log) {
    return run(spark, config, factory, log, JobProbe.NONE);
  }

  /**
   * As {@link #run(SparkSession, JobConfig, ProcessorFactory, PrintStream)}, telling {@code probe}
   * each commit step.
   */
  static RunSummary run(
      SparkSession spark,
      JobConfig config,
      ProcessorFactory factory,
      PrintStream log,
      JobProbe probe) {
    Instant start = Instant.now();
    String runId =
        DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'", Locale.ROOT)
                .withZone(ZoneOffset.UTC)
                .format(start)
            + "-"
            + String.format("%06x", ThreadLocalRandom.current().nextInt(1 << 24));
    PlanSpec plan = PlanSpec.of(config.plan());
    String configJson = ConfigLoader.canonicalJson(config);
    String configHash = ConfigLoader.sha256(configJson);
    ProcessorSpec spec = RuntimeFactories.spec(config);
    EngineInfo engine = factory.describe(spec);
    Preflight.check(config, spec, plan, factory, spark.sparkContext().hadoopConfiguration());
    OutputLayout out = OutputLayout.open(spark, config.output().path());

    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("run_id", runId);
    manifest.put("status", "running");
    manifest.put("started_at", start.toString());
    manifest.put("output", out.root());
    manifest.put("plan_hash", plan.hash());
    manifest.set("plan", config.plan());
    manifest.put("config_hash", configHash);
    manifest.set("config", JSON.valueToTree(config));
    manifest.put("model_bundle", spec.bundle());
    manifest.put("model_sha256", engine.modelSha256());
    ObjectNode versions = manifest.putObject("versions");
    versions.put("tokenpress", versionOf(CompressJob.class));
    versions.put("engine", engine.engineVersion());
    versions.put("spark", spark.version());
    versions.put("java", System.getProperty("java.version"));
    versions.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
    versions.put("arch", System.getProperty("os.arch"));

    prepareOutput(out, config.output().mode(), log);
    checkSameSettings(out, datasetSettings(config, plan, engine));
    out.writeText(OutputLayout.RUNS + "/" + runId + ".json", pretty(manifest));
    Map<String, String> previousSettings = new LinkedHashMap<>();
    for (Map.Entry<String, String> e : SESSION_SETTINGS.entrySet()) {
      previousSettings.put(
          e.getKey(), spark.conf().contains(e.getKey()) ? spark.conf().get(e.getKey()) : null);
      spark.conf().set(e.getKey(), e.getValue());
    }
    Dataset<Row> pending = null;
    Progress progress = null;
    LongAccumulator okAcc = spark.sparkContext().longAccumulator("tokenpress.rows.ok");
    LongAccumulator errAcc = spark.sparkContext().longAccumulator("tokenpress.rows.error");
    OutputTally tally = new OutputTally();
    spark.sparkContext().register(tally, "tokenpress.outputs.tally");
    int batchesDone = 0;
    try {
      // What is already committed, and what an interrupted run left half-written.
      Dataset<Row> committed = null;
      long alreadyCommitted = 0;
      if (out.hasCommittedOutputs()) {
        committed = spark.read().parquet(out.outputs());
        Set<String> batches = new HashSet<>();
        for (Row r : committed.select("batch_id").distinct().collectAsList()) {
          batches.add(r.getString(0));
        }
        // Versions before the journal protocol could leave KV of a batch whose outputs never
        // committed.
        List<String> removed = out.removeUncommittedKv(batches);
        if (!removed.isEmpty()) {
          log.println("[tokenpress] removed KV of uncommitted batches " + removed);
        }
        alreadyCommitted = committed.count();
      }

      CorpusReader.Corpus listing =
          CorpusReader.open(spark, config.input(), config.output().rowsPerTask());
      Map<String, Long> excluded = new LinkedHashMap<>();
      ObjectNode examples = JSON.createObjectNode();
      for (DirectoryListing.Exclusion x : listing.excluded()) {
        excluded.put(x.reason(), x.count());
        examples.set(x.reason(), JSON.valueToTree(x.examples()));
        log.println("[tokenpress] not processed (no row): " + x.describe());
      }
      manifest.set("excluded", JSON.valueToTree(excluded));
      manifest.set("excluded_examples", examples);
      Dataset<Row> corpus = listing.rows();
      if (config.input().format() != InputFormat.DIRECTORY) {
        CorpusReader.checkIds(corpus, config.input().path());
      }
      long toDo;
      boolean listed = committed == null && config.input().format() == InputFormat.DIRECTORY;
      if (listed) {
        // A fresh run over a listed directory: the work list was built on the driver, already
        // partitioned; counting it runs no job.
        pending = corpus;
        toDo = listing.listedCount();
      } else {
        pending =
            committed == null
                ? corpus
                : corpus.join(
                    committed.select("id"),
                    corpus.col("id").equalTo(committed.col("id")),
                    "left_anti");
        pending = pending.persist(StorageLevel.DISK_ONLY());
        toDo = pending.count();
      }
      long inputs = toDo + alreadyCommitted;
      manifest.put("inputs", inputs);
      manifest.put("already_committed", alreadyCommitted);
      log.printf(
          Locale.ROOT,
          "[tokenpress] run %s: %d inputs, %d already committed, %d to process -> %s%n",
          runId,
          inputs,
          alreadyCommitted,
          toDo,
          out.root());

      Broadcast<SerializableHadoopConf> hadoopConf =
          spark
              .sparkContext()
              .broadcast(
                  new SerializableHadoopConf(spark.sparkContext().hadoopConfiguration()),
                  scala.reflect.ClassTag$.MODULE$.apply(SerializableHadoopConf.class));
      progress =
          new Progress(
              okAcc,
              errAcc,
              alreadyCommitted,
              inputs,
              config.run().progressIntervalSeconds(),
              "rows",
              log);
      spark.sparkContext().addSparkListener(progress);

      int nb =
          (int) Math.max(1, (toDo + config.output().batchRows() - 1) / config.output().batchRows());
      if (toDo == 0) {
        nb = 0;
      }
      int parallelism = spark.sparkContext().defaultParallelism();
      RowProvenance prov = new RowProvenance(plan.json(), plan.hash(), configHash, runId, runId);
      for (int b = 0; b < nb; b++) {
        String batchId = nb == 1 ? runId : String.format(Locale.ROOT, "%s-%05d", runId, b);
        progress.phase("batch " + (b + 1) + "/" + nb);
        Dataset<Row> work =
            nb == 1 ? pending : pending.where(pmod(xxhash64(col("id")), lit(nb)).equalTo(b));
        long approxRows = (toDo + nb - 1) / nb;
        int tasks = CorpusReader.tasksFor(approxRows, config.output().rowsPerTask(), parallelism);
        InferencePartitionFunction fn =
            new InferencePartitionFunction(
                factory,
                spec,
                plan.plan(),
                prov.withBatch(batchId),
                config.run().failFast(),
                config.kv().enabled(),
                config.input().maxBytes(),
                hadoopConf,
                okAcc,
                errAcc,
                config.model().sharedWorkers(),
                config.model().workers());
        // A fresh run over a listed directory in one batch feeds the listed rows straight in (no
        // query to plan, no row conversion); otherwise the batch's rows are spread over the tasks.
        JavaRDD<Row> input =
            listed && nb == 1 ? listing.listed() : work.repartition(tasks).javaRDD();
        String what = "tokenpress " + runId + " batch " + (b + 1) + "/" + nb;
        BatchWrite write =
            BatchWrite.prepare(
                spark,
                hadoopConf,
                out,
                batchId,
                parquetOptions(config, false),
                config.kv().enabled() ? parquetOptions(config, true) : null,
                tally);
        List<BatchCommit.Staged> staged =
            write.run(
                input,
                fn,
                what + ": inference + outputs" + (config.kv().enabled() ? " + kv_cache" : ""),
                out);
        probe.at(JobProbe.Step.TASKS_FINISHED, batchId);
        BatchCommit.commit(out, runId, batchId, staged, probe);
        batchesDone++;
      }
      progress.phase("");
      out.delete(out.path(OutputLayout.STAGING)); // empty: each batch removed its own directory
      if (nb > 0) {
        log.println(progress.finalLine());
      }
      probe.at(JobProbe.Step.SUMMARY, null);
      RunSummary summary =
          summarize(
              tally.value(),
              out,
              runId,
              inputs,
              alreadyCommitted,
              batchesDone,
              start,
              config.kv().enabled(),
              excluded);
      finish(manifest, out, summary, "succeeded", null);
      log.printf(
          Locale.ROOT,
          "[tokenpress] done: %d processed (%d ok, %d error) in %.1f s, %.2f rows/s; %d inputs, %d were already committed; "
              + "%d kv rows; output %s%n",
          summary.processed(),
          summary.ok(),
          summary.errors(),
          summary.seconds(),
          summary.rowsPerSecond(),
          summary.inputs(),
          summary.alreadyCommitted(),
          summary.kvRows(),
          out.root());
      if (!summary.errorClasses().isEmpty()) {
        log.println("[tokenpress] errors by class: " + summary.errorClasses());
      }
      if (!summary.excluded().isEmpty()) {
        log.println("[tokenpress] not processed (no row), by reason: " + summary.excluded());
      }
      return summary;
    } catch (Exception e) {
      // Spark's SparkException is a checked exception thrown from Scala code: catch it here too.
      try {
        manifest.put("batches_committed", batchesDone);
        finish(manifest, out, null, "failed", e);
      } catch (RuntimeException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e instanceof RuntimeException re
          ? re
          : new IllegalStateException("compress run " + runId + " failed: " + e.getMessage(), e);
    } finally {
      if (progress != null) {
        spark.sparkContext().removeSparkListener(progress);
        progress.close();
      }
      if (pending != null) {
        pending.unpersist(false);
      }
      previousSettings.forEach(
          (key, value) -> {
            if (value == null) {
              spark.conf().unset(key);
            } else {
              spark.conf().set(key, value);
            }
          });
    }
  }

  /** Parquet writer options of {@code outputs/} or ({@code tensors}) {@code kv_cache/} files. */
  private static Map<String, String> parquetOptions(JobConfig config, boolean tensors) {
    Map<String, String> o = new LinkedHashMap<>();
    o.put("compression", "zstd");
    o.put("parquet.compression.codec.zstd.level", String.valueOf(config.output().zstdLevel()));
    if (tensors) {
      o.put("parquet.block.size", String.valueOf(KV_ROW_GROUP_BYTES));
      // No dictionary in kv_cache files: for the tensor bytes and index lists it only cost time
      // (under JFR, dictionary encoding of the index lists was the largest cost of writing a KV row
      // after the tensor bytes), and the per-row strings and ints repeat within a file, which zstd
      // compresses as well as a dictionary would next to ~70 KB of tensor bytes per row. Parquet's
      // size statistics (per-page level histograms, for planning reads of nested columns) are off
      // too.
      o.put("parquet.enable.dictionary", "false");
      o.put("parquet.size.statistics.enabled", "false");
      for (String c : PLAIN_KV_COLUMNS) {
        o.put("parquet.column.statistics.enabled#" + c, "false");
      }
    }
    return o;
  }

  /**
   * Makes {@code output.path} ready for {@code mode}: nothing is deleted unless the mode is {@code
   * overwrite} and the directory is tokenpress's own; a dead run's committed batches are completed
   * and its staging area removed.
   */
  private static void prepareOutput(OutputLayout out, OutputMode mode, PrintStream log) {
    OutputLayout.State state = out.state();
    switch (mode) {
      case OVERWRITE -> {
        if (state == OutputLayout.State.TOKENPRESS || state == OutputLayout.State.FOREIGN) {
          out.deleteOwned();
          log.println(
              "[tokenpress] overwrite: removed the previous tokenpress output in " + out.root());
        }
      }
      case ERROR_IF_EXISTS -> {
        if (state != OutputLayout.State.ABSENT && state != OutputLayout.State.EMPTY) {
          throw new ConfigException(
              "output.mode",
              "'"
                  + out.root()
                  + "' exists and is not empty ("
                  + (state == OutputLayout.State.FOREIGN
                      ? OutputLayout.describe(out.foreignEntries())
                      : "a tokenpress output")
                  + "; mode error-if-exists): use a new output.path, or resume / overwrite for a tokenpress output");
        }
      }
      case RESUME -> {
        if (state == OutputLayout.State.FOREIGN) {
          throw new ConfigException(
              "output.path",
              "'"
                  + out.root()
                  + "' is a non-empty directory that tokenpress did "
                  + "not write ("
                  + OutputLayout.describe(out.foreignEntries())
                  + "); tokenpress writes only into a new or "
                  + "empty directory or one of its own outputs (marked by "
                  + OutputLayout.META
                  + "/)");
        }
      }
    }
    BatchCommit.Recovery recovery = BatchCommit.recover(out);
    if (!recovery.completed().isEmpty()) {
      log.println(
          "[tokenpress] completed the commit of batches "
              + recovery.completed()
              + " that an earlier run left half-moved");
    }
    if (!recovery.rolledBack().isEmpty()) {
      log.println(
          "[tokenpress] WARNING: rolled back batches "
              + recovery.rolledBack()
              + " whose staged files were "
              + "removed from outside (a second run on this output.path?); their records are processed again");
    }
    List<String> removed = out.removeLeftovers();
    if (!removed.isEmpty()) {
      log.println("[tokenpress] removed what an earlier run left uncommitted: " + removed);
    }
  }

  /**
   * The settings that shape the rows of an output: every run that adds rows to it must use the
   * same, so one output never mixes generation settings. Spark, thread and batching settings, which
   * do not change any row, are not among them.
   */
  static ObjectNode datasetSettings(JobConfig config, PlanSpec plan, EngineInfo engine) {
    ObjectNode s = JSON.createObjectNode();
    s.put("plan_hash", plan.hash());
    s.set("plan", config.plan());
    s.put("model_sha256", engine.modelSha256());
    s.put("model.maxNewTokens", config.model().maxNewTokens());
    s.put("model.seed", config.model().seed());
    s.put("model.maxPixels", config.model().maxPixels());
    s.put("kv.enabled", config.kv().enabled());
    s.put("kv.dtype", config.kv().dtype().toString());
    s.put("input.prompt", config.input().prompt());
    s.put("input.maxBytes", config.input().maxBytes());
    return s;
  }

  /**
   * Refuses to add rows to an output made with other {@link #datasetSettings}; records this run's
   * settings when the output has none yet.
   */
  private static void checkSameSettings(OutputLayout out, ObjectNode settings) {
    String text = out.readText(OutputLayout.DATASET_JSON);
    if (text == null) {
      if (out.hasCommittedOutputs()) {
        throw new ConfigException(
            "output.mode",
            "'"
                + out.root()
                + "' holds outputs of an earlier tokenpress version "
                + "without "
                + OutputLayout.DATASET_JSON
                + ", so resume cannot check that they were made with the same "
                + "settings; use a new output.path or output.mode=overwrite");
      }
      out.writeTextAtomically(OutputLayout.DATASET_JSON, pretty(settings));
      return;
    }
    JsonNode before;
    JsonNode now;
    try {
      before = JSON.readTree(text);
      now = JSON.readTree(pretty(settings)); // the same number types as what was read
    } catch (java.io.IOException e) {
      throw new ConfigException(
          "output.path", out.path(OutputLayout.DATASET_JSON) + " is unreadable: " + e.getMessage());
    }
    List<String> diffs = new ArrayList<>();
    Set<String> keys = new java.util.TreeSet<>();
    before.fieldNames().forEachRemaining(keys::add);
    now.fieldNames().forEachRemaining(keys::add);
    for (String k : keys) {
      if (k.equals("plan")) {
        continue; // compared through plan_hash
      }
      JsonNode a = before.get(k);
      JsonNode b = now.get(k);
      if (a == null || b == null || !a.equals(b)) {
        diffs.add(
            k
                + ": output has "
                + (a == null ? "(none)" : a)
                + ", this run "
                + (b == null ? "(none)" : b)
                + (k.equals("plan_hash") ? " (output's plan " + before.get("plan") + ")" : ""));
      }
    }
    if (!diffs.isEmpty()) {
      throw new ConfigException(
          "output.mode",
          "resume refused: '"
              + out.root()
              + "' was written with other settings "
              + "that change output rows — "
              + String.join("; ", diffs)
              + ". Every run adding to one output must use the "
              + "same; use a new output.path, or output.mode=overwrite to replace it");
    }
  }

  private static String pretty(JsonNode node) {
    try {
      return JSON.writeValueAsString(node);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * This run's counts, as tallied by its committed {@code outputs} writes ({@link OutputTally}).
   */
  private static RunSummary summarize(
      OutputTally.Counts counts,
      OutputLayout out,
      String runId,
      long inputs,
      long already,
      int batches,
      Instant start,
      boolean kv,
      Map<String, Long> excluded) {
    double secs = java.time.Duration.between(start, Instant.now()).toMillis() / 1000.0;
    Map<String, Long> classes = new LinkedHashMap<>();
    counts.errorClasses().entrySet().stream()
        .sorted(
            Map.Entry.<String, Long>comparingByValue()
                .reversed()
                .thenComparing(Map.Entry.comparingByKey()))
        .forEach(e -> classes.put(e.getKey(), e.getValue()));
    return new RunSummary(
        runId,
        out.root(),
        inputs,
        already,
        counts.ok() + counts.errors(),
        counts.ok(),
        counts.errors(),
        classes,
        kv ? counts.kvRows() : 0,
        batches,
        secs,
        excluded);
  }

  private static void finish(
      ObjectNode manifest, OutputLayout out, RunSummary s, String status, Throwable error) {
    manifest.put("status", status);
    manifest.put("ended_at", Instant.now().toString());
    if (s != null) {
      ObjectNode counts = manifest.putObject("counts");
      counts.put("inputs", s.inputs());
      counts.put("already_committed", s.alreadyCommitted());
      counts.put("processed", s.processed());
      counts.put("ok", s.ok());
      counts.put("error", s.errors());
      counts.put("kv_rows", s.kvRows());
      counts.put("batches", s.batches());
      counts.put("excluded", s.excludedTotal());
      manifest.set("errors_by_class", JSON.valueToTree(s.errorClasses()));
      manifest.put("seconds", s.seconds());
      manifest.put("rows_per_second", s.rowsPerSecond());
    }
    if (error != null) {
      manifest.put("error", error.getClass().getName() + ": " + error.getMessage());
    }
    String text = pretty(manifest);
    out.writeText(OutputLayout.RUNS + "/" + manifest.get("run_id").asText() + ".json", text);
    out.writeText(OutputLayout.RUN_JSON, text);
  }

  private static String versionOf(Class<?> c) {
    String v = c.getPackage() == null ? null : c.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }
}
