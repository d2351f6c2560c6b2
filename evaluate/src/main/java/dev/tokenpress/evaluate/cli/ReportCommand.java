package dev.tokenpress.evaluate.cli;

import dev.tokenpress.evaluate.report.HtmlReport;
import dev.tokenpress.evaluate.report.PairedBootstrap;
import dev.tokenpress.evaluate.report.PlanSummary;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.UsageException;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code tokenpress report}: the HTML report ({@link HtmlReport}) of several {@code tokenpress
 * eval} runs on the same questions, each given by its summary (the JSON {@code eval} prints) and
 * its {@code --details} file; losses against the first run, which must be the empty plan, with 95 %
 * paired-bootstrap intervals ({@link PairedBootstrap}).
 */
public final class ReportCommand {
  public static final String USAGE =
      "report --runs LABEL=SUMMARY.json:DETAILS.jsonl,... --out REPORT.html [--title T]\n"
          + "         [--resamples 2000] [--seed 0]\n"
          + "  The HTML report of `eval` runs on the same questions: accuracy against kept visual tokens, FLOPs,\n"
          + "  KV bytes and ms per question, the Pareto fronts, per-kind tables, the plans with their hashes.\n"
          + "  Each run is its label, the JSON `eval` printed and the file its --details wrote; the first run\n"
          + "  must be the empty plan (the baseline of every loss and interval).";

  private static final Set<String> OPTIONS =
      Set.of("--runs", "--out", "--title", "--resamples", "--seed");
  private static final List<String> EXACT_KINDS = List.of("exists", "color", "count", "position");

  private ReportCommand() {}

  /** One {@code LABEL=SUMMARY:DETAILS} argument. */
  record Run(String label, Path summary, Path details) {
    static Run parse(String spec) {
      int eq = spec.indexOf('=');
      int colon = spec.lastIndexOf(':');
      if (eq <= 0 || colon < eq + 2 || colon == spec.length() - 1) {
        throw new UsageException(
            "--runs: each run is LABEL=SUMMARY.json:DETAILS.jsonl, found '" + spec + "'");
      }
      return new Run(
          spec.substring(0, eq),
          Path.of(spec.substring(eq + 1, colon)),
          Path.of(spec.substring(colon + 1)));
    }
  }

  public static String run(String[] argv) {
    Args a = new Args(argv, OPTIONS);
    if (!a.has("--runs")) {
      throw new UsageException("--runs is required");
    }
    List<Run> runs = new ArrayList<>();
    for (String spec : a.string("--runs", "").split(",")) {
      if (!spec.isBlank()) {
        runs.add(Run.parse(spec.trim()));
      }
    }
    if (runs.size() < 2) {
      throw new UsageException("--runs needs the empty plan and at least one other run");
    }
    Path out = a.path("--out");
    int resamples = a.integer("--resamples", 2000, 10, 1_000_000);
    int seed = a.integer("--seed", 0, 0, Integer.MAX_VALUE);

    List<Map<String, Object>> summaries = new ArrayList<>();
    List<Map<String, PairedBootstrap.Scored>> scored = new ArrayList<>();
    for (Run r : runs) {
      summaries.add(summary(r));
      scored.add(details(r));
    }
    Map<String, Object> base = summaries.get(0);
    if (!CompressionPlan.parse((String) base.get("plan")).isEmpty()) {
      throw new UsageException(
          "--runs: the first run ("
              + runs.get(0).label()
              + ") must be the empty plan [], found "
              + base.get("plan"));
    }
    for (int i = 1; i < runs.size(); i++) {
      for (String key : List.of("split", "seed", "start", "images", "kinds")) {
        if (!String.valueOf(summaries.get(i).get(key)).equals(String.valueOf(base.get(key)))) {
          throw new UsageException(
              "--runs: "
                  + runs.get(i).label()
                  + " has "
                  + key
                  + " "
                  + summaries.get(i).get(key)
                  + " but "
                  + runs.get(0).label()
                  + " has "
                  + base.get(key)
                  + "; compare runs on the same questions");
        }
      }
    }
    List<PlanSummary> plans = new ArrayList<>();
    for (int i = 0; i < runs.size(); i++) {
      PairedBootstrap.Result res;
      try {
        res = PairedBootstrap.compare(scored.get(0), scored.get(i), resamples, seed);
      } catch (IllegalArgumentException e) {
        throw new UsageException("--runs: " + runs.get(i).label() + ": " + e.getMessage());
      }
      plans.add(toPlanSummary(runs.get(i).label(), summaries.get(i), res, i == 0));
    }
    Map<String, String> context = new LinkedHashMap<>();
    context.put("model bundle", String.valueOf(base.get("bundle")));
    context.put(
        "questions",
        "ShapesVQA "
            + base.get("split")
            + " split (seed "
            + base.get("seed")
            + "), "
            + base.get("images")
            + " images from "
            + base.get("start")
            + ", kinds "
            + base.get("kinds"));
    context.put(
        "intervals",
        "95 % paired bootstrap over images, " + resamples + " resamples, seed " + seed);
    HtmlReport.write(out, a.string("--title", "tokenpress plans on ShapesVQA"), plans, context);
    Map<String, Object> o = new LinkedHashMap<>();
    o.put("report", out.toAbsolutePath().toString());
    o.put("plans", plans.size());
    return Json.write(o);
  }

  static PlanSummary toPlanSummary(
      String label, Map<String, Object> s, PairedBootstrap.Result res, boolean baseline) {
    CompressionPlan plan = CompressionPlan.parse((String) s.get("plan"));
    Map<String, Double> metrics = new LinkedHashMap<>();
    for (String key :
        List.of(
            "caption_object_f1",
            "chair",
            "mean_visual_tokens_layer_average",
            "object_patch_recall",
            "mean_generated_tokens")) {
      if (s.get(key) instanceof BigDecimal d) {
        metrics.put(key, d.doubleValue());
      }
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> flopsRatio = (Map<String, Object>) s.get("flops_ratio_vs_empty_plan");
    return new PlanSummary(
        label,
        plan.toJson(),
        plan.planHash(),
        number(s, "images").intValue(),
        number(s, "questions").intValue(),
        res.accuracy(),
        baseline ? null : res.loss(),
        res.accuracyByKind(),
        baseline ? Map.of() : res.lossByKind(),
        number(s, "mean_visual_tokens_kept").doubleValue(),
        flopsRatio == null ? Double.NaN : ((BigDecimal) flopsRatio.get("total")).doubleValue(),
        s.get("mean_kv_bytes") instanceof BigDecimal kv ? kv.doubleValue() : Double.NaN,
        number(s, "ms_per_question").doubleValue(),
        metrics);
  }

  private static BigDecimal number(Map<String, Object> s, String key) {
    if (s.get(key) instanceof BigDecimal d) {
      return d;
    }
    throw new UsageException(
        "the eval summary has no number '" + key + "' (is it the JSON `tokenpress eval` printed?)");
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> summary(Run r) {
    Object o;
    try {
      o = Json.parse(Files.readString(r.summary(), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UsageException("cannot read " + r.summary() + ": " + e.getMessage());
    } catch (IllegalArgumentException e) {
      throw new UsageException(r.summary() + " is not JSON: " + e.getMessage());
    }
    if (!(o instanceof Map<?, ?> m) || !(m.get("plan") instanceof String)) {
      throw new UsageException(r.summary() + " is not a `tokenpress eval` summary (no \"plan\")");
    }
    return (Map<String, Object>) m;
  }

  /** The exact-match questions of a {@code --details} file (captions have no {@code correct}). */
  static Map<String, PairedBootstrap.Scored> details(Run r) {
    Map<String, PairedBootstrap.Scored> out = new LinkedHashMap<>();
    List<String> lines;
    try {
      lines = Files.readAllLines(r.details(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UsageException("cannot read " + r.details() + ": " + e.getMessage());
    }
    int n = 0;
    for (String line : lines) {
      n++;
      if (line.isBlank()) {
        continue;
      }
      Object o;
      try {
        o = Json.parse(line);
      } catch (IllegalArgumentException e) {
        throw new UsageException(r.details() + " line " + n + " is not JSON: " + e.getMessage());
      }
      if (!(o instanceof Map<?, ?> d)
          || !(d.get("question_id") instanceof String id)
          || !(d.get("image") instanceof String image)
          || !(d.get("kind") instanceof String kind)) {
        throw new UsageException(r.details() + " line " + n + " is not an `eval --details` line");
      }
      if (!EXACT_KINDS.contains(kind) || !(d.get("correct") instanceof Boolean correct)) {
        continue;
      }
      out.put(id, new PairedBootstrap.Scored(image, kind, correct ? 1.0 : 0.0));
    }
    if (out.isEmpty()) {
      throw new UsageException(r.details() + " holds no exact-match question");
    }
    return out;
  }
}
