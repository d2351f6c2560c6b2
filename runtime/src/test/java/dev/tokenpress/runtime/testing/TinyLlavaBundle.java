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
 * The bundled tiny LLaVA checkpoint ({@code models/tiny-llava-shapes}) built once per JVM into a
 * temporary bundle (split + fused graphs). Tests skip with a message where the checkpoint or its
 * {@code reference_outputs.json} is absent. {@code -Dtokenpress.tiny.llava.dir=DIR} points at
 * another copy of the checkpoint.
 */
public final class TinyLlavaBundle {
  private static Path bundle;

  private TinyLlavaBundle() {}

  public static Path checkpoint() {
    String dir = System.getProperty("tokenpress.tiny.llava.dir");
    if (dir == null) {
      dir = Path.of(System.getProperty("tokenpress.project.dir", "."), "models", "tiny-llava-shapes").toString();
    }
    Path p = Path.of(dir);
    assumeTrue(Files.isRegularFile(p.resolve("model.safetensors")) && Files.isRegularFile(p.resolve("config.json")),
        "skipped: tiny-llava-shapes checkpoint not found at " + p.toAbsolutePath() + " (set -Dtokenpress.tiny.llava.dir)");
    return p;
  }

  /** The first of the checkpoint's reference images (sorted by name). */
  public static Path firstReferenceImage() throws IOException {
    try (java.util.stream.Stream<Path> s = Files.list(checkpoint().resolve("reference_images"))) {
      return s.sorted().findFirst().orElseThrow();
    }
  }

  public static JsonNode references() {
    Path f = checkpoint().resolve("reference_outputs.json");
    assumeTrue(Files.isRegularFile(f), "skipped: " + f.toAbsolutePath() + " not found");
    try {
      return new ObjectMapper().readTree(f.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static synchronized Path bundle() {
    Path ckpt = checkpoint();
    if (bundle == null) {
      try {
        Path dir = Files.createTempDirectory("tiny-llava-bundle");
        Path out = dir.resolve("bundle");
        BundleBuilder.build(ckpt, out, new BuildOptions(true, true));
        bundle = out;
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
