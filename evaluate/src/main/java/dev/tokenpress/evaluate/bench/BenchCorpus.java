package dev.tokenpress.evaluate.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Shared bench plumbing: corpora of {@code n} distinct files made by cycling over a directory of
 * images, argument parsing, and the local[2] session every bench runs in.
 */
final class BenchCorpus {
  private BenchCorpus() {}

  /**
   * Writes {@code n} files {@code img-00000.ext ...} into {@code dir}, cycling over {@code source}.
   */
  static List<Path> create(Path source, Path dir, int n) {
    try {
      List<Path> src;
      try (Stream<Path> s = Files.walk(source)) {
        src =
            s.filter(Files::isRegularFile)
                .filter(p -> p.toString().matches("(?i).*\\.(png|jpe?g)$"))
                .sorted()
                .collect(Collectors.toList());
      }
      if (src.isEmpty()) {
        throw new IllegalArgumentException("no images under " + source);
      }
      Files.createDirectories(dir);
      List<Path> out = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        Path s = src.get(i % src.size());
        String name = s.getFileName().toString();
        Path d = dir.resolve(String.format("img-%05d%s", i, name.substring(name.lastIndexOf('.'))));
        Files.copy(s, d);
        out.add(d);
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void deleteTree(Path dir) {
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // best effort
    }
  }

  static String arg(String[] args, String name, String dflt) {
    for (int i = 0; i < args.length - 1; i++) {
      if (args[i].equals(name)) {
        return args[i + 1];
      }
    }
    return dflt;
  }

  /** Every {@code --set key=value} job-config override, in order. */
  static List<String> sets(String[] args) {
    return all(args, "--set");
  }

  /** Every value of the repeatable option {@code name}, in order. */
  static List<String> all(String[] args, String name) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < args.length - 1; i++) {
      if (args[i].equals(name)) {
        out.add(args[i + 1]);
      }
    }
    return out;
  }

  /**
   * The job config of a throughput bench over {@code corpus} writing to {@code out} (overwritten
   * each run): {@code --bundle}, {@code --plan} and {@code --max-new-tokens} from the arguments,
   * then every {@code --set}.
   */
  static List<String> jobSets(String[] args, Path corpus, Path out, String defaultMaxNewTokens) {
    List<String> sets =
        new ArrayList<>(
            List.of(
                "input.path=" + corpus,
                "input.glob=*",
                "model.bundle=" + arg(args, "--bundle", "models/tiny-llava-shapes"),
                "model.maxNewTokens=" + arg(args, "--max-new-tokens", defaultMaxNewTokens),
                "plan=" + arg(args, "--plan", "[{op: vtc-cls, keep: 32, layers: \"1..L-2\"}]"),
                "output.path=" + out,
                "output.mode=overwrite",
                "run.progressIntervalSeconds=30"));
    sets.addAll(sets(args));
    return sets;
  }

  /** The local[2] session of the benches, with the job's application defaults. */
  static org.apache.spark.sql.SparkSession localSession(String appName) {
    org.apache.spark.sql.SparkSession.Builder b =
        org.apache.spark.sql.SparkSession.builder()
            .master("local[2]")
            .appName(appName)
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4");
    for (java.util.Map.Entry<String, String> e :
        dev.tokenpress.jobs.compress.CompressJob.APP_DEFAULTS.entrySet()) {
      b = b.config(e.getKey(), e.getValue());
    }
    org.apache.spark.sql.SparkSession spark = b.getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    return spark;
  }
}
