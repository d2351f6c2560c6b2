package dev.tokenpress.runtime.bundle;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A bundle build is byte-for-byte deterministic: the same checkpoint built again (in this JVM, in
 * child JVMs with their own hash seeds, from a copy under another directory name) gives identical
 * files, so the same {@code model_sha256} (the sha256 of {@code bundle.json}).
 */
class BundleDeterminismTest {
  @TempDir Path tmp;

  @Test
  void everyBuildOfTheSameCheckpointIsByteIdentical() throws Exception {
    Path ckpt = TinyLlavaBundle.checkpoint();
    Path renamed = copyDir(ckpt, tmp.resolve("another-name"));
    List<Path> builds =
        new ArrayList<>(List.of(tmp.resolve("in-process"), tmp.resolve("in-process-renamed")));
    BundleBuilder.build(ckpt, builds.get(0), BuildOptions.defaults());
    BundleBuilder.build(renamed, builds.get(1), BuildOptions.defaults());
    // Child JVMs: ImmutableCollections (Map.of, Map.copyOf) iterate in an order seeded per JVM.
    for (int i = 0; i < 3; i++) {
      Path out = tmp.resolve("child-jvm-" + i);
      buildInChildJvm(ckpt, out);
      builds.add(out);
    }
    Map<String, String> first = digests(builds.get(0));
    assertThat(first)
        .containsKeys(
            BundleManifest.FILE_NAME, "lm/weights.bin", "vision/weights.bin", "source_config.json");
    for (Path b : builds.subList(1, builds.size())) {
      Map<String, String> other = digests(b);
      assertThat(other.keySet()).as("files of %s", b.getFileName()).isEqualTo(first.keySet());
      assertThat(first.keySet())
          .as("files of %s that differ from %s", b.getFileName(), builds.get(0).getFileName())
          .filteredOn(f -> !first.get(f).equals(other.get(f)))
          .isEmpty();
    }
    // The CLI prints the model_sha256 a run records: the sha256 of bundle.json.
    for (int i = 0; i < 3; i++) {
      assertThat(Files.readString(tmp.resolve("child-jvm-" + i + ".log")))
          .contains("\"model_sha256\" : \"" + first.get(BundleManifest.FILE_NAME) + "\"");
    }
    Bundle.open(builds.get(builds.size() - 1)); // still a valid bundle
  }

  @Test
  void manifestBytesDoNotDependOnInsertionOrder() throws IOException {
    Map<String, String> forward = new LinkedHashMap<>();
    Map<String, String> backward = new LinkedHashMap<>();
    List<BundleFile> files = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      forward.put("key" + i, "v" + i);
      files.add(new BundleFile("dir/f" + i + ".onnx", i, "00"));
    }
    for (int i = 19; i >= 0; i--) {
      backward.put("key" + i, "v" + i);
    }
    List<BundleFile> reversed = new ArrayList<>(files);
    Collections.reverse(reversed);
    String a =
        Bundle.JSON.writeValueAsString(
            new BundleManifest(
                BundleManifest.FORMAT, 1, "llama", null, null, null, forward, files));
    String b =
        Bundle.JSON.writeValueAsString(
            new BundleManifest(
                BundleManifest.FORMAT, 1, "llama", null, null, null, backward, reversed));
    assertThat(a).isEqualTo(b);
    BundleManifest m = Bundle.JSON.readValue(a, BundleManifest.class);
    assertThat(new ArrayList<>(m.build().keySet()))
        .containsExactly(forward.keySet().stream().sorted().toArray(String[]::new));
    assertThat(m.files()).extracting(BundleFile::path).isSorted();
    assertThat(Bundle.JSON.writeValueAsString(m)).isEqualTo(a);
  }

  private static void buildInChildJvm(Path ckpt, Path out)
      throws IOException, InterruptedException {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Path log = out.resolveSibling(out.getFileName() + ".log");
    Process p =
        new ProcessBuilder(
                java,
                "-cp",
                System.getProperty("java.class.path"),
                "dev.tokenpress.runtime.cli.RuntimeCli",
                "model",
                "build",
                "--checkpoint",
                ckpt.toString(),
                "--out",
                out.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(
          "child JVM build did not finish in 120 s; log: " + Files.readString(log));
    }
    assertThat(p.exitValue())
        .as("child JVM build, log: %s", Files.readString(log, StandardCharsets.UTF_8))
        .isZero();
  }

  /** Relative path -> sha256 of every file under {@code dir}. */
  private static Map<String, String> digests(Path dir) throws IOException {
    Map<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      s.filter(Files::isRegularFile)
          .forEach(p -> m.put(dir.relativize(p).toString(), Bundle.sha256(p)));
    }
    return m;
  }

  private static Path copyDir(Path src, Path dest) throws IOException {
    try (Stream<Path> s = Files.walk(src)) {
      s.forEach(
          p -> {
            try {
              Path d = dest.resolve(src.relativize(p).toString());
              if (Files.isDirectory(p)) {
                Files.createDirectories(d);
              } else {
                Files.copy(p, d);
              }
            } catch (IOException e) {
              throw new UncheckedIOException(e);
            }
          });
    }
    return dest;
  }
}
