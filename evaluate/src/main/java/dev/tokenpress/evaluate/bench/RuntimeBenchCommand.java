package dev.tokenpress.evaluate.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.evaluate.eval.ShapesVqaSource;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRequest;
import dev.tokenpress.runtime.vlm.VlmResult;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * {@code tokenpress bench runtime}: end-to-end time per image of the split runtime vs the fused
 * graphs ({@link VlmOptions#fused()}) on ShapesVQA test images, same bundle and threads, through
 * {@link VlmRuntime} with the empty plan and no stop token (exactly {@code --new-tokens} tokens).
 * The two variants alternate on every image (the order flips each image) so that machine noise hits
 * both alike. Also checks on the first images that both give the same logits at every step.
 */
public final class RuntimeBenchCommand {
  public static final String USAGE =
      "bench runtime --bundle DIR [--images 200] [--new-tokens 16] [--threads 1]\n"
          + "         [--warmup 5] [--parity-images 3]\n"
          + "  Per ShapesVQA test image (PNG bytes): decode + preprocess + vision + prefill + exactly --new-tokens\n"
          + "  tokens (no early stop), split runtime vs fused graphs (bundle built with --fused), alternating.\n"
          + "  Prints split_ms_per_image, fused_ms_per_image, ratio (split/fused, medians), decode tokens/s,\n"
          + "  thread CPU ms per image, per-stage medians and the max abs logit difference on the parity images.";

  /** The target for {@code ratio}. */
  static final double TARGET_RATIO = 1.25;

  /** Stage keys of {@link VlmResult#timingsMs()}, in output order. */
  static final List<String> STAGES =
      List.of("image_decode", "preprocess", "vision", "operators", "prefill", "decode", "total");

  private static final Set<String> OPTIONS =
      Set.of("--bundle", "--images", "--new-tokens", "--threads", "--warmup", "--parity-images");

  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  private RuntimeBenchCommand() {}

  /** One timed request: wall time per stage and the calling thread's CPU time. */
  private record Timed(VlmResult result, double cpuMs) {}

  public static String run(String[] argv) {
    Args a = new Args(argv, OPTIONS);
    int images = a.integer("--images", 200, 1, 100_000);
    int newTokens = a.integer("--new-tokens", 16, 1, 4096);
    int threads = a.integer("--threads", 1, 0, 1024);
    int warmup = a.integer("--warmup", 5, 0, 100_000);
    int parityImages = a.integer("--parity-images", 3, 0, 100_000);
    Path bundleDir = a.path("--bundle");

    ShapesVqaSource data = ShapesVqaSource.test();
    byte[][] png = new byte[images][];
    String[] question = new String[images];
    for (int i = 0; i < images; i++) {
      Scene s = data.scene(i);
      png[i] = ShapesVqaSource.png(s);
      // cycle through the question kinds so prompts of every length are timed
      question[i] = s.questions().get(i % s.questions().size()).question();
    }
    int stages = STAGES.size();
    double[][] split = new double[stages][images];
    double[][] fused = new double[stages][images];
    double[] splitTokS = new double[images];
    double[] fusedTokS = new double[images];
    double[] splitCpu = new double[images];
    double[] fusedCpu = new double[images];
    double maxDiff = 0;
    boolean sameTokens = true;
    VlmOptions options =
        VlmOptions.defaults()
            .withSession(new SessionConfig(threads, false))
            .withMaxNewTokens(newTokens);
    try (VlmRuntime sp = VlmRuntime.open(bundleDir, options);
        VlmRuntime fp = VlmRuntime.open(bundleDir, options.withFused(true))) {
      for (int i = 0; i < Math.min(parityImages, images); i++) {
        VlmResult rs = sp.generate(request(i, png[i], question[i]).withRecordLogits(true));
        VlmResult rf = fp.generate(request(i, png[i], question[i]).withRecordLogits(true));
        sameTokens &= Arrays.equals(rs.tokenIds(), rf.tokenIds());
        maxDiff = Math.max(maxDiff, maxAbsDiff(rs.stepLogits(), rf.stepLogits()));
      }
      for (int i = 0; i < warmup; i++) {
        int j = i % images;
        sp.generate(request(j, png[j], question[j]));
        fp.generate(request(j, png[j], question[j]));
      }
      for (int i = 0; i < images; i++) {
        Timed rs;
        Timed rf;
        if (i % 2 == 0) {
          rs = timed(sp, request(i, png[i], question[i]));
          rf = timed(fp, request(i, png[i], question[i]));
        } else {
          rf = timed(fp, request(i, png[i], question[i]));
          rs = timed(sp, request(i, png[i], question[i]));
        }
        sameTokens &= Arrays.equals(rs.result().tokenIds(), rf.result().tokenIds());
        for (int k = 0; k < stages; k++) {
          split[k][i] = rs.result().timingsMs().get(STAGES.get(k));
          fused[k][i] = rf.result().timingsMs().get(STAGES.get(k));
        }
        splitTokS[i] = tokensPerSecond(rs.result());
        fusedTokS[i] = tokensPerSecond(rf.result());
        splitCpu[i] = rs.cpuMs();
        fusedCpu[i] = rf.cpuMs();
      }
    }
    int total = stages - 1;
    int decode = STAGES.indexOf("decode");
    double s = Stats.median(split[total]);
    double f = Stats.median(fused[total]);
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    o.put("bundle", bundleDir.toAbsolutePath().toString());
    o.put("images", images);
    o.put("new_tokens", newTokens);
    o.put("threads", threads);
    o.put("warmup", warmup);
    o.put("split_ms_per_image", Stats.round(s));
    o.put("fused_ms_per_image", Stats.round(f));
    o.put("ratio", Stats.round(s / f));
    o.put("target_ratio", TARGET_RATIO);
    o.put("ratio_ok", s / f <= TARGET_RATIO);
    o.put("split_mean_ms_per_image", Stats.round(Stats.mean(split[total])));
    o.put("fused_mean_ms_per_image", Stats.round(Stats.mean(fused[total])));
    o.put("ratio_of_means", Stats.round(Stats.mean(split[total]) / Stats.mean(fused[total])));
    double sc = Stats.median(splitCpu);
    double fc = Stats.median(fusedCpu);
    o.put("split_cpu_ms_per_image", Stats.round(sc));
    o.put("fused_cpu_ms_per_image", Stats.round(fc));
    o.put("cpu_ratio", Stats.round(sc / fc));
    ObjectNode tps = o.putObject("decode_tokens_per_s");
    tps.put("split", Stats.round(Stats.median(splitTokS)));
    tps.put("fused", Stats.round(Stats.median(fusedTokS)));
    ObjectNode step = o.putObject("decode_ms_per_step");
    step.put("split", Stats.round(Stats.median(split[decode]) / Math.max(1, newTokens - 1)));
    step.put("fused", Stats.round(Stats.median(fused[decode]) / Math.max(1, newTokens - 1)));
    ObjectNode med = o.putObject("stage_medians_ms");
    ObjectNode ms = med.putObject("split");
    ObjectNode mf = med.putObject("fused");
    for (int k = 0; k < stages; k++) {
      ms.put(STAGES.get(k), Stats.round(Stats.median(split[k])));
      mf.put(STAGES.get(k), Stats.round(Stats.median(fused[k])));
    }
    ObjectNode p = o.putObject("parity");
    p.put("images", Math.min(parityImages, images));
    if (Double.isInfinite(maxDiff)) {
      p.putNull("max_abs_logit_diff");
    } else {
      p.put("max_abs_logit_diff", maxDiff);
    }
    p.put("within_1e-4", maxDiff <= 1e-4);
    p.put("same_tokens", sameTokens);
    try {
      return m.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private static VlmRequest request(int i, byte[] png, String question) {
    return VlmRequest.ofBytes("bench-" + i, png, question).withoutStopTokens();
  }

  /** ORT runs single-threaded graphs on the caller's thread, so its CPU time covers the model. */
  private static Timed timed(VlmRuntime rt, VlmRequest req) {
    long c0 = THREADS.getCurrentThreadCpuTime();
    VlmResult r = rt.generate(req);
    return new Timed(r, (THREADS.getCurrentThreadCpuTime() - c0) / 1e6);
  }

  /** Decode steps per second of decode wall time (the first token comes from the prefill). */
  private static double tokensPerSecond(VlmResult r) {
    double ms = r.timingsMs().get("decode");
    int steps = Math.max(0, r.tokenIds().length - 1);
    return steps == 0 || ms <= 0 ? Double.NaN : steps * 1000.0 / ms;
  }

  /** Max |a - b| over every step both recorded; infinite when the step counts or widths differ. */
  static double maxAbsDiff(List<float[]> a, List<float[]> b) {
    if (a == null || b == null || a.size() != b.size()) {
      return Double.POSITIVE_INFINITY;
    }
    double max = 0;
    for (int s = 0; s < a.size(); s++) {
      float[] x = a.get(s);
      float[] y = b.get(s);
      if (x.length != y.length) {
        return Double.POSITIVE_INFINITY;
      }
      for (int i = 0; i < x.length; i++) {
        max = Math.max(max, Math.abs((double) x[i] - y[i]));
      }
    }
    return max;
  }
}
