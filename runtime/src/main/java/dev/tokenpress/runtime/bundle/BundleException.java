package dev.tokenpress.runtime.bundle;

/** A bundle that cannot be used: missing, truncated or corrupted file, unknown format. */
public class BundleException extends RuntimeException {
  public BundleException(String message) {
    super(message);
  }

  public BundleException(String message, Throwable cause) {
    super(message, cause);
  }
}
