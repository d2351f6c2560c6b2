package dev.tokenpress.runtime.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates {@code ../shared} test data; tests skip with a clear message where it is absent. */
public final class SharedData {
    private SharedData() {}

    /** {@code ../shared/models/stories260K}, or the test is skipped. */
    public static Path stories260K() {
        String shared = System.getProperty("tokenpress.shared.dir", "../shared");
        Path dir = Path.of(shared, "models", "stories260K");
        assumeTrue(Files.isRegularFile(dir.resolve("stories260K.bin")) && Files.isRegularFile(dir.resolve("tok512.bin"))
                        && Files.isRegularFile(dir.resolve("GOLDEN.md")),
                "skipped: stories260K test data not found at " + dir.toAbsolutePath()
                        + " (set -Dtokenpress.shared.dir to the shared/ directory)");
        return dir;
    }
}
