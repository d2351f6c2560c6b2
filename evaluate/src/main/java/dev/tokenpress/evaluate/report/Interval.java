package dev.tokenpress.evaluate.report;

/**
 * An estimate with its 95 % interval, e.g. the accuracy loss of a plan against the empty plan with
 * its paired-bootstrap percentile interval. A percentile interval need not contain the estimate, so
 * only {@code lo <= hi} is required.
 */
public record Interval(double estimate, double lo, double hi) {
  public Interval {
    if (!Double.isFinite(estimate) || !Double.isFinite(lo) || !Double.isFinite(hi)) {
      throw new IllegalArgumentException(
          "interval values must be finite, got " + estimate + " [" + lo + ", " + hi + "]");
    }
    if (lo > hi) {
      throw new IllegalArgumentException("interval lo must be <= hi, got [" + lo + ", " + hi + "]");
    }
  }

  /**
   * An interval that says nothing is known beyond the estimate (e.g. the baseline against itself).
   */
  public static Interval exact(double estimate) {
    return new Interval(estimate, estimate, estimate);
  }
}
