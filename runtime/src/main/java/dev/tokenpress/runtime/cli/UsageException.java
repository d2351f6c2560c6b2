package dev.tokenpress.runtime.cli;

/**
 * A command line that cannot be run: the message says what is wrong, the CLI prints usage and exits
 * 2.
 */
public class UsageException extends RuntimeException {
  public UsageException(String message) {
    super(message);
  }
}
