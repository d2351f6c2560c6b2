package dev.tokenpress.jobs.launch;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code main} of every tokenpress Spark job ({@code compress}, {@code evaluate}, {@code
 * tune}): {@code [--config FILE] [--set key=value]... [--print-config]}, the config loaded and
 * checked before any session (errors exit 2 with the field named, no stack trace), the session
 * built from the config's {@code spark} section, the job run, the session stopped; a config error
 * found while running (e.g. the output path's contents) exits 2, a failure exits 1.
 */
public final class JobLauncher {
  private static final Logger LOG = LoggerFactory.getLogger(JobLauncher.class);

  private JobLauncher() {}

  /** The parsed command line. */
  public record Args(Path file, List<String> sets, boolean printConfig) {}

  /**
   * Parses the command line; prints {@code usage} and exits for {@code --help} (0) or a bad
   * argument (2).
   */
  public static Args parse(String[] args, String usage) {
    Path file = null;
    List<String> sets = new ArrayList<>();
    boolean print = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--config", "-c" -> file = Path.of(value(args, ++i, usage));
        case "--set", "-s" -> sets.add(value(args, ++i, usage));
        case "--print-config" -> print = true;
        case "--help", "-h" -> {
          System.out.println(usage);
          System.exit(0);
        }
        default -> {
          System.err.println("unknown argument '" + args[i] + "'\n" + usage);
          System.exit(2);
        }
      }
    }
    return new Args(file, sets, print);
  }

  private static String value(String[] args, int i, String usage) {
    if (i >= args.length) {
      System.err.println(args[i - 1] + " needs a value\n" + usage);
      System.exit(2);
    }
    return args[i];
  }

  /**
   * Runs a job: loads its config ({@code load}), prints it for {@code --print-config}, runs {@code
   * beforeSession} (checks that need no Spark), builds the session with {@code localDefaults} for a
   * local master (unless set otherwise), runs {@code job}, stops the session, exits non-zero on
   * failure.
   */
  public static <C> void main(
      String[] argv,
      String usage,
      BiFunction<Path, List<String>, C> load,
      Function<C, JobConfig.SparkSection> sparkSection,
      Consumer<C> beforeSession,
      Map<String, String> localDefaults,
      String name,
      java.util.function.BiConsumer<SparkSession, C> job) {
    Args args = parse(argv, usage);
    C config;
    try {
      config = load.apply(args.file(), args.sets());
      if (args.printConfig()) {
        System.out.print(ConfigLoader.toYaml(config));
        return;
      }
      beforeSession.accept(config);
    } catch (ConfigException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    SparkSession spark = session(sparkSection.apply(config), localDefaults);
    int status = 0;
    try {
      job.accept(spark, config);
    } catch (ConfigException e) {
      // A setting that does not fit what is on disk (output.path, resume settings): refused before
      // any task, like the checks before the session; the message names the field, no stack trace.
      System.err.println("[tokenpress] " + e.getMessage());
      status = 2;
    } catch (RuntimeException e) {
      LOG.error("{} job failed", name, e);
      System.err.println("[tokenpress] FAILED: " + e.getMessage());
      status = 1;
    } finally {
      spark.stop();
    }
    if (status != 0) {
      System.exit(status);
    }
  }

  /**
   * The session: the config's app name, master (unless {@code spark.master} is a system property,
   * as under spark-submit) and properties; for a local master also {@code localDefaults} that
   * neither a system property nor the config sets.
   */
  public static SparkSession session(JobConfig.SparkSection s, Map<String, String> localDefaults) {
    SparkSession.Builder builder = SparkSession.builder().appName(s.appName());
    String master = System.getProperty("spark.master", s.master());
    for (Map.Entry<String, String> e : localDefaults.entrySet()) {
      if (master != null
          && master.startsWith("local")
          && System.getProperty(e.getKey()) == null
          && !s.conf().containsKey(e.getKey())) {
        builder = builder.config(e.getKey(), e.getValue());
      }
    }
    if (s.master() != null && System.getProperty("spark.master") == null) {
      builder = builder.master(s.master());
    }
    for (Map.Entry<String, String> e : s.conf().entrySet()) {
      builder = builder.config(e.getKey(), e.getValue());
    }
    return builder.getOrCreate();
  }
}
