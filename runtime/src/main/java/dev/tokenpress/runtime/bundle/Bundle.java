package dev.tokenpress.runtime.bundle;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A model bundle opened from its directory (by path, never as a byte array): the parsed {@link
 * BundleManifest}, with every listed file checked for presence, size and (unless asked not to)
 * sha256 — the error names the file.
 */
public final class Bundle {
  static final ObjectMapper JSON =
      new ObjectMapper()
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
          .enable(SerializationFeature.INDENT_OUTPUT)
          .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

  /** How much of a bundle to check when opening it. */
  public enum Verify {
    /** size and sha256 of every file */
    FULL,
    /** presence and size only (fast; for repeated opens of an already verified copy) */
    SIZE
  }

  private final Path dir;
  private final BundleManifest manifest;

  private Bundle(Path dir, BundleManifest manifest) {
    this.dir = dir;
    this.manifest = manifest;
  }

  public static Bundle open(Path dir) {
    return open(dir, Verify.FULL);
  }

  public static Bundle open(Path dir, Verify verify) {
    Path mf = dir.resolve(BundleManifest.FILE_NAME);
    if (!Files.isRegularFile(mf)) {
      throw new BundleException("not a model bundle: " + mf + " is missing");
    }
    BundleManifest m;
    try {
      m = JSON.readValue(mf.toFile(), BundleManifest.class);
    } catch (IOException e) {
      throw new BundleException("cannot parse " + mf + ": " + e.getMessage(), e);
    }
    if (!BundleManifest.FORMAT.equals(m.format())) {
      throw new BundleException(
          mf + " has format " + m.format() + ", expected " + BundleManifest.FORMAT);
    }
    if (m.formatVersion() > BundleManifest.FORMAT_VERSION) {
      throw new BundleException(
          mf
              + " has format version "
              + m.formatVersion()
              + "; this runtime reads up to "
              + BundleManifest.FORMAT_VERSION);
    }
    for (BundleFile f : m.files()) {
      Path p = dir.resolve(f.path());
      if (!Files.isRegularFile(p)) {
        throw new BundleException("bundle file " + f.path() + " is missing in " + dir);
      }
      long size;
      try {
        size = Files.size(p);
      } catch (IOException e) {
        throw new BundleException("cannot read bundle file " + f.path(), e);
      }
      if (size != f.bytes()) {
        throw new BundleException(
            "bundle file "
                + f.path()
                + " has "
                + size
                + " bytes, bundle.json says "
                + f.bytes()
                + " (truncated or replaced?)");
      }
      if (verify == Verify.FULL) {
        String actual = sha256(p);
        if (!actual.equals(f.sha256())) {
          throw new BundleException(
              "bundle file "
                  + f.path()
                  + " is corrupted: sha256 "
                  + actual
                  + " does not match "
                  + f.sha256()
                  + " in bundle.json");
        }
      }
    }
    return new Bundle(dir, m);
  }

  public Path directory() {
    return dir;
  }

  public BundleManifest manifest() {
    return manifest;
  }

  /** The LM section; fails clearly for a bundle without one. */
  public LmSpec lm() {
    if (manifest.lm() == null) {
      throw new BundleException("bundle " + dir + " has no language model");
    }
    return manifest.lm();
  }

  /**
   * Stores {@code value} as analysis {@code key} of this bundle's {@code bundle.json} (rewritten in
   * place; the files it lists are unchanged, its own sha256, the {@code model_sha256} of later
   * runs, changes) and returns the reopened bundle.
   */
  public Bundle writeAnalysis(String key, com.fasterxml.jackson.databind.JsonNode value) {
    BundleManifest m = manifest.withAnalysis(key, value);
    Path mf = dir.resolve(BundleManifest.FILE_NAME);
    Path tmp = dir.resolve(BundleManifest.FILE_NAME + ".tmp");
    try {
      JSON.writeValue(tmp.toFile(), m);
      Files.move(
          tmp,
          mf,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + mf, e);
    }
    return new Bundle(dir, m);
  }

  /** Absolute path of a bundle file. */
  public Path resolve(String relative) {
    return dir.resolve(relative);
  }

  /** Hex sha256 of a file. */
  public static String sha256(Path p) {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] buf = new byte[1 << 20];
    try (InputStream in = Files.newInputStream(p)) {
      int n;
      while ((n = in.read(buf)) > 0) {
        md.update(buf, 0, n);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + p, e);
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
