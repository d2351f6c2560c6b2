package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Driver-side checks: a plan the model cannot run and a file at output.path fail before any Spark
 * job.
 */
class PreflightTest {
  private final PrintStream log =
      new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);

  /** Records the description of every Spark job started. */
  static final class JobCounter extends SparkListener {
    final List<String> started = new CopyOnWriteArrayList<>();

    @Override
    public void onJobStart(SparkListenerJobStart jobStart) {
      started.add(String.valueOf(jobStart.properties().getProperty("spark.job.description")));
    }
  }

  /**
   * The jobs {@code action} starts: a marker job runs after it, and the listener bus delivers
   * events in order, so once the marker's start arrived every earlier job's start has too.
   */
  static List<String> jobsStartedBy(SparkSession spark, Runnable action)
      throws InterruptedException {
    JobCounter counter = new JobCounter();
    spark.sparkContext().addSparkListener(counter);
    try {
      action.run();
      spark.sparkContext().setJobDescription("preflight-test-marker");
      spark.range(1).javaRDD().count();
      spark.sparkContext().setJobDescription(null);
      long deadline = System.currentTimeMillis() + 30_000;
      while (!counter.started.contains("preflight-test-marker")
          && System.currentTimeMillis() < deadline) {
        Thread.sleep(20);
      }
      List<String> jobs = new ArrayList<>(counter.started);
      assertThat(jobs).contains("preflight-test-marker");
      jobs.remove("preflight-test-marker");
      return jobs;
    } finally {
      spark.sparkContext().removeSparkListener(counter);
    }
  }

  @Test
  void anInvalidPlanOrAFileAtOutputPathFailsTheRunBeforeAnySparkJob(@TempDir Path tmp)
      throws Exception {
    SparkSession spark = SparkTestSession.get();
    Path corpus = tmp.resolve("corpus");
    CompressJobTest.writeCorpus(corpus, 3);
    Path out = tmp.resolve("out");
    // TestProcessorFactory.SHAPE: 4 LM layers, 4 ViT layers (2 run), 16 visual tokens per image.
    for (String plan :
        List.of(
            "[{op: fastv, layer: 9}]",
            "[{op: vtc-cls, keep: 4, layers: \"1..99\"}]",
            "[{op: random-drop, keep: 17}]")) {
      JobConfig config = CompressJobTest.config(corpus, out, "plan=" + plan);
      List<String> jobs =
          jobsStartedBy(
              spark,
              () ->
                  assertThatThrownBy(
                          () -> CompressJob.run(spark, config, new TestProcessorFactory(), log))
                      .as(plan)
                      .isInstanceOf(ConfigException.class)
                      .hasMessageStartingWith("config plan: plan[0]: "));
      assertThat(jobs).as(plan).isEmpty();
      assertThat(out).as(plan).doesNotExist();
    }

    Path file = Files.writeString(tmp.resolve("thesis.tex"), "x");
    for (String mode : List.of("resume", "overwrite", "error-if-exists")) {
      JobConfig config = CompressJobTest.config(corpus, file, "output.mode=" + mode);
      List<String> jobs =
          jobsStartedBy(
              spark,
              () ->
                  assertThatThrownBy(
                          () -> CompressJob.run(spark, config, new TestProcessorFactory(), log))
                      .as(mode)
                      .isInstanceOf(ConfigException.class)
                      .hasMessageStartingWith(
                          "config output.path: file:"
                              + file
                              + " is a file; output.path must be a directory"));
      assertThat(jobs).as(mode).isEmpty();
      assertThat(Files.readString(file)).isEqualTo("x");
    }

    // A plan that fits the model runs, and the counter sees its jobs.
    JobConfig ok =
        CompressJobTest.config(
            corpus, out, "plan=[{op: random-drop, keep: 16}, {op: fastv, layer: 3}]");
    assertThat(
            jobsStartedBy(
                spark,
                () ->
                    assertThat(CompressJob.run(spark, ok, new TestProcessorFactory(), log).ok())
                        .isEqualTo(3)))
        .isNotEmpty();
  }

  @Test
  void outputPathUnderAFileOrAFileIsRefusedADirectoryOrANewPathIsNot(@TempDir Path tmp)
      throws IOException {
    Path file = Files.writeString(tmp.resolve("f"), "x");
    try (org.apache.hadoop.fs.FileSystem fs =
        org.apache.hadoop.fs.FileSystem.newInstance(
            tmp.toUri(), new org.apache.hadoop.conf.Configuration())) {
      assertThatThrownBy(() -> Preflight.checkOutputPath(file.resolve("a/b").toString(), fs))
          .isInstanceOf(ConfigException.class)
          .hasMessage(
              "config output.path: "
                  + file.resolve("a/b")
                  + " lies under file:"
                  + file
                  + ", which is a file, not a directory; choose another output.path");
      assertThatThrownBy(() -> Preflight.checkOutputPath(file.toString(), fs))
          .extracting(e -> ((ConfigException) e).field())
          .isEqualTo("output.path");
      Preflight.checkOutputPath(tmp.toString(), fs);
      Preflight.checkOutputPath(tmp.resolve("new/deeper").toString(), fs);
    }
  }

  /**
   * main's check before the session: the real bundle's manifest, read without loading the model.
   */
  @Test
  void beforeSessionChecksThePlanAgainstTheRealBundlesShape(@TempDir Path tmp) {
    Path model = RealRuntimeEndToEndTest.project().resolve("models/tiny-llava-shapes");
    assumeTrue(
        Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    List<String> base = List.of("model.bundle=" + model, "output.path=" + tmp.resolve("out"));
    // tiny-llava-shapes: 4 LM layers; 4 ViT layers of which 0..2 run (vision_feature_layer -2);
    // 16x16 patches.
    String[][] cases = {
      {
        "[{op: fastv, layer: 99}]",
        "plan[0]: fastv.layer must be in [1, numLayers-1] = [1, 3] for this model, got 99"
      },
      {
        "[{op: vtc-cls, keep: 64, layers: \"1..99\"}]",
        "plan[0]: vtc-cls.layers \"1..99\" resolves to [1, 99] for L=4"
      },
      {"[{op: vtc-cls, keep: 64, layers: \"1..L-1\"}]", "this bundle runs ViT layers 0..2 only"},
      {"[{op: random-drop, keep: 1000}]", "plan[0]: random-drop.keep must be in [1, 256]"},
      {
        "[{op: vtc-cls, keep: 64, layers: \"1..L-2\"}, {op: fastv, keep: 100}]",
        "plan[1]: fastv.keep must be in [1, 64]"
      }
    };
    for (String[] c : cases) {
      List<String> sets = new ArrayList<>(base);
      sets.add("plan=" + c[0]);
      JobConfig config = ConfigLoader.load(null, sets);
      assertThatThrownBy(() -> Preflight.beforeSession(config, VlmProcessorFactory.INSTANCE))
          .as(c[0])
          .isInstanceOf(ConfigException.class)
          .hasMessageStartingWith("config plan: ")
          .hasMessageContaining(c[1]);
    }
    List<String> sets = new ArrayList<>(base);
    sets.add("plan=" + RealRuntimeEndToEndTest.PLAN);
    Preflight.beforeSession(ConfigLoader.load(null, sets), VlmProcessorFactory.INSTANCE);
  }
}
