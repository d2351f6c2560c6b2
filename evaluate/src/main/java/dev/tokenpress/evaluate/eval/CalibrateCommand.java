package dev.tokenpress.evaluate.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.datasets.Question;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.MustDropConfig;
import dev.tokenpress.operators.api.OperatorConfig;
import dev.tokenpress.operators.prune.MustDropCalibration;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code tokenpress calibrate mustdrop}: picks MustDrop's γ ({@code global_thr}), α ({@code
 * individual_thr}) or both for a target mean number of visual tokens, counted as the paper counts
 * (after each LM layer, averaged over the layers, see {@link
 * EvalCommand.Evaluation#layerAverageVisual}), on ShapesVQA questions of the validation split. γ
 * and α are shares of attention mass, so the count varies per image and the thresholds must be
 * tuned per model and data set.
 *
 * <p>Each probe runs {@link EvalCommand.Evaluation} on the images with the candidate plan; the
 * search is {@link MustDropCalibration#solveMonotone} (bisection in log space; the result keeps at
 * most the target on average). Every probe is reported, with whether the counts were non-increasing
 * in the threshold as the search assumes.
 */
public final class CalibrateCommand {
  public static final String USAGE =
      "calibrate mustdrop [--bundle DIR] --target-tokens T [--vary gamma|alpha|both]\n"
          + "         [--base-plan JSON|@FILE] [--split val] [--images 50] [--start 0] [--kinds exists,color,count,position,caption]\n"
          + "         [--iterations 16] [--max-new-tokens 1] [--threads 1] [--workers 1] [--seed 1234]\n"
          + "  Searches MustDrop's γ (gamma, global_thr; the default), α (alpha, individual_thr) or both (γ = t,\n"
          + "  α = t·α0/γ0 with the base plan's α0/γ0) in [1e-6, 1] by bisection in log space so that the mean\n"
          + "  number of visual tokens after each LM layer, averaged over the layers (the paper's count; eval's\n"
          + "  mean_visual_tokens_layer_average), is the largest value <= T reachable, on the questions of --images\n"
          + "  images of --split. --base-plan (default [{\"op\":\"mustdrop\"}]) must hold one mustdrop operator;\n"
          + "  its other settings and operators are kept. Prints each probe on stderr and a JSON summary with the\n"
          + "  chosen plan (\"plan\", ready for eval --plan). --bundle as for eval (default models/tiny-llava-shapes).\n"
          + "  Counts do not depend on decoding, hence\n"
          + "  --max-new-tokens 1.";

  static final double LO = 1e-6;
  static final double HI = 1.0;

  private static final Set<String> OPTIONS =
      Set.of(
          "--bundle",
          "--target-tokens",
          "--vary",
          "--base-plan",
          "--split",
          "--images",
          "--start",
          "--kinds",
          "--iterations",
          "--max-new-tokens",
          "--threads",
          "--workers",
          "--seed");

  private CalibrateCommand() {}

  /** One probe: the thresholds and the counts they gave. */
  record Probe(
      double globalThr, double individualThr, double layerAverage, double intoLm, double seconds) {}

  public static String run(String[] argv) {
    Args a = new Args(argv, OPTIONS);
    Path bundleDir = EvalCommand.bundleDir(a);
    if (!a.has("--target-tokens")) {
      throw new UsageException("--target-tokens is required");
    }
    String targetArg = a.string("--target-tokens", null);
    double target;
    try {
      target = Double.parseDouble(targetArg.trim());
    } catch (NumberFormatException e) {
      throw new UsageException("--target-tokens must be a number, found '" + targetArg + "'");
    }
    if (!(target > 0) || Double.isInfinite(target)) {
      throw new UsageException("--target-tokens must be a finite number > 0, found " + targetArg);
    }
    String vary = a.string("--vary", "gamma");
    if (!List.of("gamma", "alpha", "both").contains(vary)) {
      throw new UsageException("--vary must be gamma, alpha or both, found '" + vary + "'");
    }
    CompressionPlan base = EvalCommand.plan(a.string("--base-plan", "[{\"op\":\"mustdrop\"}]"));
    int at = mustDropIndex(base);
    MustDropConfig md = (MustDropConfig) base.operators().get(at);
    if (vary.equals("both") && !(md.globalThr() > 0)) {
      throw new UsageException(
          "--vary both scales α with γ and needs the base plan's mustdrop.global_thr > 0, found "
              + md.globalThr());
    }
    String split = a.string("--split", "val");
    int images = a.integer("--images", 50, 1, 1_000_000);
    int start = a.integer("--start", 0, 0, 1_000_000);
    List<String> kinds = EvalCommand.kinds(a.string("--kinds", String.join(",", Question.KINDS)));
    int iterations = a.integer("--iterations", 16, 1, 200);
    int maxNew = a.integer("--max-new-tokens", 1, 1, 4096);
    int threads = a.integer("--threads", 1, 0, 1024);
    int workers = a.integer("--workers", 1, 1, 256);
    ShapesVqaSource data = EvalCommand.dataset(a, split);
    VlmOptions options =
        VlmOptions.defaults()
            .withSession(new SessionConfig(threads, false))
            .withMaxNewTokens(maxNew);
    TreeMap<Double, Probe> probes = new TreeMap<>();
    try (VlmRuntime rt = VlmRuntime.open(bundleDir, options)) {
      rt.validate(base);
      double t =
          MustDropCalibration.solveMonotone(
              x ->
                  probe(
                          rt, base, at, md, vary, x, data, start, images, kinds, maxNew, workers,
                          probes)
                      .layerAverage(),
              target,
              LO,
              HI,
              iterations);
      Probe chosen =
          probe(rt, base, at, md, vary, t, data, start, images, kinds, maxNew, workers, probes);
      if (chosen.layerAverage() > target) {
        System.err.printf(
            "calibrate: target %.2f not reached: %s = %.3g still keeps %.2f (a token is dropped only when"
                + " its share is below γ and its largest attention below α)%s%n",
            target, vary, t, chosen.layerAverage(), vary.equals("both") ? "" : "; try --vary both");
      }
      return toJson(
          bundleDir,
          split,
          data.seed(),
          start,
          images,
          kinds,
          target,
          vary,
          probes,
          chosen,
          withThresholds(base, at, md, vary, t));
    }
  }

  /**
   * The index of the plan's only mustdrop operator; a usage error if there is none or more than
   * one.
   */
  static int mustDropIndex(CompressionPlan plan) {
    int at = -1;
    List<OperatorConfig> ops = plan.operators();
    for (int i = 0; i < ops.size(); i++) {
      if (ops.get(i) instanceof MustDropConfig) {
        if (at >= 0) {
          throw new UsageException(
              "--base-plan must hold exactly one mustdrop operator, found more than one");
        }
        at = i;
      }
    }
    if (at < 0) {
      throw new UsageException(
          "--base-plan must hold exactly one mustdrop operator, found none in " + plan.toJson());
    }
    return at;
  }

  /** {@code base} with the mustdrop operator's thresholds set for the search variable {@code t}. */
  static CompressionPlan withThresholds(
      CompressionPlan base, int at, MustDropConfig md, String vary, double t) {
    MustDropConfig c =
        switch (vary) {
          case "gamma" -> md.withThresholds(t, md.individualThr());
          case "alpha" -> md.withThresholds(md.globalThr(), t);
          default -> md.withThresholds(t, t * md.individualThr() / md.globalThr());
        };
    List<OperatorConfig> ops = new ArrayList<>(base.operators());
    ops.set(at, c);
    return CompressionPlan.of(ops);
  }

  private static Probe probe(
      VlmRuntime rt,
      CompressionPlan base,
      int at,
      MustDropConfig md,
      String vary,
      double t,
      ShapesVqaSource data,
      int start,
      int images,
      List<String> kinds,
      int maxNew,
      int workers,
      TreeMap<Double, Probe> probes) {
    Probe done = probes.get(t);
    if (done != null) {
      return done;
    }
    CompressionPlan plan = withThresholds(base, at, md, vary, t);
    MustDropConfig c = (MustDropConfig) plan.operators().get(at);
    EvalCommand.Evaluation e = new EvalCommand.Evaluation(rt, plan, kinds, false).quiet();
    long t0 = System.nanoTime();
    e.run(data, start, images, maxNew, workers);
    Probe p =
        new Probe(
            c.globalThr(),
            c.individualThr(),
            e.meanVisualTokensLayerAverage(),
            e.meanVisualTokensKept(),
            (System.nanoTime() - t0) / 1e9);
    probes.put(t, p);
    System.err.printf(
        "calibrate: gamma=%.6g alpha=%.6g -> visual tokens %.2f averaged over LM layers (%.2f into the LM)"
            + ", %.1f s%n",
        p.globalThr(), p.individualThr(), p.layerAverage(), p.intoLm(), p.seconds());
    return p;
  }

  /** Whether the counts never increase with the threshold (probes are ordered by it). */
  static boolean monotone(Iterable<Probe> byThreshold) {
    double last = Double.POSITIVE_INFINITY;
    for (Probe p : byThreshold) {
      if (p.layerAverage() > last + 1e-9) {
        return false;
      }
      last = p.layerAverage();
    }
    return true;
  }

  private static String toJson(
      Path bundle,
      String split,
      long seed,
      int start,
      int images,
      List<String> kinds,
      double target,
      String vary,
      TreeMap<Double, Probe> probes,
      Probe chosen,
      CompressionPlan plan) {
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    o.put("bundle", bundle.toAbsolutePath().toString());
    o.put("split", split);
    o.put("seed", seed);
    o.put("start", start);
    o.put("images", images);
    o.put("kinds", String.join(",", kinds));
    o.put("target_tokens", target);
    o.put("vary", vary);
    ArrayNode ps = o.putArray("probes");
    for (Probe p : probes.values()) {
      ObjectNode n = ps.addObject();
      n.put("global_thr", p.globalThr());
      n.put("individual_thr", p.individualThr());
      n.put("mean_visual_tokens_layer_average", EvalCommand.Evaluation.round(p.layerAverage()));
      n.put("mean_visual_tokens_kept", EvalCommand.Evaluation.round(p.intoLm()));
    }
    o.put("monotone", monotone(probes.values()));
    o.put("reached", chosen.layerAverage() <= target);
    o.put("global_thr", chosen.globalThr());
    o.put("individual_thr", chosen.individualThr());
    o.put("mean_visual_tokens_layer_average", EvalCommand.Evaluation.round(chosen.layerAverage()));
    o.put("mean_visual_tokens_kept", EvalCommand.Evaluation.round(chosen.intoLm()));
    o.put("plan", plan.toJson());
    try {
      return m.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
