package dev.tokenpress.evaluate.bench;

import java.util.Arrays;

/** Small order statistics over measured samples. */
final class Stats {
  private Stats() {}

  static double median(double[] v) {
    return quantile(v, 0.5);
  }

  /** Linear-interpolated quantile {@code q} in [0, 1] of a non-empty sample. */
  static double quantile(double[] v, double q) {
    if (v.length == 0) {
      throw new IllegalArgumentException("no samples");
    }
    double[] c = v.clone();
    Arrays.sort(c);
    double pos = q * (c.length - 1);
    int lo = (int) Math.floor(pos);
    int hi = Math.min(c.length - 1, lo + 1);
    return c[lo] + (c[hi] - c[lo]) * (pos - lo);
  }

  static double mean(double[] v) {
    double s = 0;
    for (double x : v) {
      s += x;
    }
    return s / v.length;
  }

  /** Rounds to 4 significant decimals for JSON output. */
  static double round(double x) {
    if (Double.isNaN(x) || Double.isInfinite(x)) {
      return x;
    }
    return Math.round(x * 1e4) / 1e4;
  }
}
