package dev.tokenpress.spark;

/** An input file has zero bytes. */
public final class EmptyInputException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public EmptyInputException(String source) {
    super(source + " is empty (0 bytes)");
  }
}
