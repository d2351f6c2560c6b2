package dev.tokenpress.evaluate.job;

import dev.tokenpress.datasets.Scene;
import dev.tokenpress.datasets.SceneObject;
import dev.tokenpress.evaluate.eval.AnswerScoring;
import dev.tokenpress.evaluate.eval.ShapesVqaSource;
import dev.tokenpress.evaluate.report.HtmlReport;
import dev.tokenpress.evaluate.report.Interval;
import dev.tokenpress.evaluate.report.PairedBootstrap;
import dev.tokenpress.evaluate.report.PlanSummary;
import dev.tokenpress.jobs.compress.CompressJob;
import dev.tokenpress.jobs.compress.RuntimeFactories;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.launch.JobLauncher;
import dev.tokenpress.jobs.launch.Progress;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.LongAccumulator;

/**
 * {@code evaluate}: several compression plans over a labelled sample in one Spark job. Every image
 * is a work item that runs all plans on all its questions in one call, so that they share the image
 * decode, one vision pass (plans without a ViT operator) and one LM prefix prefill per group of
 * equal prefixes ({@link EvaluatePartitionFunction}); each executor loads the model once (the
 * runtime cache is keyed by the model) and runs every plan on it. Writes to {@code output.path}:
 * {@code results/} (Parquet, one row per plan and question: answer, correctness, kept tokens,
 * FLOPs, KV bytes, milliseconds, error), {@code summary.json} (per plan: accuracy per kind, loss
 * against the empty plan with 95 % paired-bootstrap intervals, POPE metrics of the {@code exists}
 * questions (an answer is "yes" unless it says no/not, as POPE reads it), caption F1 and CHAIR,
 * mean kept tokens, FLOPs ratio, KV bytes and ms per question) and {@code report.html} ({@link
 * HtmlReport}).
 *
 * <p>The FLOPs ratio is the plan's analytic FLOPs over the empty plan's on the same questions (both
 * as run, so a plan that changes the answers' length changes its ratio too). A question that failed
 * counts as wrong and is reported in {@code errors}.
 */
public final class EvaluateJob {
  /** The job's own entries under {@code output.path}; nothing else there is ever deleted. */
  static final Set<String> OWNED = Set.of("results", "summary.json", "report.html");

  /** Why a manifest sample has no POPE/CHAIR/caption-object figures. */
  static final String NO_OBJECT_METRICS =
      "POPE, CHAIR and caption object F1: they need ShapesVQA's object "
          + "annotations, which a manifest does not have (its questions are scored by exact match only)";

  private EvaluateJob() {}

  /** What a run produced. */
  public record Result(
      List<Map<String, Object>> plans, long questions, long errors, String reportPath) {}

  public static void main(String[] args) {
    JobLauncher.main(
        args,
        usage(),
        EvaluateConfig::load,
        EvaluateConfig::spark,
        c -> {},
        CompressJob.APP_DEFAULTS,
        "evaluate",
        (spark, c) -> run(spark, c, VlmProcessorFactory.INSTANCE, System.out));
  }

  static String usage() {
    return "usage: EvaluateJob [--config FILE.yaml] [--set key=value]... [--print-config]\n"
        + "  no --config: the embedded "
        + EvaluateConfig.EMBEDDED_DEFAULT
        + "\n"
        + "  --set sample.images=300 --set 'plans=[[], [{op: fastv, layer: 2, keep: 64}]]' --set output.path=/tmp/eval";
  }

  /** Runs the evaluation; progress and the per-plan table go to {@code log}. */
  public static Result run(
      SparkSession spark, EvaluateConfig config, ProcessorFactory factory, PrintStream log) {
    return run(spark, config, factory, log, "");
  }

  /**
   * {@link #run(SparkSession, EvaluateConfig, ProcessorFactory, PrintStream)} with {@code phase}
   * appended to its progress lines (the tune job's round).
   */
  static Result run(
      SparkSession spark,
      EvaluateConfig config,
      ProcessorFactory factory,
      PrintStream log,
      String phase) {
    List<EvaluateConfig.LabelledPlan> plans = config.labelledPlans();
    ProcessorSpec spec =
        new ProcessorSpec(
            RuntimeFactories.resolveBundle(config.model().bundle()),
            config.model().maxNewTokens(),
            config.model().seed(),
            config.model().maxPixels(),
            config.model().intraOpThreads(),
            config.kv().dtype().precision());
    for (EvaluateConfig.LabelledPlan p : plans) {
      try {
        factory.checkPlan(spec, p.plan());
      } catch (IllegalArgumentException e) {
        throw new ConfigException("plans", p.label() + ": " + e.getMessage());
      }
    }
    EvaluateConfig.Sample sample = config.sample();
    // a manifest is read and checked before the output is touched
    List<Row> work = new ArrayList<>();
    if (sample.isManifest()) {
      for (ManifestSample.Image image :
          ManifestSample.read(spark, sample.manifest(), sample.images())) {
        work.add(RowFactory.create(image.index(), image));
      }
    } else {
      for (int i = sample.start(); i < sample.start() + sample.images(); i++) {
        work.add(RowFactory.create(i));
      }
    }
    org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(config.output().path());
    FileSystem fs;
    try {
      fs = out.getFileSystem(spark.sparkContext().hadoopConfiguration());
      OwnedOutput.prepare(fs, out, OWNED, config.output().overwrite(), "evaluate");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot prepare " + out, e);
    }
    long total = plans.size() * questionCount(sample, work);
    log.printf(
        "[tokenpress] evaluate: %d plans x %d images of %s: %d (plan, question) evaluations%n",
        plans.size(), work.size(), sample.describe(), total);
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    int partitions = Math.max(1, Math.min(work.size(), jsc.defaultParallelism() * 4));
    long t0 = System.nanoTime();
    LongAccumulator okAcc = spark.sparkContext().longAccumulator("tokenpress.evaluate.ok");
    LongAccumulator errAcc = spark.sparkContext().longAccumulator("tokenpress.evaluate.errors");
    JavaRDD<Row> rows =
        jsc.parallelize(work, partitions)
            .mapPartitions(
                new EvaluatePartitionFunction(
                    factory,
                    spec,
                    plans,
                    sample,
                    sample.isManifest()
                        ? new org.apache.spark.util.SerializableConfiguration(
                            spark.sparkContext().hadoopConfiguration())
                        : null,
                    okAcc,
                    errAcc));
    Dataset<Row> results = spark.createDataFrame(rows, EvaluatePartitionFunction.SCHEMA).cache();
    Progress progress =
        new Progress(
            okAcc, errAcc, 0, total, config.report().progressIntervalSeconds(), "questions", log);
    progress.phase(phase);
    spark.sparkContext().addSparkListener(progress);
    try {
      results
          .write()
          .mode("errorifexists")
          .parquet(new org.apache.hadoop.fs.Path(out, "results").toString());
      List<Row> collected = results.collectAsList();
      spark.sparkContext().removeSparkListener(progress);
      progress.close();
      log.println(progress.finalLine());
      double seconds = (System.nanoTime() - t0) / 1e9;
      Summaries s = new Summaries(plans, sample, work.size(), collected, config.report());
      List<Map<String, Object>> planSummaries = s.plans();
      Map<String, Object> summary = new LinkedHashMap<>();
      summary.put("model_bundle", spec.bundle());
      Map<String, Object> sampleInfo = new LinkedHashMap<>();
      if (sample.isManifest()) {
        sampleInfo.put("manifest", sample.manifest());
        sampleInfo.put("images", work.size());
      } else {
        sampleInfo.put("dataset", sample.dataset());
        sampleInfo.put("split", sample.split());
        sampleInfo.put("seed", sample.seed());
        sampleInfo.put("images", sample.images());
        sampleInfo.put("start", sample.start());
        sampleInfo.put("kinds", sample.kinds());
      }
      summary.put("sample", sampleInfo);
      if (sample.isManifest()) {
        summary.put("skipped", NO_OBJECT_METRICS);
      }
      summary.put("questions", (long) collected.size());
      summary.put("errors", s.errors());
      summary.put("wall_seconds", Math.round(seconds * 10) / 10.0);
      summary.put(
          "bootstrap",
          Map.of("resamples", config.report().resamples(), "seed", config.report().seed()));
      summary.put("plans", planSummaries);
      OwnedOutput.write(
          fs, new org.apache.hadoop.fs.Path(out, "summary.json"), Json.write(summary));
      String title =
          config.report().title() != null
              ? config.report().title()
              : "tokenpress evaluate: "
                  + plans.size()
                  + " plans on "
                  + (sample.isManifest()
                      ? "manifest " + sample.manifest()
                      : "ShapesVQA " + sample.split());
      Map<String, String> context = new LinkedHashMap<>();
      context.put("model bundle", spec.bundle());
      context.put(
          "sample",
          sample.describe() + (sample.isManifest() ? ", " + work.size() + " images" : ""));
      if (sample.isManifest()) {
        context.put("skipped", NO_OBJECT_METRICS);
      }
      context.put(
          "intervals",
          "95 % paired bootstrap over images, " + config.report().resamples() + " resamples");
      context.put(
          "questions",
          collected.size()
              + " (plan, question) pairs, "
              + s.errors()
              + " errors, "
              + String.format(java.util.Locale.ROOT, "%.1f", seconds)
              + " s");
      String html = HtmlReport.render(title, s.reportRows(), context);
      org.apache.hadoop.fs.Path report = new org.apache.hadoop.fs.Path(out, "report.html");
      OwnedOutput.write(fs, report, html);
      log.printf(
          "[tokenpress] evaluate: %d questions in %.1f s, %d errors%n",
          collected.size(), seconds, s.errors());
      for (Map<String, Object> p : planSummaries) {
        log.printf(
            java.util.Locale.ROOT,
            "[tokenpress]   %-40s accuracy %s  loss %s  tokens %s  FLOPs ratio %s%n",
            p.get("label"),
            fmt(p.get("accuracy"), "%.4f"),
            p.get("loss") == null ? "-" : intervalText(p.get("loss")),
            fmt(p.get("mean_visual_tokens_kept"), "%.1f"),
            fmt(p.get("flops_ratio"), "%.3f"));
      }
      log.printf("[tokenpress] report: %s%n", report);
      return new Result(planSummaries, collected.size(), s.errors(), report.toString());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write to " + out, e);
    } finally {
      spark.sparkContext().removeSparkListener(progress);
      progress.close();
      results.unpersist();
    }
  }

  /**
   * (plan, question) pairs per plan: the manifest's rows, or the split images' questions of the
   * sample's kinds.
   */
  private static long questionCount(EvaluateConfig.Sample sample, List<Row> work) {
    long n = 0;
    if (sample.isManifest()) {
      for (Row w : work) {
        n += ((ManifestSample.Image) w.get(1)).items().size();
      }
      return n;
    }
    ShapesVqaSource data = new ShapesVqaSource(sample.seed(), 128, sample.split());
    for (Row w : work) {
      n += EvaluatePartitionFunction.questions(data, sample, w.getInt(0)).size();
    }
    return n;
  }

  private static String fmt(Object v, String format) {
    return v == null ? "-" : String.format(java.util.Locale.ROOT, format, v);
  }

  /**
   * An interval map ({@code estimate}, {@code lo}, {@code hi}) as {@code +0.0123 [+0.0010,
   * +0.0240]}; "-" if null.
   */
  @SuppressWarnings("unchecked")
  static String intervalText(Object o) {
    if (o == null) {
      return "-";
    }
    Map<String, Object> m = (Map<String, Object>) o;
    return String.format(
        java.util.Locale.ROOT, "%+.4f [%+.4f, %+.4f]", m.get("estimate"), m.get("lo"), m.get("hi"));
  }

  /** Per-plan figures from the collected rows (driver side). */
  static final class Summaries {
    private final List<EvaluateConfig.LabelledPlan> plans;
    private final List<PlanSummary> reportRows = new ArrayList<>();
    private final List<Map<String, Object>> summaries = new ArrayList<>();
    private long errors;

    Summaries(
        List<EvaluateConfig.LabelledPlan> plans,
        EvaluateConfig.Sample sample,
        int images,
        List<Row> rows,
        EvaluateConfig.Report report) {
      this.plans = plans;
      int n = plans.size();
      List<Map<String, PairedBootstrap.Scored>> exact = new ArrayList<>();
      List<Map<String, Long>> flops = new ArrayList<>();
      List<AnswerScoring.CaptionTally> captions = new ArrayList<>();
      List<AnswerScoring.PopeTally> pope = new ArrayList<>();
      double[] kept = new double[n];
      double[] ms = new double[n];
      double[] kv = new double[n];
      long[] kvCount = new long[n];
      double[][] share = new double[n][];
      long[] shareCount = new long[n];
      long[] count = new long[n];
      long[] errs = new long[n];
      for (int p = 0; p < n; p++) {
        exact.add(new LinkedHashMap<>());
        flops.add(new LinkedHashMap<>());
        captions.add(new AnswerScoring.CaptionTally());
        pope.add(new AnswerScoring.PopeTally());
      }
      // POPE and CHAIR need the scene's objects: only a ShapesVQA split has them
      ShapesVqaSource data =
          sample.isManifest() ? null : new ShapesVqaSource(sample.seed(), 128, sample.split());
      for (Row r : rows) {
        int p = r.getInt(0);
        String qid = r.getString(5);
        String kind = r.getString(6);
        count[p]++;
        ms[p] += r.getDouble(18);
        boolean failed = !r.isNullAt(19);
        if (failed) {
          errs[p]++;
        } else {
          kept[p] += r.getInt(12);
          flops.get(p).put(qid, r.getLong(13) + r.getLong(14) + r.getLong(15));
          if (!r.isNullAt(17)) {
            kv[p] += r.getLong(17);
            kvCount[p]++;
          }
          if (!r.isNullAt(20)) {
            List<Double> s = r.getList(20);
            if (share[p] == null) {
              share[p] = new double[s.size()];
            }
            for (int l = 0; l < Math.min(s.size(), share[p].length); l++) {
              share[p][l] += s.get(l);
            }
            shareCount[p]++;
          }
        }
        if (kind.equals("caption")) {
          if (!failed && data != null) {
            Scene scene = data.scene(r.getInt(3));
            List<AnswerScoring.CaptionObject> truth = new ArrayList<>();
            for (SceneObject o : scene.objects()) {
              truth.add(
                  new AnswerScoring.CaptionObject(
                      o.sizeName(), o.colorName(), o.shapeName(), o.positionName()));
            }
            captions.get(p).add(AnswerScoring.parseCaption(r.getString(9)), truth);
          }
        } else {
          boolean correct = !failed && r.getBoolean(10);
          if (kind.equals("exists") && !failed && data != null) {
            pope.get(p)
                .add(AnswerScoring.popeYes(r.getString(8)), AnswerScoring.popeYes(r.getString(9)));
          }
          exact.get(p).put(qid, new PairedBootstrap.Scored(r.getString(4), kind, correct ? 1 : 0));
        }
      }
      for (long e : errs) {
        errors += e;
      }
      boolean hasExact = !exact.get(0).isEmpty();
      for (int p = 0; p < n; p++) {
        EvaluateConfig.LabelledPlan plan = plans.get(p);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("label", plan.label());
        m.put("plan", plan.plan().toJson());
        m.put("plan_hash", plan.plan().planHash());
        m.put("questions", count[p]);
        m.put("errors", errs[p]);
        PairedBootstrap.Result res =
            hasExact
                ? PairedBootstrap.compare(
                    exact.get(0), exact.get(p), report.resamples(), report.seed())
                : null;
        m.put("accuracy", res == null ? null : res.accuracy());
        m.put("accuracy_by_kind", res == null ? Map.of() : res.accuracyByKind());
        m.put("loss", p == 0 || res == null ? null : interval(res.loss()));
        Map<String, Object> lk = new LinkedHashMap<>();
        if (p > 0 && res != null) {
          res.lossByKind().forEach((k, v) -> lk.put(k, interval(v)));
        }
        m.put("loss_by_kind", lk);
        if (data != null && sample.kinds().contains("caption")) {
          m.put("caption_object_f1", captions.get(p).f1());
          m.put("chair", captions.get(p).chair());
        }
        AnswerScoring.PopeTally pt = pope.get(p);
        if (pt.questions() > 0) {
          Map<String, Object> pm = new LinkedHashMap<>();
          pm.put("questions", pt.questions());
          pm.put("accuracy", pt.accuracy());
          pm.put("precision", pt.precision());
          pm.put("recall", pt.recall());
          pm.put("f1", pt.f1());
          pm.put("yes_ratio", pt.yesRatio());
          m.put("pope", pm);
        }
        long ok = count[p] - errs[p];
        m.put("mean_visual_tokens_kept", ok == 0 ? null : kept[p] / ok);
        m.put("flops_ratio", flopsRatio(flops.get(0), flops.get(p)));
        m.put("mean_kv_bytes", kvCount[p] == 0 ? null : kv[p] / kvCount[p]);
        if (share[p] != null) {
          List<Double> mean = new ArrayList<>();
          for (double x : share[p]) {
            mean.add(x / shareCount[p]);
          }
          m.put("mean_important_share_per_layer", mean);
        }
        m.put("ms_per_question", count[p] == 0 ? null : ms[p] / count[p]);
        summaries.add(m);
        if (res != null) {
          Map<String, Double> metrics = new LinkedHashMap<>();
          if (data != null && sample.kinds().contains("caption")) {
            metrics.put("caption_object_f1", captions.get(p).f1());
            metrics.put("chair", captions.get(p).chair());
          }
          if (pt.questions() > 0) {
            metrics.put("pope_accuracy", pt.accuracy());
            metrics.put("pope_f1", pt.f1());
            metrics.put("pope_yes_ratio", pt.yesRatio());
          }
          metrics.put("errors", (double) errs[p]);
          reportRows.add(
              new PlanSummary(
                  plan.label(),
                  plan.plan().toJson(),
                  plan.plan().planHash(),
                  images,
                  (int) count[p],
                  res.accuracy(),
                  p == 0 ? null : res.loss(),
                  res.accuracyByKind(),
                  p == 0 ? Map.of() : res.lossByKind(),
                  ok == 0 ? Double.NaN : kept[p] / ok,
                  nanIfNull(flopsRatio(flops.get(0), flops.get(p))),
                  kvCount[p] == 0 ? Double.NaN : kv[p] / kvCount[p],
                  count[p] == 0 ? Double.NaN : ms[p] / count[p],
                  metrics));
        }
      }
    }

    private static Double flopsRatio(Map<String, Long> empty, Map<String, Long> plan) {
      long a = 0;
      long b = 0;
      for (Map.Entry<String, Long> e : plan.entrySet()) {
        Long base = empty.get(e.getKey());
        if (base != null) {
          a += e.getValue();
          b += base;
        }
      }
      return b == 0 ? null : a / (double) b;
    }

    private static double nanIfNull(Double d) {
      return d == null ? Double.NaN : d;
    }

    private static Map<String, Object> interval(Interval i) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("estimate", i.estimate());
      m.put("lo", i.lo());
      m.put("hi", i.hi());
      return m;
    }

    List<Map<String, Object>> plans() {
      return summaries;
    }

    List<PlanSummary> reportRows() {
      if (reportRows.isEmpty()) {
        throw new IllegalStateException(
            "no exact-match questions: sample.kinds needs one of exists, color, count, "
                + "position (a manifest: a row whose kind is not caption) for the report's accuracy (plans: "
                + plans.size()
                + ")");
      }
      return reportRows;
    }

    long errors() {
      return errors;
    }
  }
}
