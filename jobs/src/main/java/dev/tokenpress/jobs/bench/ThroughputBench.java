package dev.tokenpress.jobs.bench;

import dev.tokenpress.jobs.compress.CompressJob;
import dev.tokenpress.jobs.compress.PlanSpec;
import dev.tokenpress.jobs.compress.RunSummary;
import dev.tokenpress.jobs.compress.RuntimeFactories;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.spark.ExecutorRuntimes;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.sql.SparkSession;

/**
 * Throughput of the compress job on local[2] against a plain Java loop with 2 threads over the
 * same images, same model, plan and options (the loop only runs the model; the job also lists,
 * shuffles, writes both Parquet datasets and commits). Both share the executor's runtime, warmed
 * up first. Prints both rows/s figures and the ratio.
 *
 * <pre>
 * TOKENPRESS_MAIN=dev.tokenpress.jobs.bench.ThroughputBench bin/tokenpress-compress \
 *     [--images 256] [--source datasets/sample/images] [--max-new-tokens 16] [--plan '[...]']
 * </pre>
 */
public final class ThroughputBench {
  private ThroughputBench() {}

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(BenchCorpus.arg(args, "--images", "256"));
    Path source = Path.of(BenchCorpus.arg(args, "--source", "datasets/sample/images"));
    String maxNew = BenchCorpus.arg(args, "--max-new-tokens", "16");
    String plan = BenchCorpus.arg(args, "--plan", "[{op: vtc-cls, keep: 32, layers: \"1..L-2\"}]");
    String bundle = BenchCorpus.arg(args, "--bundle", "models/tiny-llava-shapes");
    Path tmp = Files.createTempDirectory("tokenpress-bench");
    try {
      Path corpus = tmp.resolve("corpus");
      List<Path> files = BenchCorpus.create(source, corpus, n);
      Path warm = tmp.resolve("warm");
      BenchCorpus.create(source, warm, 8);
      JobConfig config = ConfigLoader.load(null, List.of("input.path=" + corpus, "input.glob=*", "model.bundle=" + bundle,
          "model.maxNewTokens=" + maxNew, "plan=" + plan, "output.path=" + tmp.resolve("out"), "output.mode=overwrite",
          "run.progressIntervalSeconds=30"));
      PlanSpec p = PlanSpec.of(config.plan());
      ProcessorSpec spec = new ProcessorSpec(RuntimeFactories.resolveBundle(bundle), p.json(),
          config.model().maxNewTokens(), config.model().seed(), config.model().maxPixels(), 0,
          config.kv().dtype().precision());
      // intraOpThreads 0 in local[2] resolves to 1 per task; the loop uses the same cached runtime.
      RecordProcessor rt = ExecutorRuntimes.getOrCreate(VlmProcessorFactory.INSTANCE, spec, 1);
      for (Path f : files.subList(0, Math.min(8, files.size()))) {
        rt.process(new InputRecord(f.toString(), f.toString(), Files.readAllBytes(f), config.input().prompt(), null));
      }

      double loopRate = loop(rt, files, config.input().prompt(), 2);

      SparkSession spark = SparkSession.builder().master("local[2]").appName("tokenpress-bench")
          .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
          .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.shuffle.partitions", "4")
          .getOrCreate();
      spark.sparkContext().setLogLevel("WARN");
      PrintStream quiet = new PrintStream(java.io.OutputStream.nullOutputStream());
      JobConfig warmConfig = ConfigLoader.load(null, List.of("input.path=" + warm, "input.glob=*", "model.bundle=" + bundle,
          "model.maxNewTokens=" + maxNew, "plan=" + plan, "output.path=" + tmp.resolve("warm-out"),
          "output.mode=overwrite"));
      CompressJob.run(spark, warmConfig, VlmProcessorFactory.INSTANCE, quiet);
      long t0 = System.nanoTime();
      RunSummary s = CompressJob.run(spark, config, VlmProcessorFactory.INSTANCE, quiet);
      double jobSecs = (System.nanoTime() - t0) / 1e9;
      double jobRate = s.processed() / jobSecs;
      spark.stop();
      System.out.printf(Locale.ROOT, "images: %d (%d ok, %d error), plan %s, maxNewTokens %s%n", n, s.ok(), s.errors(),
          p.json(), maxNew);
      System.out.printf(Locale.ROOT, "plain Java loop, 2 threads: %.2f rows/s%n", loopRate);
      System.out.printf(Locale.ROOT, "compress job, local[2]:     %.2f rows/s (%.1f s incl. listing, writes, commits)%n",
          jobRate, jobSecs);
      System.out.printf(Locale.ROOT, "ratio job/loop: %.3f%n", jobRate / loopRate);
    } finally {
      ExecutorRuntimes.closeAll();
      BenchCorpus.deleteTree(tmp);
    }
  }

  static double loop(RecordProcessor rt, List<Path> files, String prompt, int threads) throws InterruptedException {
    AtomicInteger next = new AtomicInteger();
    List<Thread> ts = new ArrayList<>();
    long t0 = System.nanoTime();
    for (int t = 0; t < threads; t++) {
      Thread th = new Thread(() -> {
        for (int i = next.getAndIncrement(); i < files.size(); i = next.getAndIncrement()) {
          Path f = files.get(i);
          try {
            rt.process(new InputRecord(f.toString(), f.toString(), Files.readAllBytes(f), prompt, null));
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      });
      th.start();
      ts.add(th);
    }
    for (Thread th : ts) {
      th.join();
    }
    return files.size() / ((System.nanoTime() - t0) / 1e9);
  }
}
