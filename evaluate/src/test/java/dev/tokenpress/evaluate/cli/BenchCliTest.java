package dev.tokenpress.evaluate.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.runtime.cli.CliRun;
import org.junit.jupiter.api.Test;

/**
 * Dispatch of {@code bench runtime}, {@code bench memory} and {@code eval} through {@link
 * ToolsCli}: usage errors exit 2.
 */
class BenchCliTest {
  private static String[] run(int expectedCode, String... args) {
    CliRun r = ToolsRun.of(args);
    assertThat(r.code()).as(r.err()).isEqualTo(expectedCode);
    return r.err().split("\n");
  }

  @Test
  void usageErrorsExitTwo() {
    assertThat(run(2, "bench", "runtime", "--images", "x")[0])
        .isEqualTo("error: --images must be an integer, found 'x'");
    assertThat(run(2, "bench", "memory", "--generations", "0")[0])
        .isEqualTo("error: --generations must be >= 1, found 0");
    assertThat(run(2, "bench", "runtime", "--images", "5")[0])
        .isEqualTo("error: --bundle is required");
    assertThat(run(2, "eval", "--images", "5")[0])
        .startsWith("error: --bundle not given and the bundled evaluation model is not at ");
    assertThat(run(2, "bench")[0]).startsWith("error: unknown command 'bench'");
  }

  @Test
  void usageListsTheCommands() {
    assertThat(ToolsCli.USAGE)
        .contains("bench runtime --bundle DIR")
        .contains("bench memory --bundle DIR")
        .contains("eval [--bundle DIR]");
  }

  @Test
  void missingBundleIsARuntimeError() {
    assertThat(run(1, "eval", "--bundle", "/nonexistent/bundle", "--images", "1")[0])
        .startsWith("error: ");
  }
}
