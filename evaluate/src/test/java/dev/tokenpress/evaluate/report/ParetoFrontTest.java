package dev.tokenpress.evaluate.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ParetoFrontTest {
  @Test
  void keepsOnlyPointsNoOtherBeats() {
    double[] cost = {1.0, 0.3, 0.5, 0.3, 0.8, 0.1};
    double[] acc = {0.70, 0.60, 0.69, 0.55, 0.65, 0.40};
    // 5 (cheapest), 1 (0.3 beats 3), 2 (0.5), 0 (1.0, most accurate); 4 is beaten by 2
    assertThat(ParetoFront.indices(cost, acc)).containsExactly(5, 1, 2, 0);
  }

  @Test
  void identicalPointsKeepTheFirstAndEqualCostKeepsTheMostAccurate() {
    assertThat(ParetoFront.indices(new double[] {2, 2, 2}, new double[] {0.5, 0.5, 0.6}))
        .containsExactly(2);
    assertThat(ParetoFront.indices(new double[] {2, 2}, new double[] {0.5, 0.5}))
        .containsExactly(0);
  }

  @Test
  void nonFinitePointsTakeNoPart() {
    double[] cost = {Double.NaN, 1, 2};
    double[] acc = {0.9, 0.5, Double.NaN};
    assertThat(ParetoFront.indices(cost, acc)).containsExactly(1);
    assertThat(ParetoFront.indices(new double[0], new double[0])).isEmpty();
  }

  @Test
  void rejectsMismatchedLengths() {
    assertThatThrownBy(() -> ParetoFront.indices(new double[2], new double[3]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("2 vs 3");
  }

  /** Against the definition, by brute force, on random points with many ties. */
  @Test
  void matchesTheDefinitionOnRandomPoints() {
    Random rnd = new Random(7);
    for (int round = 0; round < 200; round++) {
      int n = 1 + rnd.nextInt(12);
      double[] cost = new double[n];
      double[] acc = new double[n];
      for (int i = 0; i < n; i++) {
        cost[i] = rnd.nextInt(5);
        acc[i] = rnd.nextInt(5) / 4.0;
      }
      List<Integer> expected = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        boolean dominated = false;
        for (int j = 0; j < n && !dominated; j++) {
          boolean better =
              cost[j] <= cost[i] && acc[j] >= acc[i] && (cost[j] < cost[i] || acc[j] > acc[i]);
          boolean earlierTwin = j < i && cost[j] == cost[i] && acc[j] == acc[i];
          dominated = better || earlierTwin;
        }
        if (!dominated) {
          expected.add(i);
        }
      }
      int[] front = ParetoFront.indices(cost, acc);
      assertThat(front)
          .containsExactlyInAnyOrder(expected.stream().mapToInt(Integer::intValue).toArray());
      for (int k = 1; k < front.length; k++) {
        assertThat(cost[front[k]]).isGreaterThan(cost[front[k - 1]]);
        assertThat(acc[front[k]]).isGreaterThan(acc[front[k - 1]]);
      }
    }
  }
}
