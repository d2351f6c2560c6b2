package dev.tokenpress.jobs.compress;

import org.apache.spark.sql.SparkSession;

/** One local[2] session for all Spark tests of this module (loopback, no UI, few partitions). */
public final class SparkTestSession {
  private static SparkSession spark;

  private SparkTestSession() {}

  /** A loopback session builder for {@code master} without UI and with few partitions. */
  public static SparkSession.Builder builder(String master) {
    return SparkSession.builder()
        .master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2");
  }

  public static synchronized SparkSession get() {
    if (spark == null) {
      spark =
          builder("local[2]")
              .appName("tokenpress-tests")
              .config("spark.executor.heartbeatInterval", "3s")
              .getOrCreate();
      spark.sparkContext().setLogLevel("WARN");
    }
    return spark;
  }
}
