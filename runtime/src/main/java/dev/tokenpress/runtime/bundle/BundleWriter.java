package dev.tokenpress.runtime.bundle;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.runtime.onnx.ExternalWeights;
import dev.tokenpress.runtime.onnx.GraphBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Writes a bundle directory: graphs (with one shared external-weights file per directory, or inline
 * weights), side files, and finally {@code bundle.json} with the sha256 of every file. Callers
 * write in a fixed order (weights files are laid out in write order); {@code bundle.json} lists
 * files sorted by path and map keys sorted, so its bytes never depend on hash order.
 *
 * <pre>{@code
 * try (BundleWriter w = new BundleWriter(out, true)) {
 *     w.writeGraph("vision/layer_0_pre.onnx", graphBuilder);   // weights -> vision/weights.bin
 *     w.copyFile(checkpoint.resolve("tokenizer.json"), "tokenizer.json");
 *     w.finish("llava", lmSpec, visionSection, textSection, buildInfo);
 * }
 * }</pre>
 */
public final class BundleWriter implements AutoCloseable {
  /** Name of the shared external-weights file in each graph directory. */
  public static final String WEIGHTS_FILE = "weights.bin";

  private final Path dir;
  private final boolean externalWeights;
  private final Map<Path, ExternalWeights> weights = new LinkedHashMap<>();
  private final Set<String> files = new LinkedHashSet<>();

  /**
   * @param dir output directory; created if absent, must be empty if present
   * @param externalWeights true: weights go to {@code <graph dir>/weights.bin}, shared by all
   *     graphs there (required above 2 GB); false: every graph self-contained
   */
  public BundleWriter(Path dir, boolean externalWeights) {
    this.dir = dir;
    this.externalWeights = externalWeights;
    try {
      if (Files.exists(dir)) {
        try (Stream<Path> s = Files.list(dir)) {
          if (s.findAny().isPresent()) {
            throw new IllegalArgumentException("bundle output directory is not empty: " + dir);
          }
        }
      }
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create bundle directory " + dir, e);
    }
  }

  public Path directory() {
    return dir;
  }

  /** Absolute path for a bundle-relative path, creating its parent directory. */
  public Path resolve(String relative) {
    Path p = dir.resolve(relative);
    try {
      Files.createDirectories(p.getParent());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + p.getParent(), e);
    }
    return p;
  }

  /** Writes a graph at {@code relative} and registers it (and its weights file). */
  public void writeGraph(String relative, GraphBuilder graph) {
    Path p = resolve(relative);
    ExternalWeights ext = null;
    if (externalWeights) {
      ext =
          weights.computeIfAbsent(p.getParent(), d -> new ExternalWeights(d.resolve(WEIGHTS_FILE)));
      String wRel = dir.relativize(ext.path()).toString();
      files.add(wRel);
    }
    graph.write(p, ext);
    files.add(relative);
  }

  /** Copies a file into the bundle. */
  public void copyFile(Path source, String relative) {
    try {
      Files.copy(source, resolve(relative), StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy " + source + " into the bundle", e);
    }
    files.add(relative);
  }

  /** Registers a file already written under {@link #resolve}. */
  public void addFile(String relative) {
    if (!Files.isRegularFile(dir.resolve(relative))) {
      throw new IllegalArgumentException("no file " + relative + " in " + dir);
    }
    files.add(relative);
  }

  /** Closes weight files, hashes every file and writes {@code bundle.json}. */
  public BundleManifest finish(
      String family, LmSpec lm, JsonNode vision, JsonNode text, Map<String, String> build) {
    closeWeights();
    List<BundleFile> list = new ArrayList<>();
    for (String f : files) {
      Path p = dir.resolve(f);
      try {
        list.add(new BundleFile(f, Files.size(p), Bundle.sha256(p)));
      } catch (IOException e) {
        throw new UncheckedIOException("cannot stat " + p, e);
      }
    }
    BundleManifest m =
        new BundleManifest(
            BundleManifest.FORMAT,
            BundleManifest.FORMAT_VERSION,
            family,
            lm,
            vision,
            text,
            build,
            list);
    try {
      Bundle.JSON.writeValue(dir.resolve(BundleManifest.FILE_NAME).toFile(), m);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + BundleManifest.FILE_NAME, e);
    }
    return m;
  }

  private void closeWeights() {
    for (ExternalWeights w : weights.values()) {
      w.close();
    }
    weights.clear();
  }

  @Override
  public void close() {
    closeWeights();
  }
}
