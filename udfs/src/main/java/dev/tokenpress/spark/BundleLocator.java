package dev.tokenpress.spark;

import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.bundle.BundleManifest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkFiles;

/**
 * Finds a model bundle on this JVM's machine, the way executors see it:
 *
 * <ol>
 *   <li>an existing local directory (absolute, or relative to the working directory, where YARN
 *       and Kubernetes unpack {@code --archives});</li>
 *   <li>a name shipped with {@code --files}/{@code --archives}/{@code SparkContext.addFile},
 *       under {@link SparkFiles#getRootDirectory()};</li>
 *   <li>a Hadoop URI ({@code hdfs://}, {@code s3a://}, ...), copied once per JVM into
 *       {@code java.io.tmpdir/tokenpress-bundles/}.</li>
 * </ol>
 *
 * A directory holding a Hugging Face checkpoint ({@code config.json}, no {@code bundle.json}) is
 * built into a bundle once per JVM under the same cache (convenient for local runs; on a cluster
 * build it once with {@code bin/tokenpress model build} and ship the bundle).
 */
public final class BundleLocator {
  private static final ConcurrentHashMap<String, Path> LOCAL = new ConcurrentHashMap<>();

  private BundleLocator() {}

  /** The local bundle directory for {@code bundle}; see the class comment. */
  public static Path localize(String bundle, Configuration hadoopConf) {
    return LOCAL.computeIfAbsent(bundle, b -> asBundle(find(b, hadoopConf)));
  }

  /** Lower-case hex SHA-256 of the bundle's {@code bundle.json} (which lists every file's sha256). */
  public static String bundleSha256(Path bundleDir) {
    try {
      byte[] manifest = Files.readAllBytes(bundleDir.resolve(BundleManifest.FILE_NAME));
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(manifest));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + bundleDir.resolve(BundleManifest.FILE_NAME), e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Path find(String bundle, Configuration conf) {
    boolean uri = bundle.matches("^[A-Za-z][A-Za-z0-9+.-]*://.*");
    if (!uri || bundle.startsWith("file://")) {
      Path p = Path.of(bundle.startsWith("file://") ? bundle.substring("file://".length()) : bundle);
      if (Files.isDirectory(p)) {
        return p.toAbsolutePath().normalize();
      }
      String root = sparkFilesRoot();
      if (root != null) {
        Path shipped = Path.of(root).resolve(p.getFileName().toString());
        if (Files.isDirectory(shipped)) {
          return shipped;
        }
      }
      throw new IllegalArgumentException("model bundle '" + bundle + "' not found: not a directory in "
          + Path.of("").toAbsolutePath() + (root == null ? "" : " nor under the SparkFiles root " + root)
          + " (ship it with --archives or use a shared path or a Hadoop URI)");
    }
    Path dest = cacheDir().resolve("remote-" + sha256(bundle).substring(0, 16));
    if (Files.isDirectory(dest)) {
      return dest;
    }
    try {
      org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(bundle);
      FileSystem fs = src.getFileSystem(conf);
      Path tmp = Files.createTempDirectory(cacheDir(), "copy-");
      fs.copyToLocalFile(false, src, new org.apache.hadoop.fs.Path(tmp.toUri()), true);
      Path copied = tmp.resolve(src.getName());
      Files.move(Files.isDirectory(copied) ? copied : tmp, dest, StandardCopyOption.ATOMIC_MOVE);
      return dest;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy model bundle " + bundle + " to " + dest + ": " + e.getMessage(), e);
    }
  }

  private static Path asBundle(Path dir) {
    if (Files.isRegularFile(dir.resolve(BundleManifest.FILE_NAME))) {
      return dir;
    }
    if (!Files.isRegularFile(dir.resolve("config.json"))) {
      throw new IllegalArgumentException(dir + " is neither a model bundle (no " + BundleManifest.FILE_NAME
          + ") nor a Hugging Face checkpoint (no config.json)");
    }
    try {
      StringBuilder key = new StringBuilder(BundleBuilder.REVISION).append('|').append(dir);
      try (var files = Files.list(dir)) {
        files.sorted().forEach(f -> key.append('|').append(f.getFileName()).append(':').append(f.toFile().length())
            .append(':').append(f.toFile().lastModified()));
      }
      Path dest = cacheDir().resolve("built-" + sha256(key.toString()).substring(0, 16));
      if (!Files.isRegularFile(dest.resolve(BundleManifest.FILE_NAME))) {
        Path tmp = Files.createTempDirectory(cacheDir(), "build-");
        Path out = tmp.resolve("bundle");
        BundleBuilder.build(dir, out, BuildOptions.defaults());
        try {
          Files.move(out, dest, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException raced) {
          if (!Files.isRegularFile(dest.resolve(BundleManifest.FILE_NAME))) {
            throw raced;
          }
        } finally {
          deleteTree(tmp);  // empty after the move; the losing build's files after a race
        }
      }
      return dest;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot build a bundle from checkpoint " + dir + ": " + e.getMessage(), e);
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var paths = Files.walk(dir)) {
      for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private static Path cacheDir() {
    Path dir = Path.of(System.getProperty("java.io.tmpdir"), "tokenpress-bundles");
    try {
      return Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + dir, e);
    }
  }

  private static String sparkFilesRoot() {
    try {
      return SparkFiles.getRootDirectory();
    } catch (RuntimeException e) {
      return null;
    }
  }

  private static String sha256(String s) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
