package dev.tokenpress.evaluate.cli;

import dev.tokenpress.runtime.cli.CliRun;

/**
 * One {@code bin/tokenpress} command through {@link ToolsCli}'s dispatch, stdout and stderr
 * captured (tests only).
 */
final class ToolsRun {
  private ToolsRun() {}

  static CliRun of(String... args) {
    return CliRun.with(ToolsCli.commands(), ToolsCli.USAGE, args);
  }
}
