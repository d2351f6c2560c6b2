package dev.tokenpress.evaluate.bench;

import dev.tokenpress.jobs.compress.CompressJob;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.spark.ExecutorRuntimes;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.SparkSession;

/**
 * A/B throughput of two configurations of the compress job in one JVM: configuration A is the
 * bench's job (as {@link ThroughputBench} runs it, plus every {@code --set}), B is A plus every
 * {@code --b-set key=value}. After {@code --warmup} runs of each, A and B alternate for {@code
 * --rounds} rounds (A first in even rounds); prints each round, the medians, the ratio B/A of the
 * medians, the median of the per-round ratios and the pooled ratio. Comparing two job variants
 * against each other rather than each against the loop halves the noise of a change's effect.
 *
 * <pre>
 * TOKENPRESS_EVALUATE_MAIN=dev.tokenpress.evaluate.bench.JobAbBench bin/tokenpress-evaluate \
 *     [--images 256] [--warmup 5] [--rounds 20] [--max-new-tokens 8] [--set k=v]... --b-set output.rowsPerTask=64
 * </pre>
 */
public final class JobAbBench {
  private JobAbBench() {}

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(BenchCorpus.arg(args, "--images", "256"));
    Path source = Path.of(BenchCorpus.arg(args, "--source", "datasets/sample/images"));
    int rounds = Integer.parseInt(BenchCorpus.arg(args, "--rounds", "20"));
    int warmups = Integer.parseInt(BenchCorpus.arg(args, "--warmup", "5"));
    List<String> bSets = BenchCorpus.all(args, "--b-set");
    if (bSets.isEmpty()) {
      throw new IllegalArgumentException("give at least one --b-set key=value (what B changes)");
    }
    Path tmp = Files.createTempDirectory("tokenpress-ab");
    try {
      Path corpus = tmp.resolve("corpus");
      BenchCorpus.create(source, corpus, n);
      List<String> sets = BenchCorpus.jobSets(args, corpus, tmp.resolve("out"), "8");
      JobConfig a = ConfigLoader.load(null, sets);
      List<String> withB = new ArrayList<>(sets);
      withB.addAll(bSets);
      JobConfig b = ConfigLoader.load(null, withB);
      SparkSession spark = BenchCorpus.localSession("tokenpress-ab");
      PrintStream quiet = new PrintStream(java.io.OutputStream.nullOutputStream());
      for (int w = 0; w < warmups; w++) {
        CompressJob.run(spark, a, VlmProcessorFactory.INSTANCE, quiet);
        CompressJob.run(spark, b, VlmProcessorFactory.INSTANCE, quiet);
      }
      List<ThroughputBench.Measure> as = new ArrayList<>();
      List<ThroughputBench.Measure> bs = new ArrayList<>();
      List<Double> ratios = new ArrayList<>();
      for (int r = 0; r < rounds; r++) {
        for (boolean aTurn :
            r % 2 == 0 ? new boolean[] {true, false} : new boolean[] {false, true}) {
          JobConfig c = aTurn ? a : b;
          (aTurn ? as : bs)
              .add(
                  ThroughputBench.Measure.of(
                      n, () -> CompressJob.run(spark, c, VlmProcessorFactory.INSTANCE, quiet)));
        }
        ratios.add(bs.get(r).rate() / as.get(r).rate());
        System.out.printf(
            Locale.ROOT,
            "round %d (%s first): A %.2f rows/s, B %.2f rows/s, B/A %.3f%n",
            r + 1,
            r % 2 == 0 ? "A" : "B",
            as.get(r).rate(),
            bs.get(r).rate(),
            ratios.get(r));
      }
      spark.stop();
      System.out.printf(
          Locale.ROOT,
          "B = A + %s; %d images, %d rounds after %d warm-ups%n",
          bSets,
          n,
          rounds,
          warmups);
      System.out.printf(
          Locale.ROOT,
          "A %.2f rows/s, B %.2f rows/s (medians); B/A %.3f (ratio of the medians), median of "
              + "the per-round ratios %.3f, pooled %.3f; process CPU per row A %.2f ms, B %.2f ms%n",
          ThroughputBench.Measure.median(as).rate(),
          ThroughputBench.Measure.median(bs).rate(),
          ThroughputBench.Measure.median(bs).rate() / ThroughputBench.Measure.median(as).rate(),
          ThroughputBench.median(ratios),
          ThroughputBench.pooledRate(bs) / ThroughputBench.pooledRate(as),
          ThroughputBench.Measure.median(as).cpuMsPerRow(),
          ThroughputBench.Measure.median(bs).cpuMsPerRow());
    } finally {
      ExecutorRuntimes.closeAll();
      BenchCorpus.deleteTree(tmp);
    }
  }
}
