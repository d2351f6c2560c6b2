package dev.tokenpress.spark;

/**
 * An input path names a directory, FIFO, socket or device instead of a regular file; it is not
 * opened.
 */
public final class InputNotAFileException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public InputNotAFileException(String source, String what) {
    super("not a regular file: " + source + " is " + what);
  }
}
