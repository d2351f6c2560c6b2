package dev.tokenpress.evaluate.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import java.util.List;

/**
 * The {@code tune} job's configuration (loaded like {@link EvaluateConfig}: {@code
 * dev/tokenpress/evaluate/tune-defaults.yaml}, the file or the embedded {@code
 * conf/tune-demo.yaml}, {@code --set} overrides).
 *
 * @param spark session settings used only when {@code main} creates the session
 * @param model the model bundle and generation settings
 * @param grid the search space: one operator, a list of values per key
 * @param plans further candidate plans (each a list of operators)
 * @param constraints limits a chosen plan must meet
 * @param objective {@code accuracy} (the most accurate feasible plan) or {@code flops} (the
 *     cheapest feasible plan)
 * @param halving successive-halving schedule over validation sample sizes
 * @param validation where candidates are compared (its first {@code images} images are the pool)
 * @param holdout where the chosen plan is confirmed against the empty plan
 * @param kv KV precision of the runtime
 * @param output where rounds, the confirmation, the chosen config and the report go
 * @param report bootstrap and report settings
 */
public record TuneConfig(
    JobConfig.SparkSection spark,
    JobConfig.Model model,
    EvaluateConfig.Grid grid,
    JsonNode plans,
    Constraints constraints,
    String objective,
    Halving halving,
    EvaluateConfig.Sample validation,
    EvaluateConfig.Sample holdout,
    JobConfig.Kv kv,
    EvaluateConfig.Output output,
    EvaluateConfig.Report report) {
  static final String DEFAULTS = "dev/tokenpress/evaluate/tune-defaults.yaml";
  static final String EMBEDDED_DEFAULT = "conf/tune-demo.yaml";
  static final List<String> OBJECTIVES = List.of("accuracy", "flops");

  public TuneConfig {
    for (Object[] s :
        new Object[][] {
          {spark, "spark"},
          {model, "model"},
          {grid, "grid"},
          {constraints, "constraints"},
          {halving, "halving"},
          {validation, "validation"},
          {holdout, "holdout"},
          {kv, "kv"},
          {output, "output"},
          {report, "report"}
        }) {
      if (s[0] == null) {
        throw new ConfigException((String) s[1], "section is missing or null");
      }
    }
    if (plans == null || plans.isNull()) {
      plans = JsonNodeFactory.instance.arrayNode();
    }
    if (!OBJECTIVES.contains(objective)) {
      throw new ConfigException(
          "objective", "must be one of " + OBJECTIVES + ", got '" + objective + "'");
    }
    if (grid.op() == null && plans.isEmpty()) {
      throw new ConfigException("grid.op", "is required (or list candidate plans under plans)");
    }
    if (halving.maxImages() > validation.images()) {
      throw new ConfigException(
          "halving.maxImages",
          "must be <= validation.images (" + validation.images() + "), got " + halving.maxImages());
    }
    if (validation.split().equals(holdout.split())
        && validation.seed() == holdout.seed()
        && validation.start() < holdout.start() + holdout.images()
        && holdout.start() < validation.start() + validation.images()) {
      throw new ConfigException(
          "holdout",
          "overlaps the validation images ("
              + validation.split()
              + " "
              + validation.start()
              + ".."
              + (validation.start() + validation.images() - 1)
              + "); a plan must be confirmed "
              + "on images it was not chosen on");
    }
  }

  /** Loads a config ({@code file} null: the embedded default). */
  public static TuneConfig load(java.nio.file.Path file, List<String> overrides) {
    return ConfigLoader.load(TuneConfig.class, DEFAULTS, EMBEDDED_DEFAULT, file, overrides);
  }

  /** The evaluate-job view of one round or of the confirmation: these plans on this sample. */
  EvaluateConfig evaluation(JsonNode plansNode, EvaluateConfig.Sample sample, String path) {
    return new EvaluateConfig(
        spark,
        model,
        sample,
        plansNode,
        new EvaluateConfig.Grid(null, null, null),
        kv,
        new EvaluateConfig.Output(path, true),
        report);
  }

  /**
   * Limits on the chosen plan (null: no limit).
   *
   * @param flopsRatio largest FLOPs ratio to the empty plan
   * @param kvBytesRatio largest KV bytes ratio to the empty plan
   * @param maxAccuracyLoss largest accuracy loss (estimate) against the empty plan
   */
  public record Constraints(Double flopsRatio, Double kvBytesRatio, Double maxAccuracyLoss) {
    public Constraints {
      check(flopsRatio, "flopsRatio");
      check(kvBytesRatio, "kvBytesRatio");
      if (maxAccuracyLoss != null && !(maxAccuracyLoss >= 0 && maxAccuracyLoss <= 1)) {
        throw ConfigException.invalid(
            "maxAccuracyLoss", "must be in [0, 1], got " + maxAccuracyLoss);
      }
    }

    private static void check(Double v, String name) {
      if (v != null && !(v > 0)) {
        throw ConfigException.invalid(name, "must be > 0, got " + v);
      }
    }

    /** The constraints as text, e.g. {@code flopsRatio <= 0.3, maxAccuracyLoss <= 0.01}. */
    String describe() {
      StringBuilder b = new StringBuilder();
      if (flopsRatio != null) {
        b.append("flopsRatio <= ").append(flopsRatio);
      }
      if (kvBytesRatio != null) {
        b.append(b.length() > 0 ? ", " : "").append("kvBytesRatio <= ").append(kvBytesRatio);
      }
      if (maxAccuracyLoss != null) {
        b.append(b.length() > 0 ? ", " : "").append("maxAccuracyLoss <= ").append(maxAccuracyLoss);
      }
      return b.length() == 0 ? "none" : b.toString();
    }
  }

  /**
   * Successive halving: round r evaluates the surviving candidates on the first {@code minImages *
   * eta^r} validation images (at most {@code maxImages}) and keeps the best {@code ceil(n / eta)};
   * it ends when one candidate is left or {@code maxImages} was used.
   *
   * @param eta reduction factor (>= 2)
   * @param minImages images of the first round
   * @param maxImages images of the last round
   */
  public record Halving(int eta, int minImages, int maxImages) {
    public Halving {
      if (eta < 2 || eta > 100) {
        throw ConfigException.invalid("eta", "must be in [2, 100], got " + eta);
      }
      if (minImages < 1) {
        throw ConfigException.invalid("minImages", "must be >= 1, got " + minImages);
      }
      if (maxImages < minImages) {
        throw ConfigException.invalid(
            "maxImages", "must be >= minImages (" + minImages + "), got " + maxImages);
      }
    }
  }
}
