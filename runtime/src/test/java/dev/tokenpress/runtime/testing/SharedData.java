package dev.tokenpress.runtime.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates {@code ../shared} test data; tests skip with a clear message where it is absent. */
public final class SharedData {
  private SharedData() {}

  /** {@code ../shared/models/stories260K}, or the test is skipped. */
  public static Path stories260K() {
    Path dir = stories260KOrNull();
    assumeTrue(dir != null, stories260KMissing());
    return dir;
  }

  /** {@code ../shared/models/stories260K}, or null when absent (for class-level fixtures). */
  public static Path stories260KOrNull() {
    Path dir = storiesDir();
    boolean ok =
        Files.isRegularFile(dir.resolve("stories260K.bin"))
            && Files.isRegularFile(dir.resolve("tok512.bin"))
            && Files.isRegularFile(dir.resolve("GOLDEN.md"));
    return ok ? dir : null;
  }

  /** The skip message. */
  public static String stories260KMissing() {
    return "skipped: stories260K test data not found at "
        + storiesDir().toAbsolutePath()
        + " (set -Dtokenpress.shared.dir to the shared/ directory)";
  }

  private static Path storiesDir() {
    return Path.of(
        System.getProperty("tokenpress.shared.dir", "../shared"), "models", "stories260K");
  }
}
