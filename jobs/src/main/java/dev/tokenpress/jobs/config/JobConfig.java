package dev.tokenpress.jobs.config;

import static dev.tokenpress.jobs.config.ConfigException.invalid;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.tokenpress.operators.api.CompressionPlan;
import java.util.Locale;
import java.util.Map;

/**
 * The {@code compress} job's configuration, bound from YAML by {@link ConfigLoader} (defaults, then
 * the file, then {@code --set} overrides) and validated here: every record checks its own fields
 * and names them in the error.
 *
 * @param spark session settings used only when {@code main} creates the session
 * @param input the corpus
 * @param model the model bundle and generation settings
 * @param plan the compression plan: a list of operator objects, e.g. {@code [{op: vtc-cls, keep:
 *     64}]}; empty = no compression
 * @param kv the KV cache output
 * @param output where and how results are written
 * @param run failure handling and progress
 */
public record JobConfig(
    SparkSection spark, Input input, Model model, JsonNode plan, Kv kv, Output output, Run run) {
  public JobConfig {
    if (plan == null || plan.isNull()) {
      plan = JsonNodeFactory.instance.arrayNode();
    }
    checkPlan(plan);
    require(spark, "spark");
    require(input, "input");
    require(model, "model");
    require(kv, "kv");
    require(output, "output");
    require(run, "run");
  }

  /**
   * What a plan looks like, for errors: a list of operator objects, with an example and the
   * operator names.
   */
  public static final String PLAN_HELP =
      "a plan is a YAML/JSON list of operator objects applied in order, e.g. "
          + "[{op: vtc-cls, keep: 64, layers: \"1..L-2\"}, {op: fastv, layer: 2, drop_ratio: 0.5}] "
          + "(on the command line: --set 'plan=[{op: fastv, layer: 2}]'), or [] for none; operators: "
          + String.join(", ", CompressionPlan.operatorNames());

  /** The plan's shape and operators (checks against the model come later, with the bundle). */
  private static void checkPlan(JsonNode plan) {
    if (!plan.isArray()) {
      String got =
          plan.isTextual()
              ? "the text '" + plan.asText() + "'"
              : plan.isObject()
                  ? "a single object (wrap it in [ ])"
                  : plan.getNodeType().name().toLowerCase(Locale.ROOT);
      throw invalid("plan", "must be a list of operators, got " + got + "; " + PLAN_HELP);
    }
    try {
      CompressionPlan.parse(ConfigLoader.canonicalJson(plan));
    } catch (IllegalArgumentException e) {
      throw invalid("plan", e.getMessage());
    }
  }

  private static void require(Object section, String name) {
    if (section == null) {
      throw invalid(name, "section is missing or null");
    }
  }

  /**
   * @param master master URL when not given by spark-submit (e.g. {@code local[2]})
   * @param appName application name
   * @param conf extra Spark properties
   */
  public record SparkSection(String master, String appName, Map<String, String> conf) {
    public SparkSection {
      conf = conf == null ? Map.of() : Map.copyOf(conf);
      if (appName == null || appName.isBlank()) {
        throw invalid("appName", "must not be empty");
      }
    }
  }

  /**
   * @param format directory, jsonl or parquet
   * @param path corpus directory or manifest file/directory
   * @param glob file-name filter for directory corpora (e.g. {@code *.{png,jpg}}); null = all files
   * @param globCaseSensitive match the glob's letters in their own case only; false (the default):
   *     {@code *.{png,jpg}} also matches {@code X.PNG} and {@code y.Jpg}
   * @param recursive descend into subdirectories of a directory corpus
   * @param prompt prompt for every record (directory corpora), or for manifest rows without one
   * @param maxBytes larger input files are {@code error} rows without being read
   * @param columns manifest column names
   */
  public record Input(
      InputFormat format,
      String path,
      String glob,
      boolean globCaseSensitive,
      boolean recursive,
      String prompt,
      long maxBytes,
      Columns columns) {
    public Input {
      if (format == null) {
        throw invalid("format", "is required; allowed values: " + Enums.allowed(InputFormat.class));
      }
      if (path == null || path.isBlank()) {
        throw invalid("path", "is required");
      }
      if (format == InputFormat.DIRECTORY && (prompt == null || prompt.isBlank())) {
        throw invalid("prompt", "is required for a directory corpus");
      }
      if (maxBytes < 1 || maxBytes > Integer.MAX_VALUE - 8) {
        throw invalid(
            "maxBytes", "must be in [1, " + (Integer.MAX_VALUE - 8) + "], got " + maxBytes);
      }
      if (columns == null) {
        throw invalid("columns", "section is missing or null");
      }
    }
  }

  /**
   * Names of the manifest columns holding each field (e.g. ShapesVQA's questions.jsonl uses {@code
   * path: image, prompt: question, reference: answer}). {@code path} and {@code bytes}: a row needs
   * one of them.
   */
  public record Columns(String id, String path, String bytes, String prompt, String reference) {
    public Columns {
      if (id == null || id.isBlank()) {
        throw invalid("id", "must name a column");
      }
    }
  }

  /**
   * @param bundle model bundle: local/shared directory, {@code --files}/{@code --archives} name, or
   *     Hadoop URI
   * @param maxNewTokens generation limit per record
   * @param seed job seed (per-record seeds derive from it and the id)
   * @param maxPixels images with more pixels are {@code error} rows
   * @param intraOpThreads ONNX Runtime intra-op threads per call; 0 = executor cores / task slots
   * @param sharedWorkers run the records of all of an executor's tasks on one shared pool of
   *     inference threads (so a task that ran out of records lends its core to the others) instead
   *     of each task's own thread
   * @param workers threads of that pool; 0 = the executor's task slots
   */
  public record Model(
      String bundle,
      int maxNewTokens,
      long seed,
      long maxPixels,
      int intraOpThreads,
      boolean sharedWorkers,
      int workers) {
    public Model {
      if (bundle == null || bundle.isBlank()) {
        throw invalid("bundle", "is required");
      }
      if (maxNewTokens < 1 || maxNewTokens > 4096) {
        throw invalid("maxNewTokens", "must be in [1, 4096], got " + maxNewTokens);
      }
      if (maxPixels < 1) {
        throw invalid("maxPixels", "must be >= 1, got " + maxPixels);
      }
      if (intraOpThreads < 0) {
        throw invalid("intraOpThreads", "must be >= 0 (0 = auto), got " + intraOpThreads);
      }
      if (workers < 0) {
        throw invalid("workers", "must be >= 0 (0 = the executor's task slots), got " + workers);
      }
    }
  }

  /**
   * @param enabled write {@code kv_cache/}
   * @param dtype precision of KV entries the plan leaves unquantised (float32, float16), or uniform
   *     ZipCache quantisation of the whole cache after prefill (int8, int4, int2)
   */
  public record Kv(boolean enabled, KvStorage dtype) {
    public Kv {
      if (dtype == null) {
        throw invalid("dtype", "is required; allowed values: " + Enums.allowed(KvStorage.class));
      }
    }
  }

  /**
   * @param path output directory (any Hadoop filesystem)
   * @param mode resume, overwrite or error-if-exists
   * @param zstdLevel Parquet zstd level
   * @param batchRows records per commit: a failure loses at most one batch of work
   * @param rowsPerTask target records per Spark task (smaller = better balance, more overhead)
   */
  public record Output(
      String path, OutputMode mode, int zstdLevel, long batchRows, int rowsPerTask) {
    public Output {
      if (path == null || path.isBlank()) {
        throw invalid("path", "is required");
      }
      if (mode == null) {
        throw invalid("mode", "is required; allowed values: " + Enums.allowed(OutputMode.class));
      }
      if (zstdLevel < 1 || zstdLevel > 22) {
        throw invalid("zstdLevel", "must be in [1, 22], got " + zstdLevel);
      }
      if (batchRows < 1) {
        throw invalid("batchRows", "must be >= 1, got " + batchRows);
      }
      if (rowsPerTask < 1) {
        throw invalid("rowsPerTask", "must be >= 1, got " + rowsPerTask);
      }
    }
  }

  /**
   * @param failFast fail the job on the first record error instead of writing an error row
   * @param progressIntervalSeconds seconds between progress lines on the driver
   */
  public record Run(boolean failFast, int progressIntervalSeconds) {
    public Run {
      if (progressIntervalSeconds < 1) {
        throw invalid("progressIntervalSeconds", "must be >= 1, got " + progressIntervalSeconds);
      }
    }
  }
}
