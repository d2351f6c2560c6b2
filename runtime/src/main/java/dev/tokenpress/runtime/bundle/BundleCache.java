package dev.tokenpress.runtime.bundle;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The per-machine cache of bundles built from Hugging Face checkpoints (and of copied remote
 * bundles): {@code java.io.tmpdir/tokenpress-bundles/}. Used by the Spark jobs' bundle locator and
 * by the command-line tools, so a checkpoint folder works wherever a bundle does.
 */
public final class BundleCache {
  private BundleCache() {}

  /**
   * {@code dir} itself when it is a bundle; else, for a Hugging Face checkpoint, its bundle built
   * once into {@link #cacheDir()} (keyed by the builder revision, the path and each file's name,
   * size and modification time; safe when several JVMs build at once).
   */
  public static Path asBundle(Path dir) {
    if (Files.isRegularFile(dir.resolve(BundleManifest.FILE_NAME))) {
      return dir;
    }
    if (!Files.isRegularFile(dir.resolve("config.json"))) {
      throw new IllegalArgumentException(
          dir
              + " is neither a model bundle (no "
              + BundleManifest.FILE_NAME
              + ") nor a Hugging Face checkpoint (no config.json)");
    }
    try {
      StringBuilder key = new StringBuilder(BundleBuilder.REVISION).append('|').append(dir);
      try (var files = Files.list(dir)) {
        files
            .sorted()
            .forEach(
                f ->
                    key.append('|')
                        .append(f.getFileName())
                        .append(':')
                        .append(f.toFile().length())
                        .append(':')
                        .append(f.toFile().lastModified()));
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
          deleteTree(tmp); // empty after the move; the losing build's files after a race
        }
      }
      return dest;
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot build a bundle from checkpoint " + dir + ": " + e.getMessage(), e);
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

  /** The cache directory, created if needed. */
  public static Path cacheDir() {
    Path dir = Path.of(System.getProperty("java.io.tmpdir"), "tokenpress-bundles");
    try {
      return Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + dir, e);
    }
  }

  /** Lower-case hex SHA-256 of {@code s} (UTF-8), for cache keys. */
  public static String sha256(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
