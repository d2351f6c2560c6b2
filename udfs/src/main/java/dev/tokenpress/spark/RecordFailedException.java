package dev.tokenpress.spark;

/** Raised instead of writing an {@code error} row when the job runs with {@code failFast}. */
public final class RecordFailedException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public RecordFailedException(String id, Throwable cause) {
    super("record '" + id + "' failed and failFast is set: " + cause, cause);
  }
}
