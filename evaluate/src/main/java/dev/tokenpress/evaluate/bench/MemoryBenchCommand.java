package dev.tokenpress.evaluate.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.datasets.Question;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.evaluate.eval.EvalCommand;
import dev.tokenpress.evaluate.eval.ShapesVqaSource;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRequest;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * {@code tokenpress bench memory}: native leak check. Runs consecutive VLM generations on one
 * {@link VlmRuntime} (split graphs), cycling ShapesVQA test images (PNG bytes, decoded each time)
 * and their questions, and samples the process RSS after warm-up and then periodically. Java heap
 * usage is sampled beside it (after a GC) so a growing heap is not mistaken for a native leak.
 */
public final class MemoryBenchCommand {
  public static final String USAGE =
      "bench memory --bundle DIR [--generations 5000] [--warmup 200] [--sample-every 250]\n"
          + "         [--images 50] [--max-new-tokens 16] [--threads 1] [--plan JSON|@FILE]\n"
          + "  Consecutive generations (cycling images and questions) on one split runtime; samples VmRSS from\n"
          + "  /proc/self/status after --warmup generations and every --sample-every; prints the series and\n"
          + "  growth in % of the after-warm-up RSS (target: within 10%). Run with a fixed, pre-touched heap\n"
          + "  (TOKENPRESS_JAVA_OPTS='-Xms256m -Xmx256m -XX:+AlwaysPreTouch') so heap sizing is not read as a leak.";

  /** The issue's target: RSS within this many percent of the after-warm-up value. */
  static final double TARGET_GROWTH_PCT = 10.0;

  private static final Set<String> OPTIONS =
      Set.of(
          "--bundle",
          "--generations",
          "--warmup",
          "--sample-every",
          "--images",
          "--threads",
          "--plan",
          "--max-new-tokens");

  private MemoryBenchCommand() {}

  /**
   * Two full GCs and a short pause before a sample, so the heap is at its floor; run with a fixed,
   * pre-touched heap ({@code -Xms=-Xmx -XX:+AlwaysPreTouch}) so that heap sizing does not show up
   * as RSS changes.
   */
  private static void settle() {
    System.gc();
    System.gc();
    try {
      Thread.sleep(50);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public static String run(String[] argv) {
    Args a = new Args(argv, OPTIONS);
    int generations = a.integer("--generations", 5000, 1, Integer.MAX_VALUE);
    int warmup = a.integer("--warmup", 200, 0, Integer.MAX_VALUE);
    int every = a.integer("--sample-every", 250, 1, Integer.MAX_VALUE);
    int images = a.integer("--images", 50, 1, 100_000);
    int threads = a.integer("--threads", 1, 0, 1024);
    int maxNew = a.integer("--max-new-tokens", 16, 1, 4096);
    CompressionPlan plan = EvalCommand.plan(a.string("--plan", "[]"));
    if (warmup >= generations) {
      throw new UsageException(
          "--warmup (" + warmup + ") must be below --generations (" + generations + ")");
    }
    if (!ProcessMemory.available()) {
      throw new UsageException("bench memory needs /proc/self/status (Linux)");
    }
    java.nio.file.Path bundleDir = a.path("--bundle");

    ShapesVqaSource data = ShapesVqaSource.test();
    byte[][] png = new byte[images][];
    List<List<Question>> questions = new ArrayList<>();
    for (int i = 0; i < images; i++) {
      Scene s = data.scene(i);
      png[i] = ShapesVqaSource.png(s);
      questions.add(s.questions());
    }
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    ArrayNode series = m.createArrayNode();
    long rssStart = ProcessMemory.rssKib();
    long warm = -1;
    long max = 0;
    long last = 0;
    long tokens = 0;
    long t0 = System.nanoTime();
    VlmOptions options =
        VlmOptions.defaults()
            .withSession(new SessionConfig(threads, false))
            .withMaxNewTokens(maxNew);
    try (VlmRuntime rt = VlmRuntime.open(bundleDir, options)) {
      rt.validate(plan);
      for (int g = 0; g < generations; g++) {
        int img = g % images;
        List<Question> qs = questions.get(img);
        Question q = qs.get((g / images) % qs.size());
        VlmRequest req =
            VlmRequest.ofBytes(q.id() + "#" + g, png[img], q.question()).withPlan(plan);
        tokens += rt.generate(req).tokenIds().length;
        int done = g + 1;
        if (done == warmup
            || (done > warmup && (done - warmup) % every == 0)
            || done == generations) {
          settle();
          long rss = ProcessMemory.rssKib();
          MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
          if (warm < 0) {
            warm = rss;
          }
          max = Math.max(max, rss);
          last = rss;
          ObjectNode p = series.addObject();
          p.put("generation", done);
          p.put("rss_mib", Stats.round(rss / 1024.0));
          p.put("heap_used_mib", Stats.round(heap.getUsed() / 1048576.0));
          p.put("heap_committed_mib", Stats.round(heap.getCommitted() / 1048576.0));
          System.err.printf(
              "bench memory: %d/%d generations, RSS %.1f MiB, %.0f s%n",
              done, generations, rss / 1024.0, (System.nanoTime() - t0) / 1e9);
        }
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    double growth = 100.0 * (last - warm) / warm;
    double maxGrowth = 100.0 * (max - warm) / warm;
    o.put("bundle", bundleDir.toAbsolutePath().toString());
    o.put("plan", plan.toJson());
    o.put("jvm_args", String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments()));
    o.put("generations", generations);
    o.put("warmup", warmup);
    o.put("images", images);
    o.put("max_new_tokens", maxNew);
    o.put("generated_tokens", tokens);
    o.put("seconds", Stats.round(seconds));
    o.put("rss_start_mib", Stats.round(rssStart / 1024.0));
    o.put("rss_after_warmup_mib", Stats.round(warm / 1024.0));
    o.put("rss_final_mib", Stats.round(last / 1024.0));
    o.put("rss_max_mib", Stats.round(max / 1024.0));
    o.put("growth_pct", Stats.round(growth));
    o.put("max_growth_pct", Stats.round(maxGrowth));
    o.put("target_pct", TARGET_GROWTH_PCT);
    o.put("within_target", maxGrowth <= TARGET_GROWTH_PCT);
    o.set("samples", series);
    try {
      return m.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
