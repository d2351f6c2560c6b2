package dev.tokenpress.evaluate.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.jobs.compress.CompressJob;
import dev.tokenpress.jobs.compress.RunSummary;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;

/**
 * Peak memory of the compress job (local[2]: driver and executor share the JVM) for N and 10×N
 * input rows, each size in a fresh JVM. Each child first runs a small warm-up job (JIT, Spark's
 * code generation and thread pools are one-time costs of a JVM, not of its rows), then the measured
 * job. The heap is fixed and pre-touched ({@code -Xms = -Xmx}, {@code -XX:+AlwaysPreTouch}) so that
 * heap sizing decisions cannot pass for growth; what can grow is the live heap and the memory
 * outside the heap. Reports, per size: the peak live heap (heap used right at the end of a forced
 * full GC, as the collector recorded it, sampled every 0.5 s), the peak resident set (VmHWM), and
 * the peak resident memory outside the fixed heap (VmHWM − heap size: ORT arenas, metaspace, code
 * cache, thread stacks, direct buffers, malloc); then the 10×/1× ratios.
 *
 * <pre>
 * TOKENPRESS_EVALUATE_MAIN=dev.tokenpress.evaluate.bench.MemoryBench bin/tokenpress-evaluate [--rows 64] [--heap 768m] \
 *     [--set kv.enabled=false]...
 * </pre>
 */
public final class MemoryBench {
  private MemoryBench() {}

  public static void main(String[] args) throws Exception {
    if (List.of(args).contains("--child")) {
      child(
          Integer.parseInt(BenchCorpus.arg(args, "--rows", "64")),
          BenchCorpus.arg(args, "--source", "datasets/sample/images"),
          BenchCorpus.arg(args, "--max-new-tokens", "4"),
          parseMib(BenchCorpus.arg(args, "--heap", "768m")),
          BenchCorpus.sets(args));
      return;
    }
    int rows = Integer.parseInt(BenchCorpus.arg(args, "--rows", "64"));
    String heap = BenchCorpus.arg(args, "--heap", "768m");
    parseMib(heap);
    String source = BenchCorpus.arg(args, "--source", "datasets/sample/images");
    String maxNew = BenchCorpus.arg(args, "--max-new-tokens", "4");
    ObjectMapper json = new ObjectMapper();
    List<ObjectNode> results = new ArrayList<>();
    for (int n : new int[] {rows, 10 * rows}) {
      List<String> cmd = new ArrayList<>();
      cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
      for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
        if (!a.startsWith("-Xmx")
            && !a.startsWith("-Xms")
            && !a.startsWith("-agentlib")
            && !a.startsWith("-javaagent")
            && !a.contains("PreTouch")) {
          cmd.add(a);
        }
      }
      cmd.addAll(
          List.of(
              "-Xms" + heap,
              "-Xmx" + heap,
              "-XX:+AlwaysPreTouch",
              "-cp",
              System.getProperty("java.class.path"),
              MemoryBench.class.getName(),
              "--child",
              "--rows",
              String.valueOf(n),
              "--source",
              source,
              "--max-new-tokens",
              maxNew,
              "--heap",
              heap));
      for (String set : BenchCorpus.sets(args)) {
        cmd.addAll(List.of("--set", set));
      }
      Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
      String line = null;
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        for (String l = r.readLine(); l != null; l = r.readLine()) {
          if (l.startsWith("MEMBENCH ")) {
            line = l.substring("MEMBENCH ".length());
          }
        }
      }
      if (p.waitFor() != 0 || line == null) {
        throw new IllegalStateException(
            "child run with " + n + " rows failed (exit " + p.exitValue() + ")");
      }
      results.add((ObjectNode) json.readTree(line));
      System.out.println("rows " + n + ": " + line);
    }
    ObjectNode a = results.get(0);
    ObjectNode b = results.get(1);
    System.out.printf(
        Locale.ROOT,
        "peak live heap: %.1f MiB (%d rows) -> %.1f MiB (%d rows): x%.3f%n",
        a.get("peak_live_heap_mib").asDouble(),
        a.get("rows").asInt(),
        b.get("peak_live_heap_mib").asDouble(),
        b.get("rows").asInt(),
        b.get("peak_live_heap_mib").asDouble() / a.get("peak_live_heap_mib").asDouble());
    System.out.printf(
        Locale.ROOT,
        "live heap during the measured job, median / p90: %.1f / %.1f MiB -> %.1f / %.1f MiB: "
            + "x%.3f / x%.3f%n",
        a.get("job_live_heap_p50_mib").asDouble(),
        a.get("job_live_heap_p90_mib").asDouble(),
        b.get("job_live_heap_p50_mib").asDouble(),
        b.get("job_live_heap_p90_mib").asDouble(),
        b.get("job_live_heap_p50_mib").asDouble() / a.get("job_live_heap_p50_mib").asDouble(),
        b.get("job_live_heap_p90_mib").asDouble() / a.get("job_live_heap_p90_mib").asDouble());
    System.out.printf(
        Locale.ROOT,
        "peak RSS (VmHWM): %.1f MiB -> %.1f MiB: x%.3f%n",
        a.get("vm_hwm_mib").asDouble(),
        b.get("vm_hwm_mib").asDouble(),
        b.get("vm_hwm_mib").asDouble() / a.get("vm_hwm_mib").asDouble());
    System.out.printf(
        Locale.ROOT,
        "peak RSS outside the fixed %s heap: %.1f MiB -> %.1f MiB: x%.3f%n",
        heap,
        a.get("off_heap_rss_mib").asDouble(),
        b.get("off_heap_rss_mib").asDouble(),
        b.get("off_heap_rss_mib").asDouble() / a.get("off_heap_rss_mib").asDouble());
  }

  private static void child(int rows, String source, String maxNew, long heapMib, List<String> sets)
      throws Exception {
    Path tmp = Files.createTempDirectory("tokenpress-membench");
    List<Path> images;
    try (Stream<Path> s = Files.walk(Path.of(source))) {
      images =
          s.filter(Files::isRegularFile)
              .filter(p -> p.toString().matches("(?i).*\\.(png|jpe?g)$"))
              .sorted()
              .map(Path::toAbsolutePath)
              .collect(Collectors.toList());
    }
    StringBuilder manifest = new StringBuilder();
    for (int i = 0; i < rows; i++) {
      manifest
          .append("{\"id\":\"r")
          .append(i)
          .append("\",\"path\":\"")
          .append(images.get(i % images.size()))
          .append("\"}\n");
    }
    Path m = Files.writeString(tmp.resolve("manifest.jsonl"), manifest.toString());
    StringBuilder warmManifest = new StringBuilder();
    for (int i = 0; i < 16; i++) {
      warmManifest
          .append("{\"id\":\"w")
          .append(i)
          .append("\",\"path\":\"")
          .append(images.get(i % images.size()))
          .append("\"}\n");
    }
    Path wm = Files.writeString(tmp.resolve("warm.jsonl"), warmManifest.toString());
    Sampler sampler = new Sampler();
    sampler.start();
    SparkSession spark = BenchCorpus.localSession("tokenpress-membench");
    List<String> warmSets =
        new ArrayList<>(
            List.of(
                "input.format=jsonl",
                "input.path=" + wm,
                "input.prompt=describe the image.",
                "model.maxNewTokens=" + maxNew,
                "output.path=" + tmp.resolve("warm-out"),
                "output.mode=overwrite",
                "run.progressIntervalSeconds=30"));
    warmSets.addAll(sets);
    JobConfig warm = ConfigLoader.load(null, warmSets);
    CompressJob.run(
        spark,
        warm,
        VlmProcessorFactory.INSTANCE,
        new PrintStream(java.io.OutputStream.nullOutputStream()));
    List<String> configSets =
        new ArrayList<>(
            List.of(
                "input.format=jsonl",
                "input.path=" + m,
                "input.prompt=describe the image.",
                "model.maxNewTokens=" + maxNew,
                "output.path=" + tmp.resolve("out"),
                "output.mode=overwrite",
                "run.progressIntervalSeconds=30"));
    configSets.addAll(sets);
    JobConfig config = ConfigLoader.load(null, configSets);
    List<String> jobMarks = java.util.Collections.synchronizedList(new ArrayList<>());
    spark
        .sparkContext()
        .addSparkListener(
            new org.apache.spark.scheduler.SparkListener() {
              @Override
              public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart e) {
                String d =
                    e.properties() == null
                        ? null
                        : e.properties().getProperty("spark.job.description");
                jobMarks.add(
                    sampler.jobSamples.size()
                        + ": start job "
                        + e.jobId()
                        + (d == null ? "" : " (" + d.replaceAll(".*: ", "") + ")"));
              }

              @Override
              public void onJobEnd(org.apache.spark.scheduler.SparkListenerJobEnd e) {
                jobMarks.add(sampler.jobSamples.size() + ": end job " + e.jobId());
              }
            });
    long t0 = System.nanoTime();
    sampler.recording = true;
    RunSummary s =
        CompressJob.run(
            spark,
            config,
            VlmProcessorFactory.INSTANCE,
            new PrintStream(java.io.OutputStream.nullOutputStream()));
    sampler.recording = false;
    double secs = (System.nanoTime() - t0) / 1e9;
    sampler.sample();
    sampler.interrupt();
    spark.stop();
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.put("rows", rows);
    o.put("ok", s.ok());
    o.put("errors", s.errors());
    o.put("seconds", Math.round(secs * 10) / 10.0);
    o.put("peak_live_heap_mib", Math.round(sampler.peakLive / 1048576.0 * 10) / 10.0);
    o.put("job_live_heap_samples", sampler.jobSamples.size());
    o.put("job_live_heap_p50_mib", sampler.quantileMib(0.5));
    o.put("job_live_heap_p90_mib", sampler.quantileMib(0.9));
    com.fasterxml.jackson.databind.node.ArrayNode marks = o.putArray("spark_jobs_at_sample");
    synchronized (jobMarks) {
      jobMarks.forEach(marks::add);
    }
    com.fasterxml.jackson.databind.node.ArrayNode series = o.putArray("job_live_heap_series_mib");
    synchronized (sampler.jobSamples) {
      for (long v : sampler.jobSamples) {
        series.add(Math.round(v / 1048576.0));
      }
    }
    double hwm = dev.tokenpress.evaluate.bench.ProcessMemory.peakRssKib() / 1024.0;
    o.put("vm_hwm_mib", Math.round(hwm * 10) / 10.0);
    o.put("heap_mib", heapMib);
    o.put("off_heap_rss_mib", Math.round((hwm - heapMib) * 10) / 10.0);
    System.out.println("MEMBENCH " + o);
    BenchCorpus.deleteTree(tmp);
  }

  /** {@code 768m}, {@code 2g} → MiB. */
  static long parseMib(String size) {
    java.util.regex.Matcher mt = java.util.regex.Pattern.compile("(?i)(\\d+)([mg])").matcher(size);
    if (!mt.matches()) {
      throw new IllegalArgumentException("--heap must look like 768m or 2g, got '" + size + "'");
    }
    long v = Long.parseLong(mt.group(1));
    return mt.group(2).equalsIgnoreCase("g") ? v * 1024 : v;
  }

  /** Forces a GC every 0.5 s and records the largest heap still in use after it (the live set). */
  static final class Sampler extends Thread {
    volatile long peakLive;

    /** Live-heap samples (bytes) taken while {@link #recording} is set: the measured job. */
    final List<Long> jobSamples = java.util.Collections.synchronizedList(new ArrayList<>());

    volatile boolean recording;

    Sampler() {
      super("membench-sampler");
      setDaemon(true);
    }

    /**
     * Forces a full GC and reads what the collector itself recorded at its end (each heap pool's
     * collection usage): reading the heap's current usage instead would race with the task threads'
     * allocations right after the GC and inflate the figure.
     */
    void sample() {
      System.gc();
      long live = 0;
      for (java.lang.management.MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
        if (pool.getType() == java.lang.management.MemoryType.HEAP
            && pool.getCollectionUsage() != null) {
          live += pool.getCollectionUsage().getUsed();
        }
      }
      peakLive = Math.max(peakLive, live);
      if (recording) {
        jobSamples.add(live);
      }
    }

    /** The q-quantile (0..1, nearest rank) of the measured job's samples, in MiB. */
    double quantileMib(double q) {
      List<Long> sorted;
      synchronized (jobSamples) {
        sorted = new ArrayList<>(jobSamples);
      }
      if (sorted.isEmpty()) {
        return -1;
      }
      java.util.Collections.sort(sorted);
      int i = (int) Math.min(sorted.size() - 1, Math.max(0, Math.ceil(q * sorted.size()) - 1));
      return Math.round(sorted.get(i) / 1048576.0 * 10) / 10.0;
    }

    @Override
    public void run() {
      while (!isInterrupted()) {
        sample();
        try {
          Thread.sleep(500);
        } catch (InterruptedException e) {
          return;
        }
      }
    }
  }
}
