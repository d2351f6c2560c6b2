package dev.tokenpress.jobs.compress;

import dev.tokenpress.jobs.config.ConfigLoader;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.sql.SparkSession;

/**
 * The driver of one fault-injection run, in its own JVM so that it can die as under {@code kill -9}
 * ({@link Runtime#halt}: no shutdown hooks, no finally blocks): {@code FaultInjectionMain MASTER
 * STEP N HALT_ON_ID FAIL_ONCE_ON_ID MARKER_DIR [--set k=v]...} halts when the job reaches {@link
 * JobProbe.Step} {@code STEP} for the {@code N}-th time ({@code -} for none); the other arguments
 * are those of {@link FaultyProcessorFactory} ({@code -} for none). Exits 0 when the run succeeds,
 * 1 when it fails, 137 when it halts.
 */
public final class FaultInjectionMain {
  private FaultInjectionMain() {}

  public static void main(String[] args) {
    String master = args[0];
    JobProbe.Step step = args[1].equals("-") ? null : JobProbe.Step.valueOf(args[1]);
    int n = Integer.parseInt(args[2]);
    FaultyProcessorFactory factory =
        new FaultyProcessorFactory(
            args[3].equals("-") ? null : args[3], args[4].equals("-") ? null : args[4], args[5]);
    List<String> sets = Arrays.asList(args).subList(6, args.length);
    AtomicInteger seen = new AtomicInteger();
    JobProbe probe =
        (s, batch) -> {
          if (s == step && seen.incrementAndGet() == n) {
            System.out.println("[fault] halting at " + s + " of batch " + batch);
            System.out.flush();
            Runtime.getRuntime().halt(137);
          }
        };
    SparkSession spark = SparkTestSession.builder(master).appName("tokenpress-fault").getOrCreate();
    spark.sparkContext().setLogLevel("ERROR");
    int status = 0;
    try {
      CompressJob.run(spark, ConfigLoader.load(null, sets), factory, System.out, probe);
    } catch (RuntimeException e) {
      e.printStackTrace();
      status = 1;
    } finally {
      spark.stop();
    }
    System.exit(status);
  }
}
