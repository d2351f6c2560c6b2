package dev.tokenpress.runtime.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The bundled tiny LLaVA checkpoints under {@code models/}, each built once per JVM into a
 * temporary bundle (split + fused graphs): {@link #DEFAULT} ({@code tiny-llava-shapes}, the vanilla
 * evaluation model) and {@link #DROPTRAINED} ({@code tiny-llava-shapes-droptrained}, the variant
 * trained with dropped visual tokens). Tests skip with a message where a checkpoint or its {@code
 * reference_outputs.json} is absent. {@code -Dtokenpress.tiny.llava.dir=DIR} points the default
 * model at another copy of the checkpoint.
 */
public final class TinyLlavaBundle {
  /** The folder of the default bundled model under {@code models/}. */
  public static final String DEFAULT = "tiny-llava-shapes";

  /** The folder of the drop-trained variant under {@code models/}. */
  public static final String DROPTRAINED = "tiny-llava-shapes-droptrained";

  private static final java.util.Map<String, Path> BUNDLES = new java.util.HashMap<>();

  private TinyLlavaBundle() {}

  public static Path checkpoint() {
    return checkpoint(DEFAULT);
  }

  /** The checkpoint folder {@code models/<model>}; skips the test where it is absent. */
  public static Path checkpoint(String model) {
    String dir = model.equals(DEFAULT) ? System.getProperty("tokenpress.tiny.llava.dir") : null;
    if (dir == null) {
      dir = Path.of(System.getProperty("tokenpress.project.dir", "."), "models", model).toString();
    }
    Path p = Path.of(dir);
    assumeTrue(
        Files.isRegularFile(p.resolve("model.safetensors"))
            && Files.isRegularFile(p.resolve("config.json")),
        "skipped: "
            + model
            + " checkpoint not found at "
            + p.toAbsolutePath()
            + " (set -Dtokenpress.tiny.llava.dir)");
    return p;
  }

  /** The first of the checkpoint's reference images (sorted by name). */
  public static Path firstReferenceImage() throws IOException {
    try (java.util.stream.Stream<Path> s = Files.list(checkpoint().resolve("reference_images"))) {
      return s.sorted().findFirst().orElseThrow();
    }
  }

  public static JsonNode references() {
    return references(DEFAULT);
  }

  public static JsonNode references(String model) {
    Path f = checkpoint(model).resolve("reference_outputs.json");
    assumeTrue(Files.isRegularFile(f), "skipped: " + f.toAbsolutePath() + " not found");
    try {
      return new ObjectMapper().readTree(f.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static Path bundle() {
    return bundle(DEFAULT);
  }

  public static synchronized Path bundle(String model) {
    Path ckpt = checkpoint(model);
    Path bundle = BUNDLES.get(model);
    if (bundle == null) {
      try {
        Path dir = Files.createTempDirectory("tiny-llava-bundle");
        Path out = dir.resolve("bundle");
        BundleBuilder.build(ckpt, out, new BuildOptions(true, true));
        bundle = out;
        BUNDLES.put(model, out);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return bundle;
  }

  private static void deleteTree(Path dir) {
    try (var s = Files.walk(dir)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // best effort
    }
  }
}
