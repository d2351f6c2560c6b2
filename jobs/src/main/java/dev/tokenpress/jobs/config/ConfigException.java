package dev.tokenpress.jobs.config;

/**
 * An invalid job configuration, detected at start. The message names the field (dotted path) and,
 * where the field is an enumeration or a closed set of keys, the allowed values.
 */
public final class ConfigException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final String field;

  public ConfigException(String field, String message) {
    super("config " + field + ": " + message);
    this.field = field;
  }

  /** Dotted path of the offending field, e.g. {@code output.batchRows}. */
  public String field() {
    return field;
  }

  /**
   * Thrown from config record constructors (of any job); {@link ConfigLoader} prefixes the
   * enclosing path, so a record used in several sections names the right one.
   */
  public static IllegalArgumentException invalid(String name, String message) {
    return new FieldError(name, message);
  }

  /** A field-level error raised inside a config record, before its path is known. */
  static final class FieldError extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    final String name;
    final String detail;

    FieldError(String name, String detail) {
      super(name + ": " + detail);
      this.name = name;
      this.detail = detail;
    }
  }
}
