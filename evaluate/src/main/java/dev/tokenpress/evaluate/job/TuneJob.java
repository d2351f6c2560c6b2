package dev.tokenpress.evaluate.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.tokenpress.jobs.compress.CompressJob;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.launch.JobLauncher;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.sql.SparkSession;

/**
 * {@code tune}: picks a plan under the user's constraints by successive halving on validation
 * images, then confirms it on held-out images. Each round is an {@link EvaluateJob} run of the
 * surviving candidates and the empty plan on the first {@code minImages * eta^r} validation images;
 * candidates are ranked feasible first (FLOPs ratio, KV bytes ratio and accuracy-loss estimate
 * within the constraints), then by the objective (accuracy, or FLOPs), and the best {@code ceil(n /
 * eta)} go on. The winner of the last round is evaluated with the empty plan on the held-out
 * sample. Writes under {@code output.path}: {@code rounds/round-<r>/} and {@code confirm/} (each an
 * evaluate output with its report), {@code tune.json} (every round's figures, the choice, the
 * confirmation and the (plan, question) evaluations spent against a full grid at the largest
 * sample) and {@code tuned.yaml} (the chosen plan as a compress-job config).
 */
public final class TuneJob {
  /** The job's own entries under {@code output.path}; nothing else there is ever deleted. */
  static final java.util.Set<String> OWNED =
      java.util.Set.of("rounds", "confirm", "tune.json", "tuned.yaml");

  private TuneJob() {}

  /** What the search chose and what it cost. */
  public record Result(
      String label,
      String planJson,
      boolean feasible,
      Map<String, Object> confirmation,
      long evaluations,
      long fullGridEvaluations,
      int rounds) {}

  public static void main(String[] args) {
    String usage =
        "usage: TuneJob [--config FILE.yaml] [--set key=value]... [--print-config]\n"
            + "  no --config: the embedded "
            + TuneConfig.EMBEDDED_DEFAULT
            + "\n"
            + "  --set constraints.flopsRatio=0.3 --set 'grid.values={keep: [32, 64]}' --set output.path=/tmp/tune";
    JobLauncher.main(
        args,
        usage,
        TuneConfig::load,
        TuneConfig::spark,
        c -> {},
        CompressJob.APP_DEFAULTS,
        "tune",
        (spark, c) -> run(spark, c, VlmProcessorFactory.INSTANCE, System.out));
  }

  /** One candidate and its latest figures. */
  private static final class Candidate {
    final JsonNode plan;
    final String label;
    final String hash;
    Map<String, Object> figures = Map.of();
    boolean feasible;

    Candidate(JsonNode plan) {
      this.plan = plan;
      this.label = EvaluateConfig.label(plan);
      this.hash = CompressionPlan.parse(ConfigLoader.canonicalJson(plan)).planHash();
    }

    double number(String key, double missing) {
      return figures.get(key) instanceof Number n ? n.doubleValue() : missing;
    }

    double loss() {
      @SuppressWarnings("unchecked")
      Map<String, Object> l = (Map<String, Object>) figures.get("loss");
      return l == null ? 0 : ((Number) l.get("estimate")).doubleValue();
    }
  }

  public static Result run(
      SparkSession spark, TuneConfig config, ProcessorFactory factory, PrintStream log) {
    List<Candidate> candidates = candidates(config);
    if (candidates.isEmpty()) {
      throw new ConfigException("grid", "the search space holds no plan besides the empty plan");
    }
    org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(config.output().path());
    FileSystem fs;
    try {
      fs = out.getFileSystem(spark.sparkContext().hadoopConfiguration());
      OwnedOutput.prepare(fs, out, OWNED, config.output().overwrite(), "tune");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot prepare " + out, e);
    }
    TuneConfig.Constraints c = config.constraints();
    TuneConfig.Halving h = config.halving();
    log.printf(
        "[tokenpress] tune: %d candidates, constraints %s, objective %s, successive halving eta=%d over %d..%d "
            + "validation images%n",
        candidates.size(), c.describe(), config.objective(), h.eta(), h.minImages(), h.maxImages());
    List<Candidate> alive = new ArrayList<>(candidates);
    List<Object> rounds = new ArrayList<>();
    long spent = 0;
    long perImageQuestions = 0;
    int images = h.minImages();
    int r = 0;
    while (true) {
      EvaluateConfig.Sample v = config.validation();
      EvaluateConfig.Sample sample =
          new EvaluateConfig.Sample(v.dataset(), v.split(), v.seed(), images, v.start(), v.kinds());
      ArrayNode plans = JsonNodeFactory.instance.arrayNode();
      alive.forEach(a -> plans.add(a.plan));
      log.printf(
          "[tokenpress] tune: round %d, %d candidates on %d images%n", r, alive.size(), images);
      EvaluateJob.Result res =
          EvaluateJob.run(
              spark,
              config.evaluation(
                  plans,
                  sample,
                  new org.apache.hadoop.fs.Path(out, "rounds/round-" + r).toString()),
              factory,
              log,
              "tune round " + r + ": " + alive.size() + " candidates x " + images + " images");
      spent += res.questions();
      perImageQuestions = res.questions() / Math.max(1, (long) (alive.size() + 1) * images);
      Map<String, Map<String, Object>> byHash = new LinkedHashMap<>();
      for (Map<String, Object> p : res.plans()) {
        byHash.put((String) p.get("plan_hash"), p);
      }
      Map<String, Object> empty = res.plans().get(0);
      double emptyKv =
          empty.get("mean_kv_bytes") instanceof Number n ? n.doubleValue() : Double.NaN;
      for (Candidate a : alive) {
        a.figures = byHash.get(a.hash);
        double kvRatio = a.number("mean_kv_bytes", Double.NaN) / emptyKv;
        a.feasible =
            (c.flopsRatio() == null
                    || a.number("flops_ratio", Double.POSITIVE_INFINITY) <= c.flopsRatio())
                && (c.kvBytesRatio() == null || kvRatio <= c.kvBytesRatio())
                && (c.maxAccuracyLoss() == null || a.loss() <= c.maxAccuracyLoss());
      }
      alive.sort(order(config.objective()));
      boolean last = alive.size() == 1 || images >= h.maxImages();
      int keep = last ? 1 : Math.max(1, (alive.size() + h.eta() - 1) / h.eta());
      List<Object> rows = new ArrayList<>();
      for (int i = 0; i < alive.size(); i++) {
        Candidate a = alive.get(i);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("label", a.label);
        m.put("plan_hash", a.hash);
        m.put("accuracy", a.figures.get("accuracy"));
        m.put("loss", a.figures.get("loss"));
        m.put("flops_ratio", a.figures.get("flops_ratio"));
        m.put("mean_kv_bytes", a.figures.get("mean_kv_bytes"));
        m.put("feasible", a.feasible);
        m.put("kept", i < keep);
        rows.add(m);
      }
      Map<String, Object> round = new LinkedHashMap<>();
      round.put("round", r);
      round.put("images", images);
      round.put("evaluations", res.questions());
      round.put("candidates", rows);
      rounds.add(round);
      alive = new ArrayList<>(alive.subList(0, keep));
      if (last || alive.size() == 1) {
        break;
      }
      images = (int) Math.min((long) images * h.eta(), h.maxImages());
      r++;
    }
    Candidate best = alive.get(0);
    log.printf(
        Locale.ROOT,
        "[tokenpress] tune: chose %s (%s on validation)%n",
        best.label,
        best.feasible ? "meets the constraints" : "NO candidate met the constraints; the best is");
    ArrayNode one = JsonNodeFactory.instance.arrayNode();
    one.add(best.plan);
    EvaluateJob.Result confirm =
        EvaluateJob.run(
            spark,
            config.evaluation(
                one, config.holdout(), new org.apache.hadoop.fs.Path(out, "confirm").toString()),
            factory,
            log,
            "tune: held-out confirmation");
    Map<String, Object> confirmation = confirm.plans().get(confirm.plans().size() - 1);
    long full = (long) (candidates.size() + 1) * h.maxImages() * perImageQuestions;

    Map<String, Object> tune = new LinkedHashMap<>();
    tune.put("constraints", c.describe());
    tune.put("objective", config.objective());
    tune.put(
        "halving", Map.of("eta", h.eta(), "minImages", h.minImages(), "maxImages", h.maxImages()));
    tune.put("candidates", candidates.size());
    tune.put("rounds", rounds);
    tune.put(
        "chosen",
        Map.of(
            "label",
            best.label,
            "plan",
            ConfigLoader.canonicalJson(best.plan),
            "meets_constraints_on_validation",
            best.feasible));
    tune.put("confirmation", confirmation);
    tune.put(
        "confirmation_sample",
        Map.of(
            "split",
            config.holdout().split(),
            "images",
            config.holdout().images(),
            "start",
            config.holdout().start()));
    tune.put("evaluations", spent);
    tune.put("full_grid_evaluations", full);
    try {
      OwnedOutput.write(fs, new org.apache.hadoop.fs.Path(out, "tune.json"), Json.write(tune));
      OwnedOutput.write(
          fs,
          new org.apache.hadoop.fs.Path(out, "tuned.yaml"),
          tunedYaml(config, best, confirmation));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write to " + out, e);
    }
    log.printf(
        Locale.ROOT,
        "[tokenpress] tune: confirmed on %d %s images: accuracy %.4f, loss vs empty %s, FLOPs ratio "
            + "%.3f%n",
        config.holdout().images(),
        config.holdout().split(),
        ((Number) confirmation.get("accuracy")).doubleValue(),
        EvaluateJob.intervalText(confirmation.get("loss")),
        ((Number) confirmation.get("flops_ratio")).doubleValue());
    log.printf(
        "[tokenpress] tune: %d (plan, question) evaluations, a full grid at %d images: %d (%.2fx)%n",
        spent, h.maxImages(), full, spent / (double) Math.max(1, full));
    log.printf(
        "[tokenpress] tune: %s, %s%n",
        new org.apache.hadoop.fs.Path(out, "tuned.yaml"),
        new org.apache.hadoop.fs.Path(out, "confirm/report.html"));
    return new Result(
        best.label,
        ConfigLoader.canonicalJson(best.plan),
        best.feasible,
        confirmation,
        spent,
        full,
        r + 1);
  }

  /** Feasible first, then the objective; ties by the other figure, then by label. */
  private static Comparator<Candidate> order(String objective) {
    Comparator<Candidate> feasibleFirst = Comparator.comparing(a -> !a.feasible);
    Comparator<Candidate> acc = Comparator.comparingDouble(a -> -a.number("accuracy", 0));
    Comparator<Candidate> flops =
        Comparator.comparingDouble(a -> a.number("flops_ratio", Double.POSITIVE_INFINITY));
    Comparator<Candidate> main =
        objective.equals("flops") ? flops.thenComparing(acc) : acc.thenComparing(flops);
    return feasibleFirst.thenComparing(main).thenComparing(a -> a.label);
  }

  private static List<Candidate> candidates(TuneConfig config) {
    List<Candidate> out = new ArrayList<>();
    java.util.Set<String> seen = new java.util.HashSet<>();
    seen.add(CompressionPlan.empty().planHash());
    List<JsonNode> nodes = new ArrayList<>();
    config.plans().forEach(nodes::add);
    for (JsonNode op : config.grid().expand()) {
      ArrayNode p = JsonNodeFactory.instance.arrayNode();
      p.add(op);
      nodes.add(p);
    }
    for (JsonNode n : nodes) {
      Candidate cand;
      try {
        cand = new Candidate(n);
      } catch (IllegalArgumentException e) {
        throw new ConfigException("plans", e.getMessage());
      }
      if (seen.add(cand.hash)) {
        out.add(cand);
      }
    }
    return out;
  }

  private static String tunedYaml(
      TuneConfig config, Candidate best, Map<String, Object> confirmation) {
    return "# Chosen by the tokenpress tune job ("
        + config.constraints().describe()
        + ", objective "
        + config.objective()
        + ")"
        + (best.feasible ? "" : " -- NO candidate met the constraints on validation")
        + ".\n"
        + "# Confirmed on "
        + config.holdout().images()
        + " "
        + config.holdout().split()
        + " images: accuracy "
        + confirmation.get("accuracy")
        + ", loss against the empty plan "
        + confirmation.get("loss")
        + ", FLOPs ratio "
        + confirmation.get("flops_ratio")
        + ".\n"
        + "# Use it with: bin/tokenpress-compress --config this-file --set input.path=... --set output.path=...\n"
        + "model:\n  bundle: "
        + config.model().bundle()
        + "\n  maxNewTokens: "
        + config.model().maxNewTokens()
        + "\n"
        + "plan: "
        + ConfigLoader.canonicalJson(best.plan)
        + "\n";
  }
}
