package dev.tokenpress.evaluate.job;

import dev.tokenpress.jobs.compress.CompressJob;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * The local[2] Spark session of the evaluate/tune job tests, with the jobs' application defaults
 * (tests only).
 */
final class LocalSpark {
  private LocalSpark() {}

  static SparkSession session(String appName) {
    SparkSession.Builder b =
        SparkSession.builder()
            .master("local[2]")
            .appName(appName)
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2");
    for (Map.Entry<String, String> e : CompressJob.APP_DEFAULTS.entrySet()) {
      b = b.config(e.getKey(), e.getValue());
    }
    SparkSession spark = b.getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    return spark;
  }
}
