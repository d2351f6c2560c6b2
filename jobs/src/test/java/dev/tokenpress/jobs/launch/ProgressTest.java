package dev.tokenpress.jobs.launch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.jobs.compress.SparkTestSession;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.LongAccumulator;
import org.junit.jupiter.api.Test;

/**
 * The shared progress listener over a real local Spark job: finished tasks' accumulator updates
 * reach the line.
 */
class ProgressTest {
  @Test
  void countsEveryUnitAndErrorOfFinishedTasks() throws Exception {
    SparkSession spark = SparkTestSession.get();
    LongAccumulator ok = spark.sparkContext().longAccumulator("progress-test.ok");
    LongAccumulator errors = spark.sparkContext().longAccumulator("progress-test.errors");
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    List<Integer> units = new ArrayList<>();
    for (int i = 1; i <= 100; i++) {
      units.add(i);
    }
    try (Progress progress =
        new Progress(
            ok,
            errors,
            20,
            120,
            3600,
            "questions",
            new PrintStream(buf, true, StandardCharsets.UTF_8))) {
      progress.phase("round 1/2");
      spark.sparkContext().addSparkListener(progress);
      try {
        JavaSparkContext.fromSparkContext(spark.sparkContext())
            .parallelize(units, 4)
            .foreach(
                i -> {
                  if (i % 7 == 0) {
                    errors.add(1);
                  } else {
                    ok.add(1);
                  }
                });
        // task-end events reach listeners asynchronously: wait for the last one
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (progress.processed() < 100 && System.nanoTime() < deadline) {
          Thread.sleep(20);
        }
      } finally {
        spark.sparkContext().removeSparkListener(progress);
      }
      // exact from the accumulators as soon as the action returned
      assertThat(progress.finalLine())
          .startsWith("[tokenpress] 120/120 questions (100.0%) | ")
          .endsWith("| errors 14 | round 1/2");
      assertThat(progress.processed()).isEqualTo(100);
      assertThat(progress.errors()).isEqualTo(14);
      assertThat(progress.line())
          .startsWith("[tokenpress] 120/120 questions (100.0%) | ")
          .contains(" questions/s | ETA ")
          .endsWith("| errors 14 | round 1/2");
    }
    // the interval is an hour: nothing was printed on its own
    assertThat(buf.toString(StandardCharsets.UTF_8)).isEmpty();
  }
}
