package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.ConfigurationFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code conf/log4j2-tokenpress.properties} (shipped in the jar as a resource, used by {@code
 * bin/tokenpress-compress}): Spark's INFO lines go to the log file only, WARN/ERROR from anywhere
 * and tokenpress's own INFO lines to the console too; {@code tokenpress.log.console=info} puts
 * everything on the console.
 */
class ConsoleLogConfigTest {
  @TempDir Path tmp;

  @Test
  void defaultConsoleShowsTokenpressAndWarningsTheFileEverything() throws Exception {
    Path file = tmp.resolve("spark.log");
    String console = log(file, null);
    String logged = Files.readString(file, StandardCharsets.UTF_8);
    assertThat(console)
        .contains("tokenpress info line", "spark warn line", "hadoop error line")
        .doesNotContain("spark info line", "hadoop info line");
    assertThat(logged)
        .contains(
            "spark info line",
            "hadoop info line",
            "tokenpress info line",
            "spark warn line",
            "hadoop error line");
  }

  @Test
  void verboseConsoleShowsSparksInfoLog() throws Exception {
    Path file = tmp.resolve("verbose.log");
    String console = log(file, "info");
    assertThat(console)
        .contains("spark info line", "hadoop info line", "tokenpress info line", "spark warn line");
    assertThat(Files.readString(file, StandardCharsets.UTF_8)).contains("spark info line");
  }

  /**
   * Logs one line of each kind through a fresh context configured from the file; returns the
   * console.
   */
  private static String log(Path file, String consoleLevel) throws Exception {
    URL resource = ConsoleLogConfigTest.class.getResource("/conf/log4j2-tokenpress.properties");
    assertThat(resource).as("conf/log4j2-tokenpress.properties on the classpath").isNotNull();
    URI uri = resource.toURI();
    PrintStream err = System.err;
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    System.setProperty("tokenpress.log.file", file.toString());
    if (consoleLevel != null) {
      System.setProperty("tokenpress.log.console", consoleLevel);
    }
    LoggerContext ctx = new LoggerContext("tokenpress-log-config-test");
    try {
      System.setErr(new PrintStream(console, true, StandardCharsets.UTF_8));
      Configuration config =
          ConfigurationFactory.getInstance()
              .getConfiguration(ctx, "tokenpress-log-config-test", uri);
      ctx.start(config);
      Logger spark = ctx.getLogger("org.apache.spark.SparkContext");
      Logger hadoop = ctx.getLogger("org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter");
      spark.info("spark info line");
      hadoop.info("hadoop info line");
      ctx.getLogger("dev.tokenpress.spark.ExecutorRuntimes").info("tokenpress info line");
      spark.warn("spark warn line");
      hadoop.error("hadoop error line");
    } finally {
      ctx.stop();
      System.setErr(err);
      System.clearProperty("tokenpress.log.file");
      System.clearProperty("tokenpress.log.console");
    }
    return console.toString(StandardCharsets.UTF_8);
  }
}
