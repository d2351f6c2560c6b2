package dev.tokenpress.evaluate.bench;

import dev.tokenpress.jobs.compress.CompressJob;
import dev.tokenpress.jobs.compress.PlanSpec;
import dev.tokenpress.jobs.compress.RunSummary;
import dev.tokenpress.jobs.compress.RuntimeFactories;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.api.CompressionPlan;
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
 * Throughput of the compress job on local[2] against a plain Java loop with 2 threads over the same
 * images, same model, plan and options (the loop only runs the model; the job also lists, encodes
 * and writes both Parquet datasets, commits and summarises). Both share the executor's runtime.
 * After warm-up passes of each until the JIT compilers are quiet (at least {@code --warmup}, at
 * most {@code --max-warmup}; JIT compilation is a one-time cost of a JVM, amortised over a real
 * corpus), loop and job run for {@code --rounds} rounds, the loop first in even rounds and the job
 * first in odd ones. Prints each round with the JIT compile time of its job run, the medians and
 * their ratio, the median of the per-round ratios, the pooled ratio with a 95 % bootstrap interval
 * over the rounds, process CPU per row, the Spark job and tasks of the last run and CPU per row by
 * thread group.
 *
 * <pre>
 * TOKENPRESS_EVALUATE_MAIN=dev.tokenpress.evaluate.bench.ThroughputBench bin/tokenpress-evaluate \
 *     [--images 256] [--warmup 5] [--max-warmup 40] [--rounds 20] [--source datasets/sample/images] [--max-new-tokens 16] [--plan '[...]']
 *     [--set key=value]...
 * </pre>
 */
public final class ThroughputBench {
  private ThroughputBench() {}

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(BenchCorpus.arg(args, "--images", "256"));
    Path source = Path.of(BenchCorpus.arg(args, "--source", "datasets/sample/images"));
    int rounds = Integer.parseInt(BenchCorpus.arg(args, "--rounds", "20"));
    int warmups = Integer.parseInt(BenchCorpus.arg(args, "--warmup", "5"));
    int maxWarmups = Integer.parseInt(BenchCorpus.arg(args, "--max-warmup", "40"));
    if (rounds < 1) {
      throw new IllegalArgumentException("--rounds must be >= 1");
    }
    Path tmp = Files.createTempDirectory("tokenpress-bench");
    try {
      Path corpus = tmp.resolve("corpus");
      List<Path> files = BenchCorpus.create(source, corpus, n);
      JobConfig config =
          ConfigLoader.load(null, BenchCorpus.jobSets(args, corpus, tmp.resolve("out"), "16"));
      PlanSpec p = PlanSpec.of(config.plan());
      ProcessorSpec spec =
          new ProcessorSpec(
              RuntimeFactories.resolveBundle(config.model().bundle()),
              config.model().maxNewTokens(),
              config.model().seed(),
              config.model().maxPixels(),
              0,
              config.kv().dtype().precision());
      // intraOpThreads 0 in local[2] resolves to 1 per task; the loop uses the same cached runtime.
      RecordProcessor rt = ExecutorRuntimes.getOrCreate(VlmProcessorFactory.INSTANCE, spec, 1);
      String prompt = config.input().prompt();

      SparkSession spark = BenchCorpus.localSession("tokenpress-bench");
      PrintStream quiet = new PrintStream(java.io.OutputStream.nullOutputStream());

      // Warm-up: at least --warmup passes of each, then more until the JIT compilers are quiet
      // during a
      // job pass (compile time under 5 % of the pass's CPU capacity, twice in a row) or
      // --max-warmup
      // passes were made. A method runs interpreted, then C1-compiled with profiling, and is only
      // C2-compiled after about 5,000 calls (15,000 calls and loop iterations): code that runs once
      // per
      // record reaches it after some 20 passes of 256 images, code that runs a few times per run
      // (job set-up, scheduling, commit) only after dozens or hundreds of runs.
      // Until then each measured pass paid for compiling the next methods, on the same two cores —
      // the job's far more than the loop's, since it runs far more distinct code. A real corpus
      // pays
      // this once per executor JVM, in its first minutes.
      int quietPasses = 0;
      int w = 0;
      while (w < maxWarmups && (w < warmups || quietPasses < 2)) {
        long c0 = compileMillis();
        Measure loopWarm = Measure.of(n, () -> loop(rt, p.plan(), files, prompt, 2));
        long c1 = compileMillis();
        Measure jobWarm =
            Measure.of(
                n, () -> CompressJob.run(spark, config, VlmProcessorFactory.INSTANCE, quiet));
        long jobJit = compileMillis() - c1;
        quietPasses = jobJit < 0.05 * 2 * jobWarm.seconds() * 1000 ? quietPasses + 1 : 0;
        w++;
        System.out.printf(
            Locale.ROOT,
            "warm-up %d: loop %.2f rows/s (JIT %d ms), job %.2f rows/s (JIT %d ms)%n",
            w,
            loopWarm.rate(),
            c1 - c0,
            jobWarm.rate(),
            jobJit);
      }

      List<Measure> loops = new ArrayList<>();
      List<Measure> jobs = new ArrayList<>();
      JobTimes times = null;
      RunSummary last = null;
      java.util.Map<String, Long> loopThreads = null;
      java.util.Map<String, Long> jobThreads = null;
      double loopWorkerMsPerRow = 0;
      List<Double> ratios = new ArrayList<>();
      for (int r = 0; r < rounds; r++) {
        // Loop first in even rounds, job first in odd ones, so that a drift of the machine's
        // speed within a round does not always favour the same side.
        RunSummary[] holder = new RunSummary[1];
        long jitMs = 0;
        long up = 0;
        long classes0 = 0;
        for (boolean loopTurn :
            r % 2 == 0 ? new boolean[] {true, false} : new boolean[] {false, true}) {
          java.util.Map<String, ThreadCpu.Ticks> before = ThreadCpu.snapshot();
          if (loopTurn) {
            long workers0 = LOOP_WORKER_CPU_NANOS.get();
            loops.add(Measure.of(n, () -> loop(rt, p.plan(), files, prompt, 2)));
            loopWorkerMsPerRow = (LOOP_WORKER_CPU_NANOS.get() - workers0) / 1e6 / n;
            loopThreads = ThreadCpu.delta(before, ThreadCpu.snapshot());
          } else {
            times = new JobTimes();
            spark.sparkContext().addSparkListener(times);
            up = java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime();
            classes0 =
                java.lang.management.ManagementFactory.getClassLoadingMXBean()
                    .getTotalLoadedClassCount();
            long c0 = compileMillis();
            jobs.add(
                Measure.of(
                    n,
                    () ->
                        holder[0] =
                            CompressJob.run(spark, config, VlmProcessorFactory.INSTANCE, quiet)));
            jitMs = compileMillis() - c0;
            spark.sparkContext().removeSparkListener(times);
            jobThreads = ThreadCpu.delta(before, ThreadCpu.snapshot());
          }
        }
        last = holder[0];
        ratios.add(jobs.get(r).rate() / loops.get(r).rate());
        System.out.printf(
            Locale.ROOT,
            "round %d (%s first): loop %.2f rows/s, job %.2f rows/s, ratio %.3f (job at JVM "
                + "uptime %d..%d ms, %d classes loaded, JIT compile %d ms)%n",
            r + 1,
            r % 2 == 0 ? "loop" : "job",
            loops.get(r).rate(),
            jobs.get(r).rate(),
            ratios.get(r),
            up,
            java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime(),
            java.lang.management.ManagementFactory.getClassLoadingMXBean()
                    .getTotalLoadedClassCount()
                - classes0,
            jitMs);
      }
      // Time inside records (read + model + result, as each output row's timings_ms.total says)
      // against the tasks' run time: the rest is the write path and task set-up.
      double recordSeconds =
          spark
              .read()
              .parquet(tmp.resolve("out").resolve("outputs").toString())
              .selectExpr("sum(timings_ms['total']) / 1000")
              .first()
              .getDouble(0);
      spark.stop();
      Measure loopMed = Measure.median(loops);
      Measure jobMed = Measure.median(jobs);
      System.out.printf(
          Locale.ROOT,
          "images: %d (%d ok, %d error), plan %s, maxNewTokens %d, %d rounds after warm-up%n",
          n,
          last.ok(),
          last.errors(),
          p.json(),
          config.model().maxNewTokens(),
          rounds);
      System.out.printf(
          Locale.ROOT, "plain Java loop, 2 threads: %.2f rows/s (median)%n", loopMed.rate());
      System.out.printf(
          Locale.ROOT,
          "compress job, local[2]:     %.2f rows/s (median; %.2f s per run incl. listing, "
              + "writes, commits, summary)%n",
          jobMed.rate(),
          jobMed.seconds());
      System.out.printf(
          Locale.ROOT,
          "ratio job/loop: %.3f (ratio of the medians); median of the per-round ratios %.3f; "
              + "pooled (all rows over all seconds) %.3f%n",
          jobMed.rate() / loopMed.rate(),
          median(ratios),
          pooledRate(jobs) / pooledRate(loops));
      double[] ci = pooledRatioInterval(jobs, loops, 2000);
      System.out.printf(
          Locale.ROOT,
          "pooled ratio, 95 %% interval over the rounds (bootstrap, rounds resampled "
              + "with both of their runs): [%.3f, %.3f]%n",
          ci[0],
          ci[1]);
      System.out.printf(
          Locale.ROOT,
          "process CPU per row (median): loop %.2f ms, job %.2f ms (job/loop %.3f)%n",
          loopMed.cpuMsPerRow(),
          jobMed.cpuMsPerRow(),
          jobMed.cpuMsPerRow() / loopMed.cpuMsPerRow());
      System.out.printf(
          Locale.ROOT,
          "spark jobs of the last run (%.2f s in jobs, %.2f s on the driver between them):%n",
          times.totalSeconds(),
          jobs.get(rounds - 1).seconds() - times.totalSeconds());
      System.out.print(times.report());
      System.out.printf(
          Locale.ROOT,
          "  inside records (sum of timings_ms.total of the last run): %.3f s of %.3f s task run time%n",
          recordSeconds,
          times.taskRunSeconds());
      System.out.printf(
          Locale.ROOT,
          "CPU ms per row of the loop's worker threads, last round: %.2f (the job's "
              + "executor task threads: below)%n",
          loopWorkerMsPerRow);
      System.out.println(
          "CPU ms per row by thread group, last round (loop | job; threads alive at both snapshots):");
      System.out.print(ThreadCpu.report(loopThreads, jobThreads, n));
    } finally {
      ExecutorRuntimes.closeAll();
      BenchCorpus.deleteTree(tmp);
    }
  }

  /**
   * CPU time per thread group from {@code /proc/self/task/<tid>/stat} (Linux): Java and
   * JVM-internal threads alike (GC, JIT compilers), grouped by name with digits removed.
   */
  static final class ThreadCpu {
    private ThreadCpu() {}

    /** One thread's name (digits replaced by N) and CPU clock ticks (utime + stime). */
    record Ticks(String name, long ticks) {}

    /** CPU ticks by thread id; threads may rename themselves, so the name is the latest one. */
    static java.util.Map<String, Ticks> snapshot() {
      java.util.Map<String, Ticks> byTid = new java.util.HashMap<>();
      Path tasks = Path.of("/proc/self/task");
      if (!Files.isDirectory(tasks)) {
        return byTid;
      }
      try (java.util.stream.Stream<Path> ts = Files.list(tasks)) {
        for (Path t : (Iterable<Path>) ts::iterator) {
          try {
            String stat = Files.readString(t.resolve("stat"));
            int open = stat.indexOf('(');
            int close = stat.lastIndexOf(')');
            String name = stat.substring(open + 1, close).replaceAll("[0-9]+", "N");
            String[] f = stat.substring(close + 2).split(" ");
            byTid.put(
                t.getFileName().toString(),
                new Ticks(name, Long.parseLong(f[11]) + Long.parseLong(f[12])));
          } catch (IOException | RuntimeException e) {
            // the thread ended while we listed it
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return byTid;
    }

    /** Clock ticks used between two snapshots, summed by thread name group. */
    static java.util.Map<String, Long> delta(
        java.util.Map<String, Ticks> before, java.util.Map<String, Ticks> after) {
      java.util.Map<String, Long> byGroup = new java.util.TreeMap<>();
      after.forEach(
          (tid, now) -> {
            Ticks then = before.get(tid);
            long d = now.ticks() - (then == null ? 0 : then.ticks());
            if (d > 0) {
              byGroup.merge(now.name(), d, Long::sum);
            }
          });
      return byGroup;
    }

    static String report(
        java.util.Map<String, Long> loop, java.util.Map<String, Long> job, int rows) {
      java.util.Set<String> names = new java.util.TreeSet<>(loop.keySet());
      names.addAll(job.keySet());
      double msPerTick = 10.0; // USER_HZ = 100 on Linux
      StringBuilder sb = new StringBuilder();
      names.stream()
          .sorted(
              java.util.Comparator.comparingLong(
                  k -> -(job.getOrDefault(k, 0L) + loop.getOrDefault(k, 0L))))
          .filter(k -> job.getOrDefault(k, 0L) + loop.getOrDefault(k, 0L) >= 2)
          .filter(
              k ->
                  !k.startsWith("loop-worker")) // gone before the snapshot: measured by the workers
          // themselves
          .forEach(
              k ->
                  sb.append(
                      String.format(
                          Locale.ROOT,
                          "  %-28s %7.2f | %7.2f%n",
                          k,
                          loop.getOrDefault(k, 0L) * msPerTick / rows,
                          job.getOrDefault(k, 0L) * msPerTick / rows)));
      return sb.toString();
    }
  }

  /** One timed run: wall seconds and process CPU time for {@code rows} rows. */
  record Measure(int rows, double seconds, double cpuSeconds) {
    interface Body {
      void run() throws Exception;
    }

    static Measure of(int rows, Body body) throws Exception {
      long cpu = processCpuNanos();
      long t = System.nanoTime();
      body.run();
      return new Measure(rows, (System.nanoTime() - t) / 1e9, (processCpuNanos() - cpu) / 1e9);
    }

    double rate() {
      return rows / seconds;
    }

    double cpuMsPerRow() {
      return cpuSeconds * 1000 / rows;
    }

    /** The run of median wall time. */
    static Measure median(List<Measure> ms) {
      List<Measure> sorted = new ArrayList<>(ms);
      sorted.sort(java.util.Comparator.comparingDouble(Measure::seconds));
      return sorted.get(sorted.size() / 2);
    }
  }

  /** Total time the JIT compilers have spent so far (ms), from the compilation MXBean. */
  static long compileMillis() {
    java.lang.management.CompilationMXBean c =
        java.lang.management.ManagementFactory.getCompilationMXBean();
    return c != null && c.isCompilationTimeMonitoringSupported() ? c.getTotalCompilationTime() : -1;
  }

  static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean)
            java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /** Wall time of each Spark job (description or first stage name) while registered. */
  static final class JobTimes extends org.apache.spark.scheduler.SparkListener {
    private final java.util.Map<Integer, Long> starts =
        new java.util.concurrent.ConcurrentHashMap<>();
    private final java.util.Map<Integer, String> names =
        new java.util.concurrent.ConcurrentHashMap<>();
    private final List<String> lines = java.util.Collections.synchronizedList(new ArrayList<>());
    private final java.util.concurrent.atomic.AtomicLong totalNanos =
        new java.util.concurrent.atomic.AtomicLong();

    @Override
    public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart e) {
      starts.put(e.jobId(), System.nanoTime());
      String d =
          e.properties() == null ? null : e.properties().getProperty("spark.job.description");
      String stage = e.stageInfos().isEmpty() ? "?" : e.stageInfos().head().name();
      names.put(e.jobId(), (d == null ? "" : d + " | ") + stage);
    }

    private final List<String> tasks = java.util.Collections.synchronizedList(new ArrayList<>());

    @Override
    public void onTaskEnd(org.apache.spark.scheduler.SparkListenerTaskEnd e) {
      org.apache.spark.scheduler.TaskInfo i = e.taskInfo();
      org.apache.spark.executor.TaskMetrics m = e.taskMetrics();
      if (m != null) {
        taskRunMs.addAndGet(m.executorRunTime());
      }
      tasks.add(
          String.format(
              Locale.ROOT,
              "    stage %d task %d: %.3f s (launch +%d ms, deserialize %d ms, run %d ms, CPU %d ms)%n",
              e.stageId(),
              i.index(),
              i.duration() / 1e3,
              i.launchTime() - firstLaunch(i.launchTime()),
              m == null ? -1 : m.executorDeserializeTime(),
              m == null ? -1 : m.executorRunTime(),
              m == null ? -1 : m.executorCpuTime() / 1_000_000));
    }

    private long firstLaunch = Long.MAX_VALUE;

    private synchronized long firstLaunch(long t) {
      firstLaunch = Math.min(firstLaunch, t);
      return firstLaunch;
    }

    @Override
    public void onJobEnd(org.apache.spark.scheduler.SparkListenerJobEnd e) {
      Long t = starts.remove(e.jobId());
      if (t != null) {
        long ns = System.nanoTime() - t;
        totalNanos.addAndGet(ns);
        lines.add(
            String.format(
                Locale.ROOT,
                "  job %d: %.3f s  %s%n",
                e.jobId(),
                ns / 1e9,
                names.remove(e.jobId())));
      }
    }

    private final java.util.concurrent.atomic.AtomicLong taskRunMs =
        new java.util.concurrent.atomic.AtomicLong();

    double taskRunSeconds() {
      return taskRunMs.get() / 1e3;
    }

    double totalSeconds() {
      return totalNanos.get() / 1e9;
    }

    String report() {
      synchronized (lines) {
        synchronized (tasks) {
          return String.join("", lines) + String.join("", tasks);
        }
      }
    }
  }

  static double median(List<Double> xs) {
    List<Double> sorted = new ArrayList<>(xs);
    java.util.Collections.sort(sorted);
    int m = sorted.size() / 2;
    return sorted.size() % 2 == 1 ? sorted.get(m) : (sorted.get(m - 1) + sorted.get(m)) / 2;
  }

  /**
   * The 2.5 and 97.5 percentiles of the pooled job/loop ratio when the rounds (each a job run and a
   * loop run) are resampled with replacement; fixed seed, so the same rounds give the same
   * interval.
   */
  static double[] pooledRatioInterval(List<Measure> jobs, List<Measure> loops, int resamples) {
    java.util.Random random = new java.util.Random(0);
    int n = jobs.size();
    double[] ratios = new double[resamples];
    for (int r = 0; r < resamples; r++) {
      double jobRows = 0;
      double jobSecs = 0;
      double loopRows = 0;
      double loopSecs = 0;
      for (int i = 0; i < n; i++) {
        int k = random.nextInt(n);
        jobRows += jobs.get(k).rows();
        jobSecs += jobs.get(k).seconds();
        loopRows += loops.get(k).rows();
        loopSecs += loops.get(k).seconds();
      }
      ratios[r] = (jobRows / jobSecs) / (loopRows / loopSecs);
    }
    java.util.Arrays.sort(ratios);
    return new double[] {
      ratios[(int) (0.025 * (resamples - 1))], ratios[(int) (0.975 * (resamples - 1))]
    };
  }

  static double pooledRate(List<Measure> ms) {
    double rows = 0;
    double secs = 0;
    for (Measure m : ms) {
      rows += m.rows();
      secs += m.seconds();
    }
    return rows / secs;
  }

  /**
   * CPU time of the loop's worker threads, summed as each ends (they are gone before a snapshot).
   */
  static final java.util.concurrent.atomic.AtomicLong LOOP_WORKER_CPU_NANOS =
      new java.util.concurrent.atomic.AtomicLong();

  static double loop(
      RecordProcessor rt, CompressionPlan plan, List<Path> files, String prompt, int threads)
      throws InterruptedException {
    AtomicInteger next = new AtomicInteger();
    List<Thread> ts = new ArrayList<>();
    long t0 = System.nanoTime();
    for (int t = 0; t < threads; t++) {
      Thread th =
          new Thread(
              () -> {
                try {
                  for (int i = next.getAndIncrement();
                      i < files.size();
                      i = next.getAndIncrement()) {
                    Path f = files.get(i);
                    try {
                      rt.process(
                          new InputRecord(
                              f.toString(), f.toString(), Files.readAllBytes(f), prompt, null),
                          plan);
                    } catch (IOException e) {
                      throw new UncheckedIOException(e);
                    }
                  }
                } finally {
                  LOOP_WORKER_CPU_NANOS.addAndGet(
                      java.lang.management.ManagementFactory.getThreadMXBean()
                          .getCurrentThreadCpuTime());
                }
              },
              "loop-worker-" + t);
      th.start();
      ts.add(th);
    }
    for (Thread th : ts) {
      th.join();
    }
    return files.size() / ((System.nanoTime() - t0) / 1e9);
  }
}
