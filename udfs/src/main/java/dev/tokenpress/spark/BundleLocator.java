package dev.tokenpress.spark;

import dev.tokenpress.runtime.bundle.BundleCache;
import dev.tokenpress.runtime.bundle.BundleManifest;
import java.io.IOException;
import java.io.UncheckedIOException;
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
 *   <li>an existing local directory (absolute, or relative to the working directory, where YARN and
 *       Kubernetes unpack {@code --archives});
 *   <li>a name shipped with {@code --files}/{@code --archives}/{@code SparkContext.addFile}, under
 *       {@link SparkFiles#getRootDirectory()};
 *   <li>a Hadoop URI ({@code hdfs://}, {@code s3a://}, ...), copied once per JVM into {@code
 *       java.io.tmpdir/tokenpress-bundles/}.
 * </ol>
 *
 * A directory holding a Hugging Face checkpoint ({@code config.json}, no {@code bundle.json}) is
 * built into a bundle once under the same cache ({@link BundleCache}; convenient for local runs; on
 * a cluster build it once with {@code bin/tokenpress model build} and ship the bundle).
 */
public final class BundleLocator {
  private static final ConcurrentHashMap<String, Path> LOCAL = new ConcurrentHashMap<>();

  private BundleLocator() {}

  /** The local bundle directory for {@code bundle}; see the class comment. */
  public static Path localize(String bundle, Configuration hadoopConf) {
    return LOCAL.computeIfAbsent(bundle, b -> BundleCache.asBundle(find(b, hadoopConf)));
  }

  /**
   * Lower-case hex SHA-256 of the bundle's {@code bundle.json} (which lists every file's sha256).
   */
  public static String bundleSha256(Path bundleDir) {
    try {
      byte[] manifest = Files.readAllBytes(bundleDir.resolve(BundleManifest.FILE_NAME));
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(manifest));
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot read " + bundleDir.resolve(BundleManifest.FILE_NAME), e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Path find(String bundle, Configuration conf) {
    boolean uri = bundle.matches("^[A-Za-z][A-Za-z0-9+.-]*://.*");
    if (!uri || bundle.startsWith("file://")) {
      Path p =
          Path.of(bundle.startsWith("file://") ? bundle.substring("file://".length()) : bundle);
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
      throw new IllegalArgumentException(
          "model bundle '"
              + bundle
              + "' not found: not a directory in "
              + Path.of("").toAbsolutePath()
              + (root == null ? "" : " nor under the SparkFiles root " + root)
              + " (ship it with --archives or use a shared path or a Hadoop URI)");
    }
    Path dest =
        BundleCache.cacheDir().resolve("remote-" + BundleCache.sha256(bundle).substring(0, 16));
    if (Files.isDirectory(dest)) {
      return dest;
    }
    try {
      org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(bundle);
      FileSystem fs = src.getFileSystem(conf);
      Path tmp = Files.createTempDirectory(BundleCache.cacheDir(), "copy-");
      fs.copyToLocalFile(false, src, new org.apache.hadoop.fs.Path(tmp.toUri()), true);
      Path copied = tmp.resolve(src.getName());
      Files.move(Files.isDirectory(copied) ? copied : tmp, dest, StandardCopyOption.ATOMIC_MOVE);
      return dest;
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot copy model bundle " + bundle + " to " + dest + ": " + e.getMessage(), e);
    }
  }

  private static String sparkFilesRoot() {
    try {
      return SparkFiles.getRootDirectory();
    } catch (RuntimeException e) {
      return null;
    }
  }
}
