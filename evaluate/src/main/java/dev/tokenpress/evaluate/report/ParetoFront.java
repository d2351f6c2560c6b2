package dev.tokenpress.evaluate.report;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The plans no other plan beats on both a cost (lower is better) and accuracy (higher is better).
 */
public final class ParetoFront {
  private ParetoFront() {}

  /**
   * Indices of the non-dominated points, in increasing cost. A point is dominated when another has
   * cost {@code <=} and value {@code >=}, one of them strictly; of identical points the first
   * (lowest index) is kept. Points with a non-finite cost or value take no part.
   */
  public static int[] indices(double[] cost, double[] value) {
    if (cost.length != value.length) {
      throw new IllegalArgumentException(
          "cost and value lengths differ: " + cost.length + " vs " + value.length);
    }
    List<Integer> order = new ArrayList<>();
    for (int i = 0; i < cost.length; i++) {
      if (Double.isFinite(cost[i]) && Double.isFinite(value[i])) {
        order.add(i);
      }
    }
    // cheapest first; among equal costs the most accurate first; then by index (stable choice)
    order.sort(
        Comparator.<Integer>comparingDouble(i -> cost[i])
            .thenComparing(Comparator.<Integer>comparingDouble(i -> value[i]).reversed())
            .thenComparingInt(i -> i));
    int[] front = new int[order.size()];
    int n = 0;
    double best = Double.NEGATIVE_INFINITY;
    for (int i : order) {
      if (value[i] > best) {
        front[n++] = i;
        best = value[i];
      }
    }
    return Arrays.copyOf(front, n);
  }
}
