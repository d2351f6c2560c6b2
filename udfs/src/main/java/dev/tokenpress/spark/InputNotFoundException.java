package dev.tokenpress.spark;

/** An input file does not exist (any more), or is a symbolic link to nothing. */
public final class InputNotFoundException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public InputNotFoundException(String source, String why) {
    super("not found: " + source + " " + why);
  }
}
