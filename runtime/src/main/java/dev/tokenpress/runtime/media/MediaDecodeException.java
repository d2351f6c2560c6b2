package dev.tokenpress.runtime.media;

/**
 * An image could not be decoded. Unchecked; the {@link #reason()} says why, so callers (the Spark
 * job writes it into the {@code error} column) can count failures by kind without parsing messages.
 */
public final class MediaDecodeException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Why decoding failed. */
  public enum Reason {
    /** Zero bytes (or a null input). */
    EMPTY,
    /** A known image format whose data ends early. */
    TRUNCATED,
    /** A known image format whose data is invalid (bad header, bad compressed stream). */
    CORRUPT,
    /** No image format recognises the bytes. */
    NOT_AN_IMAGE,
    /**
     * Width × height (or the byte size) is above the configured limit; rejected from the header.
     */
    TOO_LARGE,
    /**
     * A recognised image format or colour model that tokenpress cannot decode (e.g. WebP, HEIC).
     */
    UNSUPPORTED
  }

  private final Reason reason;

  public MediaDecodeException(Reason reason, String message) {
    super(reason + ": " + message);
    this.reason = reason;
  }

  public MediaDecodeException(Reason reason, String message, Throwable cause) {
    super(reason + ": " + message, cause);
    this.reason = reason;
  }

  public Reason reason() {
    return reason;
  }
}
