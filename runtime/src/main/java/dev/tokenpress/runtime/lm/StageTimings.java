package dev.tokenpress.runtime.lm;

/**
 * Wall time of one generation by stage, in nanoseconds. {@code decodeOrtNanos} and {@code
 * decodeAttentionNanos} split the decode time into ORT graph calls and the Java attention kernel
 * (split runtime only; zero for the fused runner).
 */
public record StageTimings(
    long prefillNanos,
    long decodeNanos,
    int decodeSteps,
    long decodeOrtNanos,
    long decodeAttentionNanos) {

  public double prefillMs() {
    return prefillNanos / 1e6;
  }

  public double decodeMs() {
    return decodeNanos / 1e6;
  }

  /** Mean wall time of one decode step (ms), NaN without steps. */
  public double msPerDecodeStep() {
    return decodeSteps == 0 ? Double.NaN : decodeNanos / 1e6 / decodeSteps;
  }
}
