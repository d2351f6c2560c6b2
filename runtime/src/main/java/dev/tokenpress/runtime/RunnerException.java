package dev.tokenpress.runtime;

/**
 * Unchecked failure of model execution: the one place a checked {@code OrtException} (or an I/O
 * failure while running a model) is wrapped, with the graph or file named in the message.
 */
public class RunnerException extends RuntimeException {
  public RunnerException(String message, Throwable cause) {
    super(message, cause);
  }

  public RunnerException(String message) {
    super(message);
  }
}
