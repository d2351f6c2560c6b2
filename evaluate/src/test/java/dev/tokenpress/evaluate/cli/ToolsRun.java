package dev.tokenpress.evaluate.cli;

import dev.tokenpress.runtime.cli.RuntimeCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** One {@code bin/tokenpress} command through {@link ToolsCli}'s dispatch, stdout and stderr captured (tests only). */
record ToolsRun(int code, String out, String err) {
  static ToolsRun of(String... args) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      int code = RuntimeCli.run(args, ToolsCli.commands(), ToolsCli.USAGE);
      return new ToolsRun(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }
}
