package dev.tokenpress.evaluate.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.Json;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.lm.FusedLlamaRuntime;
import dev.tokenpress.runtime.lm.GenerationResult;
import dev.tokenpress.runtime.lm.LlamaRuntime;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.util.Arrays;
import java.util.Set;

/**
 * {@code tokenpress bench lm}: split runtime vs fused decoder on the same bundle, prompt and
 * threads, runs interleaved (so machine load hits both alike), medians reported as JSON.
 */
public final class BenchLmCommand {
  static final String USAGE =
      "bench lm --bundle DIR [--prompt-ids 1,2,3] [--prompt-tokens 16] [--new-tokens 64]\n"
          + "         [--warmup 3] [--runs 10] [--threads 1]\n"
          + "  Greedy generation of exactly --new-tokens tokens (no stop token) with the split runtime and with\n"
          + "  the fused decoder (bundle built with --fused); prints medians: prefill ms, decode ms/token,\n"
          + "  decode tokens/s, the split/fused ratio and the max |split - fused| logit over all steps.";

  private BenchLmCommand() {}

  public static String run(String[] argv) {
    Args a =
        new Args(
            argv,
            Set.of(
                "--bundle",
                "--prompt-ids",
                "--prompt-tokens",
                "--new-tokens",
                "--warmup",
                "--runs",
                "--threads"),
            Set.of());
    int[] ids = a.ints("--prompt-ids");
    int promptTokens = a.integer("--prompt-tokens", 16, 1);
    int newTokens = a.integer("--new-tokens", 64, 1);
    int warmup = a.integer("--warmup", 3, 0);
    int runs = a.integer("--runs", 10, 1);
    int threads = a.integer("--threads", 1, 0);
    Bundle bundle = Bundle.open(a.path("--bundle"));
    LmSpec spec = bundle.lm();
    if (ids == null) {
      ids = defaultPrompt(spec, promptTokens);
    }
    if (ids.length + newTokens > spec.maxPositionEmbeddings()) {
      throw new UsageException(
          "prompt "
              + ids.length
              + " + new tokens "
              + newTokens
              + " exceed the context of "
              + spec.maxPositionEmbeddings());
    }
    SessionConfig sc = new SessionConfig(threads, false);
    try (LlamaRuntime split = LlamaRuntime.open(bundle, sc);
        FusedLlamaRuntime fused = FusedLlamaRuntime.open(bundle, sc)) {
      LmRequest req =
          new LmRequest(
              split.embedding().embed(ids),
              LmRequest.sequentialPositions(ids.length),
              new int[0],
              newTokens,
              KvPrecision.FP32,
              false);
      for (int i = 0; i < warmup; i++) {
        split.generate(req);
        fused.generate(req);
      }
      LmRequest recorded =
          new LmRequest(
              split.embedding().embed(ids),
              LmRequest.sequentialPositions(ids.length),
              new int[0],
              newTokens,
              KvPrecision.FP32,
              true);
      double maxDiff =
          maxAbsDiff(split.generate(recorded).stepLogits(), fused.generate(recorded).stepLogits());
      double[][] s = new double[5][runs];
      double[][] f = new double[5][runs];
      boolean same = true;
      java.lang.management.ThreadMXBean cpu =
          java.lang.management.ManagementFactory.getThreadMXBean();
      for (int i = 0; i < runs; i++) {
        long c0 = cpu.getCurrentThreadCpuTime();
        GenerationResult rs = split.generate(req);
        long c1 = cpu.getCurrentThreadCpuTime();
        GenerationResult rf = fused.generate(req);
        long c2 = cpu.getCurrentThreadCpuTime();
        same &= Arrays.equals(rs.tokenIds(), rf.tokenIds());
        record(s, i, rs);
        record(f, i, rf);
        s[4][i] = (c1 - c0) / 1e6;
        f[4][i] = (c2 - c1) / 1e6;
      }
      ObjectNode o = Json.object();
      o.put("bundle", bundle.directory().toAbsolutePath().toString());
      o.put("threads", threads);
      o.put("prompt_tokens", ids.length);
      o.put("new_tokens", newTokens);
      o.put("runs", runs);
      o.put("same_tokens", same);
      o.put("max_abs_logit_diff", maxDiff);
      double sMsTok = median(s[1]);
      double fMsTok = median(f[1]);
      o.put("split_ms_per_token", Json.round(sMsTok));
      o.put("fused_ms_per_token", Json.round(fMsTok));
      o.put("ratio", Json.round(sMsTok / fMsTok));
      o.put("decode_tokens_per_s", Json.round(1000 / sMsTok));
      o.put("fused_decode_tokens_per_s", Json.round(1000 / fMsTok));
      o.put("split_prefill_ms", Json.round(median(s[0])));
      o.put("fused_prefill_ms", Json.round(median(f[0])));
      o.put("split_end_to_end_ms", Json.round(median(s[2])));
      o.put("fused_end_to_end_ms", Json.round(median(f[2])));
      o.put("ratio_end_to_end", Json.round(median(s[2]) / median(f[2])));
      o.put("split_decode_java_attention_ms_per_token", Json.round(median(s[3])));
      // thread CPU time of a whole generation (with 1 intra-op thread ORT runs on the calling
      // thread): a comparison that machine load disturbs far less than wall time
      o.put("split_cpu_ms_per_generation", Json.round(median(s[4])));
      o.put("fused_cpu_ms_per_generation", Json.round(median(f[4])));
      o.put("ratio_cpu", Json.round(median(s[4]) / median(f[4])));
      return Json.write(o);
    }
  }

  private static void record(double[][] m, int i, GenerationResult r) {
    int steps = Math.max(1, r.timings().decodeSteps());
    m[0][i] = r.timings().prefillMs();
    m[1][i] = r.timings().decodeMs() / steps;
    m[2][i] = r.timings().prefillMs() + r.timings().decodeMs();
    m[3][i] = r.timings().decodeAttentionNanos() / 1e6 / steps;
  }

  private static double maxAbsDiff(java.util.List<float[]> a, java.util.List<float[]> b) {
    if (a.size() != b.size()) {
      return Double.POSITIVE_INFINITY;
    }
    double m = 0;
    for (int s = 0; s < a.size(); s++) {
      for (int i = 0; i < a.get(s).length; i++) {
        m = Math.max(m, Math.abs(a.get(s)[i] - b.get(s)[i]));
      }
    }
    return m;
  }

  /** BOS followed by deterministic ids spread over the vocabulary. */
  static int[] defaultPrompt(LmSpec spec, int n) {
    int[] ids = new int[n];
    ids[0] = spec.bosTokenId() >= 0 ? spec.bosTokenId() : 0;
    for (int i = 1; i < n; i++) {
      ids[i] = (int) ((i * 7919L + 13) % spec.vocabSize());
    }
    return ids;
  }

  private static double median(double[] v) {
    double[] c = v.clone();
    Arrays.sort(c);
    return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
  }
}
