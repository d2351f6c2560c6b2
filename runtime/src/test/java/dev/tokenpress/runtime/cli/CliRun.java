package dev.tokenpress.runtime.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * One {@link RuntimeCli#run} call with stdout and stderr captured (tests only; shared through the
 * test-jar).
 */
public record CliRun(int code, String out, String err) {
  /** The runtime's own commands. */
  public static CliRun of(String... args) {
    return with(Map.of(), "", args);
  }

  /** The runtime's commands plus {@code extra} (e.g. the tools of the evaluate module). */
  public static CliRun with(
      Map<String, RuntimeCli.Command> extra, String extraUsage, String... args) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      int code = RuntimeCli.run(args, extra, extraUsage);
      return new CliRun(
          code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }
}
