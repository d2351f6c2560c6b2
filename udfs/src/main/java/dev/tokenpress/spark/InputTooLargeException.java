package dev.tokenpress.spark;

/** An input file is larger than {@code input.maxBytes}; it is not read. */
public final class InputTooLargeException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public InputTooLargeException(String source, long bytes, long limit) {
    super(source + " has " + bytes + " bytes, over the input.maxBytes limit of " + limit);
  }
}
