package dev.tokenpress.runtime.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.eval.ShapesVqaSource;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * {@code tokenpress bench runtime}: end-to-end time per image of the split runtime vs the fused
 * graphs on ShapesVQA test images, same bundle and threads, the two variants alternating on every
 * image (the order flips each image) so that machine noise hits both alike. Also checks on the
 * first images that both variants give the same logits.
 */
public final class RuntimeBenchCommand {
  public static final String USAGE = "bench runtime --bundle DIR [--images 200] [--new-tokens 16] [--threads 1]\n"
      + "         [--warmup 5] [--parity-images 3]\n"
      + "  Per ShapesVQA test image (PNG bytes): decode + preprocess + vision + prefill + exactly --new-tokens\n"
      + "  tokens (no early stop), split runtime vs fused graphs (bundle built with --fused), alternating.\n"
      + "  Prints split_ms_per_image, fused_ms_per_image, ratio (split/fused, medians), decode tokens/s,\n"
      + "  per-stage medians and the max abs logit difference over the parity images.";

  /** The target for {@code ratio}. */
  static final double TARGET_RATIO = 1.25;

  private static final Set<String> OPTIONS =
      Set.of("--bundle", "--images", "--new-tokens", "--threads", "--warmup", "--parity-images");

  private RuntimeBenchCommand() {}

  public static String run(String[] argv) {
    CommandArgs a = new CommandArgs(argv, OPTIONS);
    int images = a.integer("--images", 200, 1, 100_000);
    int newTokens = a.integer("--new-tokens", 16, 1, 4096);
    int threads = a.integer("--threads", 1, 0, 1024);
    int warmup = a.integer("--warmup", 5, 0, 100_000);
    int parityImages = a.integer("--parity-images", 3, 0, 100_000);
    Bundle bundle = Bundle.open(a.path("--bundle"));
    SessionConfig session = new SessionConfig(threads, false);

    ShapesVqaSource data = ShapesVqaSource.test();
    byte[][] png = new byte[images][];
    String[] question = new String[images];
    for (int i = 0; i < images; i++) {
      Scene s = data.scene(i);
      png[i] = ShapesVqaSource.png(s);
      // cycle through the question kinds so prompts of every length are timed
      question[i] = s.questions().get(i % s.questions().size()).question();
    }
    int stages = BenchPipeline.STAGES.length;
    double[][] split = new double[stages][images];
    double[][] fused = new double[stages][images];
    double[] splitTokS = new double[images];
    double[] fusedTokS = new double[images];
    double[] splitCpu = new double[images];
    double[] fusedCpu = new double[images];
    double[] ortPerStep = new double[images];
    double[] attPerStep = new double[images];
    double maxDiff = 0;
    boolean sameTokens = true;
    try (BenchPipeline sp = BenchPipeline.split(bundle, session); BenchPipeline fp = BenchPipeline.fused(bundle, session)) {
      for (int i = 0; i < Math.min(parityImages, images); i++) {
        BenchPipeline.Run rs = sp.run(png[i], question[i], newTokens, true);
        BenchPipeline.Run rf = fp.run(png[i], question[i], newTokens, true);
        sameTokens &= Arrays.equals(rs.tokens(), rf.tokens());
        maxDiff = Math.max(maxDiff, maxAbsDiff(rs.stepLogits(), rf.stepLogits()));
      }
      for (int i = 0; i < warmup; i++) {
        int j = i % images;
        sp.run(png[j], question[j], newTokens, false);
        fp.run(png[j], question[j], newTokens, false);
      }
      for (int i = 0; i < images; i++) {
        BenchPipeline.Run rs;
        BenchPipeline.Run rf;
        if (i % 2 == 0) {
          rs = sp.run(png[i], question[i], newTokens, false);
          rf = fp.run(png[i], question[i], newTokens, false);
        } else {
          rf = fp.run(png[i], question[i], newTokens, false);
          rs = sp.run(png[i], question[i], newTokens, false);
        }
        sameTokens &= Arrays.equals(rs.tokens(), rf.tokens());
        for (int k = 0; k < stages; k++) {
          split[k][i] = rs.stageMs()[k];
          fused[k][i] = rf.stageMs()[k];
        }
        splitTokS[i] = tokensPerSecond(rs);
        splitCpu[i] = rs.cpuMs();
        fusedCpu[i] = rf.cpuMs();
        int steps = Math.max(1, rs.decodeSteps());
        ortPerStep[i] = rs.decodeOrtMs() / steps;
        attPerStep[i] = rs.decodeAttentionMs() / steps;
        fusedTokS[i] = tokensPerSecond(rf);
      }
    }
    int total = stages - 1;
    double s = Stats.median(split[total]);
    double f = Stats.median(fused[total]);
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    o.put("bundle", bundle.directory().toAbsolutePath().toString());
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
    ObjectNode med = o.putObject("stage_medians_ms");
    ObjectNode ms = med.putObject("split");
    ObjectNode mf = med.putObject("fused");
    for (int k = 0; k < stages; k++) {
      ms.put(BenchPipeline.STAGES[k], Stats.round(Stats.median(split[k])));
      mf.put(BenchPipeline.STAGES[k], Stats.round(Stats.median(fused[k])));
    }
    ObjectNode prof = o.putObject("split_decode_step_ms");
    double stepMs = Stats.median(split[5]) / Math.max(1, newTokens - 1);
    prof.put("total", Stats.round(stepMs));
    prof.put("ort_calls", Stats.round(Stats.median(ortPerStep)));
    prof.put("java_attention", Stats.round(Stats.median(attPerStep)));
    prof.put("fused_total", Stats.round(Stats.median(fused[5]) / Math.max(1, newTokens - 1)));
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
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Decode steps per second of decode wall time (the first token comes from the prefill). */
  private static double tokensPerSecond(BenchPipeline.Run r) {
    double ms = r.stageMs()[5];
    return r.decodeSteps() == 0 || ms <= 0 ? Double.NaN : r.decodeSteps() * 1000.0 / ms;
  }

  /** Max |a - b| over every step both recorded. */
  static double maxAbsDiff(List<float[]> a, List<float[]> b) {
    if (a.size() != b.size()) {
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
