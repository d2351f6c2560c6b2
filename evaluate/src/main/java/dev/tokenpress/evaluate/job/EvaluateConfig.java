package dev.tokenpress.evaluate.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.tokenpress.datasets.Question;
import dev.tokenpress.datasets.ShapesVqa;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.api.CompressionPlan;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code evaluate} job's configuration, loaded like the compress job's ({@link ConfigLoader}:
 * {@code dev/tokenpress/evaluate/defaults.yaml}, then the file or the embedded {@code
 * conf/evaluate-demo.yaml}, then {@code --set} overrides), with the compress job's {@code spark},
 * {@code model} and {@code kv} sections.
 *
 * @param spark session settings used only when {@code main} creates the session
 * @param model the model bundle and generation settings
 * @param sample the labelled questions
 * @param plans plans to evaluate, each a list of operator objects; the empty plan (the baseline of
 *     every loss) is added first when missing
 * @param grid an operator with a list of values per key, expanded to one plan per combination
 * @param kv the KV precision the runtime keeps (KV bytes per record are measured in it)
 * @param output where results, summary and report go
 * @param report bootstrap and report settings
 */
public record EvaluateConfig(
    JobConfig.SparkSection spark,
    JobConfig.Model model,
    Sample sample,
    JsonNode plans,
    Grid grid,
    JobConfig.Kv kv,
    Output output,
    Report report) {
  static final String DEFAULTS = "dev/tokenpress/evaluate/defaults.yaml";
  static final String EMBEDDED_DEFAULT = "conf/evaluate-demo.yaml";

  public EvaluateConfig {
    require(spark, "spark");
    require(model, "model");
    require(sample, "sample");
    require(grid, "grid");
    require(kv, "kv");
    require(output, "output");
    require(report, "report");
    if (plans == null || plans.isNull()) {
      plans = JsonNodeFactory.instance.arrayNode();
    }
    if (!plans.isArray()) {
      throw new ConfigException(
          "plans",
          "must be a list of plans (each a list of operators, [] for none), got "
              + plans.getNodeType().name().toLowerCase(java.util.Locale.ROOT));
    }
    for (int i = 0; i < plans.size(); i++) {
      if (!plans.get(i).isArray()) {
        throw new ConfigException(
            "plans[" + i + "]",
            "must be a list of operators ([] for none); " + JobConfig.PLAN_HELP);
      }
      try {
        CompressionPlan.parse(ConfigLoader.canonicalJson(plans.get(i)));
      } catch (IllegalArgumentException e) {
        throw new ConfigException("plans[" + i + "]", e.getMessage());
      }
    }
  }

  /** Loads a config ({@code file} null: the embedded default). */
  public static EvaluateConfig load(java.nio.file.Path file, List<String> overrides) {
    return ConfigLoader.load(EvaluateConfig.class, DEFAULTS, EMBEDDED_DEFAULT, file, overrides);
  }

  private static void require(Object section, String name) {
    if (section == null) {
      throw new ConfigException(name, "section is missing or null");
    }
  }

  /** A plan to evaluate: a short label (from the operators' given settings) and the parsed plan. */
  public record LabelledPlan(String label, CompressionPlan plan) implements java.io.Serializable {}

  /**
   * The plans in order: the empty plan first, then {@code plans}, then the grid's; a plan equal to
   * an earlier one (same canonical form) is listed once.
   */
  public List<LabelledPlan> labelledPlans() {
    List<JsonNode> nodes = new ArrayList<>();
    nodes.add(JsonNodeFactory.instance.arrayNode());
    plans.forEach(nodes::add);
    if (grid.op() != null) {
      for (JsonNode op : grid.expand()) {
        ArrayNode plan = JsonNodeFactory.instance.arrayNode();
        plan.add(op);
        nodes.add(plan);
      }
    }
    Map<String, LabelledPlan> byHash = new LinkedHashMap<>();
    for (JsonNode n : nodes) {
      CompressionPlan p = CompressionPlan.parse(ConfigLoader.canonicalJson(n));
      byHash.putIfAbsent(p.planHash(), new LabelledPlan(label(n), p));
    }
    return List.copyOf(byHash.values());
  }

  /**
   * {@code empty}, or each operator as {@code op(key=value,...)} with the keys as given, joined by
   * {@code +}.
   */
  static String label(JsonNode plan) {
    if (plan.isEmpty()) {
      return "empty";
    }
    List<String> parts = new ArrayList<>();
    for (JsonNode op : plan) {
      List<String> kv = new ArrayList<>();
      op.fields()
          .forEachRemaining(
              e -> {
                if (!e.getKey().equals("op")) {
                  kv.add(
                      e.getKey()
                          + "="
                          + (e.getValue().isValueNode()
                              ? e.getValue().asText()
                              : e.getValue().toString()));
                }
              });
      parts.add(op.path("op").asText() + (kv.isEmpty() ? "" : "(" + String.join(",", kv) + ")"));
    }
    return String.join("+", parts);
  }

  /**
   * The labelled questions: a ShapesVQA split, generated deterministically from its seed (every
   * executor regenerates its images; nothing is read from disk), or a manifest of images with
   * questions and reference answers ({@link ManifestSample}); exactly one of {@code split} and
   * {@code manifest} (neither: split {@code val}).
   *
   * @param dataset {@code shapesvqa}
   * @param split {@code train}, {@code val} or {@code test}; null with a manifest
   * @param seed generator seed (1234: the bundled model's data)
   * @param images number of images (a split: default 100; a manifest: the first distinct images,
   *     default all)
   * @param start index of the first image (a split only)
   * @param kinds question kinds to ask (a split only; a manifest asks all its rows)
   * @param manifest a JSONL file ({@code .jsonl}/{@code .json}) or a Parquet file or folder, any
   *     Hadoop path
   */
  public record Sample(
      String dataset,
      String split,
      long seed,
      Integer images,
      int start,
      List<String> kinds,
      String manifest)
      implements java.io.Serializable {
    public Sample {
      if (manifest != null && manifest.isBlank()) {
        throw ConfigException.invalid(
            "manifest", "must be a JSONL or Parquet path, got an empty string");
      }
      if (manifest != null && split != null) {
        throw ConfigException.invalid(
            "manifest",
            "cannot be combined with sample.split '"
                + split
                + "': give a ShapesVQA split or a manifest, not both (set sample.split=null)");
      }
      if (manifest == null && split == null) {
        split = "val";
      }
      if (!"shapesvqa".equals(dataset)) {
        throw ConfigException.invalid("dataset", "must be shapesvqa, got '" + dataset + "'");
      }
      if (split != null && !ShapesVqa.SPLITS.contains(split)) {
        throw ConfigException.invalid(
            "split", "must be one of " + ShapesVqa.SPLITS + ", got '" + split + "'");
      }
      if (images == null && manifest == null) {
        images = 100;
      }
      if (images != null && (images < 1 || images > 1_000_000)) {
        throw ConfigException.invalid("images", "must be in [1, 1000000], got " + images);
      }
      if (start < 0) {
        throw ConfigException.invalid("start", "must be >= 0, got " + start);
      }
      if (kinds == null || kinds.isEmpty()) {
        throw ConfigException.invalid("kinds", "must name at least one of " + Question.KINDS);
      }
      Set<String> seen = new LinkedHashSet<>();
      for (String k : kinds) {
        if (!Question.KINDS.contains(k)) {
          throw ConfigException.invalid(
              "kinds", "unknown kind '" + k + "'; allowed: " + Question.KINDS);
        }
        seen.add(k);
      }
      kinds = List.copyOf(seen);
    }

    /** A ShapesVQA split of {@code images} images from {@code start}. */
    public Sample(
        String dataset, String split, long seed, int images, int start, List<String> kinds) {
      this(dataset, split, seed, (Integer) images, start, kinds, null);
    }

    /** Whether the questions come from a manifest (else from the ShapesVQA split). */
    public boolean isManifest() {
      return manifest != null;
    }

    /** One line for logs and the report. */
    public String describe() {
      return isManifest()
          ? "manifest " + manifest + (images == null ? "" : " (first " + images + " images)")
          : "ShapesVQA "
              + split
              + " (seed "
              + seed
              + "), "
              + images
              + " images from "
              + start
              + ", kinds "
              + String.join(",", kinds);
    }
  }

  /**
   * A grid over one operator's settings: one plan per combination of {@code values} (in key order),
   * each with {@code fixed} added.
   *
   * @param op the operator, or null for no grid
   * @param values key to list of values
   * @param fixed keys set in every plan
   */
  public record Grid(String op, Map<String, JsonNode> values, Map<String, JsonNode> fixed) {
    public Grid {
      values = values == null ? Map.of() : new LinkedHashMap<>(values);
      fixed = fixed == null ? Map.of() : new LinkedHashMap<>(fixed);
      if (op == null && (!values.isEmpty() || !fixed.isEmpty())) {
        throw ConfigException.invalid("op", "is required when grid.values or grid.fixed are set");
      }
      if (op != null && !CompressionPlan.operatorNames().contains(op)) {
        throw ConfigException.invalid(
            "op", "unknown operator '" + op + "'; operators: " + CompressionPlan.operatorNames());
      }
      for (Map.Entry<String, JsonNode> e : values.entrySet()) {
        if (!e.getValue().isArray() || e.getValue().isEmpty()) {
          throw ConfigException.invalid(
              "values." + e.getKey(), "must be a non-empty list of values");
        }
      }
      if (op != null) {
        int i = 0;
        for (JsonNode p : expand(op, values, fixed)) {
          try {
            CompressionPlan.parse("[" + ConfigLoader.canonicalJson(p) + "]");
          } catch (IllegalArgumentException e) {
            throw ConfigException.invalid(
                "values", "combination " + i + " " + p + ": " + e.getMessage());
          }
          i++;
        }
      }
    }

    /** The operator objects of every combination. */
    public List<JsonNode> expand() {
      return op == null ? List.of() : expand(op, values, fixed);
    }

    private static List<JsonNode> expand(
        String op, Map<String, JsonNode> values, Map<String, JsonNode> fixed) {
      List<com.fasterxml.jackson.databind.node.ObjectNode> out = new ArrayList<>();
      com.fasterxml.jackson.databind.node.ObjectNode first = JsonNodeFactory.instance.objectNode();
      first.put("op", op);
      fixed.forEach(first::set);
      out.add(first);
      for (Map.Entry<String, JsonNode> e : values.entrySet()) {
        List<com.fasterxml.jackson.databind.node.ObjectNode> next = new ArrayList<>();
        for (com.fasterxml.jackson.databind.node.ObjectNode partial : out) {
          for (JsonNode v : e.getValue()) {
            com.fasterxml.jackson.databind.node.ObjectNode c = partial.deepCopy();
            c.set(e.getKey(), v);
            next.add(c);
          }
        }
        out = next;
      }
      return List.copyOf(out);
    }
  }

  /**
   * @param path output directory: {@code results/} (Parquet, one row per plan and question), {@code
   *     summary.json}, {@code report.html}
   * @param overwrite replace an earlier evaluation's output there (only its own entries)
   */
  public record Output(String path, boolean overwrite) {
    public Output {
      if (path == null || path.isBlank()) {
        throw ConfigException.invalid("path", "is required");
      }
    }
  }

  /**
   * @param resamples paired-bootstrap resamples
   * @param seed bootstrap seed
   * @param title report title (default: from the model and sample)
   * @param progressIntervalSeconds seconds between progress lines on the driver while the (plan,
   *     question) evaluations run
   */
  public record Report(int resamples, long seed, String title, int progressIntervalSeconds) {
    public Report {
      if (resamples < 10 || resamples > 1_000_000) {
        throw ConfigException.invalid("resamples", "must be in [10, 1000000], got " + resamples);
      }
      if (progressIntervalSeconds < 1) {
        throw ConfigException.invalid(
            "progressIntervalSeconds", "must be >= 1, got " + progressIntervalSeconds);
      }
    }
  }
}
