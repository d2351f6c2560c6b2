package dev.tokenpress.runtime.bundle;

/** A file of a bundle: path relative to the bundle directory, size and sha256 (hex). */
public record BundleFile(String path, long bytes, String sha256) {
  public BundleFile {
    if (path == null || path.isEmpty() || path.startsWith("/") || path.contains("..")) {
      throw new IllegalArgumentException(
          "bundle file path must be relative and inside the bundle, found " + path);
    }
  }
}
