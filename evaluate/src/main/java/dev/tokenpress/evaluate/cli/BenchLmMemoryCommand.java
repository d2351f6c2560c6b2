package dev.tokenpress.evaluate.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.Json;
import dev.tokenpress.runtime.lm.LlamaRuntime;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.util.Set;

/**
 * {@code tokenpress bench lm-memory}: many consecutive split-runtime generations, sampling the
 * process RSS (native + heap), to show that ORT tensors, results and direct buffers are released.
 */
public final class BenchLmMemoryCommand {
  static final String USAGE =
      "bench lm-memory --bundle DIR [--generations 5000] [--new-tokens 16] [--threads 1]\n"
          + "  Runs consecutive greedy generations and prints the process RSS after warm-up (20% of the runs)\n"
          + "  and at the end, the growth in percent, and heap and direct-buffer samples. Use a fixed heap\n"
          + "  (TOKENPRESS_JAVA_OPTS=\"-Xms256m -Xmx256m\") so that heap sizing does not show as growth.";

  private BenchLmMemoryCommand() {}

  public static String run(String[] argv) {
    Args a =
        new Args(argv, Set.of("--bundle", "--generations", "--new-tokens", "--threads"), Set.of());
    int generations = a.integer("--generations", 5000, 10);
    int newTokens = a.integer("--new-tokens", 16, 1);
    int threads = a.integer("--threads", 1, 0);
    Bundle bundle = Bundle.open(a.path("--bundle"));
    int[] ids = BenchLmCommand.defaultPrompt(bundle.lm(), 16);
    ObjectNode o = Json.object();
    ArrayNode samples = o.putArray("rss_mb_samples");
    ArrayNode heap = o.putArray("heap_committed_mb_samples");
    ArrayNode direct = o.putArray("direct_buffers_mb_samples");
    long t0 = System.nanoTime();
    long warm = 0;
    try (LlamaRuntime rt = LlamaRuntime.open(bundle, new SessionConfig(threads, false))) {
      LmRequest req =
          new LmRequest(
              rt.embedding().embed(ids),
              LmRequest.sequentialPositions(ids.length),
              new int[0],
              newTokens,
              KvPrecision.FP32,
              false);
      int warmup = Math.max(1, generations / 5);
      for (int i = 1; i <= generations; i++) {
        rt.generate(req);
        if (i == warmup) {
          System.gc();
          warm = dev.tokenpress.evaluate.bench.ProcessMemory.rssKib();
        }
        if (i % Math.max(1, generations / 10) == 0) {
          System.gc();
          samples.add(Json.round(dev.tokenpress.evaluate.bench.ProcessMemory.rssKib() / 1024.0));
          heap.add(
              Json.round(
                  java.lang.management.ManagementFactory.getMemoryMXBean()
                          .getHeapMemoryUsage()
                          .getCommitted()
                      / 1048576.0));
          direct.add(Json.round(directBytes() / 1048576.0));
        }
      }
    }
    System.gc();
    long end = dev.tokenpress.evaluate.bench.ProcessMemory.rssKib();
    o.put("generations", generations);
    o.put("new_tokens", newTokens);
    o.put("rss_mb_after_warmup", Json.round(warm / 1024.0));
    o.put("rss_mb_end", Json.round(end / 1024.0));
    o.put("rss_growth_pct", Json.round(100.0 * (end - warm) / warm));
    o.put("seconds", Json.round((System.nanoTime() - t0) / 1e9));
    return Json.write(o);
  }

  /** Bytes held by direct NIO buffers (our ORT input/output buffers live there). */
  static long directBytes() {
    for (java.lang.management.BufferPoolMXBean b :
        java.lang.management.ManagementFactory.getPlatformMXBeans(
            java.lang.management.BufferPoolMXBean.class)) {
      if (b.getName().equals("direct")) {
        return b.getMemoryUsed();
      }
    }
    return -1;
  }
}
