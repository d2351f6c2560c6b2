package dev.tokenpress.evaluate.cli;

import dev.tokenpress.runtime.cli.RuntimeCli;
import dev.tokenpress.runtime.cli.UsageException;
import java.io.UncheckedIOException;
import java.util.Arrays;

/**
 * Entry point of {@code bin/tokenpress}: {@code report} here, every other command in the runtime's
 * {@link RuntimeCli}. Usage errors exit 2, failures 1, each with one message on stderr.
 */
public final class ToolsCli {
  private ToolsCli() {}

  public static void main(String[] args) {
    if (args.length == 0 || !args[0].equals("report")) {
      if (args.length == 1 && (args[0].equals("--help") || args[0].equals("-h"))) {
        System.err.println("  " + ReportCommand.USAGE + "\n");
      }
      RuntimeCli.main(args);
      return;
    }
    try {
      System.out.println(ReportCommand.run(Arrays.copyOfRange(args, 1, args.length)));
    } catch (UsageException e) {
      System.err.println("error: " + e.getMessage() + "\n\nusage: tokenpress " + ReportCommand.USAGE);
      System.exit(2);
    } catch (IllegalArgumentException | UncheckedIOException e) {
      System.err.println("error: " + e.getMessage());
      System.exit(1);
    }
  }
}
