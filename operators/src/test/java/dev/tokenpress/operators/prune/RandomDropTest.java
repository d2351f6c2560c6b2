package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.api.Budget;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.RandomDropConfig;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * RandomDrop has no numpy golden (its draws come from Java's SplittableRandom); it is tested by its
 * invariants and by the uniformity of its draws.
 */
class RandomDropTest {

  private static final ModelShape SHAPE = new ModelShape(4, 2, 24, 120, true, 2, 4, 4, 2, 8);

  private static VisualTokensContext context(int n, long seed) {
    float[] f = new float[n * 2];
    for (int i = 0; i < f.length; i++) {
      f[i] = i;
    }
    return VisualTokensContext.initial(
        SHAPE, FloatTensor.wrap(f, n, 2), SignalValues.empty(), seed);
  }

  @Test
  void keepsTheBudgetInAscendingOrder() {
    for (int n : new int[] {1, 7, 576, 577, 2880}) {
      for (Budget b :
          new Budget[] {Budget.keep(5), Budget.keepRatio(0.25), Budget.dropRatio(0.9)}) {
        TokenSelection s =
            new RandomDrop(new RandomDropConfig(b)).selectVisualTokens(context(n, 42));
        int k = b.resolve(n);
        assertThat(s.inputCount()).isEqualTo(n);
        assertThat(s.keptCount()).as("n=%d %s", n, b).isEqualTo(k);
        int[] kept = s.kept();
        for (int i = 0; i < kept.length; i++) {
          assertThat(kept[i]).isBetween(0, n - 1);
          if (i > 0) {
            assertThat(kept[i]).isGreaterThan(kept[i - 1]);
          }
        }
        if (k < n) {
          assertThat(s.positions()).isEqualTo(PositionMode.REPACK);
        }
      }
    }
  }

  @Test
  void keepOriginalPositionsDrawsTheSameTokens() {
    RandomDropConfig repack =
        (RandomDropConfig)
            CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":5,\"seed\":3}]")
                .operators()
                .get(0);
    RandomDropConfig original =
        (RandomDropConfig)
            CompressionPlan.parse(
                    "[{\"op\":\"random-drop\",\"keep\":5,\"seed\":3,\"positions\":\"keep_original\"}]")
                .operators()
                .get(0);
    assertThat(repack.positions()).isEqualTo(PositionMode.REPACK);
    assertThat(repack.toJsonObject())
        .doesNotContainKey("positions"); // the default keeps old plan hashes
    assertThat(original.toJsonObject()).containsEntry("positions", "keep_original");
    TokenSelection a = new RandomDrop(repack).selectVisualTokens(context(49, 7));
    TokenSelection b = new RandomDrop(original).selectVisualTokens(context(49, 7));
    assertThat(b.positions()).isEqualTo(PositionMode.KEEP_ORIGINAL);
    assertThat(b.kept()).containsExactly(a.kept());
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () ->
                CompressionPlan.parse(
                    "[{\"op\":\"random-drop\",\"keep\":5,\"positions\":\"gaps\"}]"))
        .hasMessageContaining("positions")
        .hasMessageContaining("[keep_original, repack]")
        .hasMessageContaining("gaps");
  }

  @Test
  void keepAllIsIdentity() {
    RandomDrop op = new RandomDrop(new RandomDropConfig(Budget.keep(600)));
    assertThat(op.selectVisualTokens(context(576, 1))).isEqualTo(TokenSelection.keepAll(576));
    assertThat(
            new RandomDrop(new RandomDropConfig(Budget.keepRatio(1.0)))
                .selectVisualTokens(context(7, 1)))
        .isEqualTo(TokenSelection.keepAll(7));
  }

  @Test
  void deterministicPerSeedAndDifferentAcrossSeeds() {
    RandomDrop op = new RandomDrop(new RandomDropConfig(Budget.keepRatio(0.25), 0));
    TokenSelection a = op.selectVisualTokens(context(576, 123));
    assertThat(op.selectVisualTokens(context(576, 123))).isEqualTo(a);
    assertThat(
            new RandomDrop(new RandomDropConfig(Budget.keepRatio(0.25), 0))
                .selectVisualTokens(context(576, 123)))
        .as("a fresh instance draws the same")
        .isEqualTo(a);
    assertThat(op.selectVisualTokens(context(576, 124))).as("other record seed").isNotEqualTo(a);
    assertThat(
            new RandomDrop(new RandomDropConfig(Budget.keepRatio(0.25), 1))
                .selectVisualTokens(context(576, 123)))
        .as("other config seed")
        .isNotEqualTo(a);
  }

  @Test
  void drawsAreUniform() {
    int n = 10;
    int k = 3;
    int trials = 20000;
    RandomDrop op = new RandomDrop(new RandomDropConfig(Budget.keep(k), 5));
    int[] counts = new int[n];
    for (long seed = 0; seed < trials; seed++) {
      for (int i : op.selectVisualTokens(context(n, seed)).kept()) {
        counts[i]++;
      }
    }
    double expected = trials * (double) k / n;
    double sigma = Math.sqrt(trials * (k / (double) n) * (1 - k / (double) n));
    for (int i = 0; i < n; i++) {
      assertThat((double) counts[i])
          .as("index %d: %s", i, Arrays.toString(counts))
          .isBetween(expected - 5 * sigma, expected + 5 * sigma);
    }
  }

  @Test
  void doesNotTouchItsInput() {
    VisualTokensContext c = context(64, 9);
    float[] before = c.features().toArray();
    new RandomDrop(new RandomDropConfig(Budget.keep(8))).selectVisualTokens(c);
    assertThat(c.features().toArray()).containsExactly(before);
    assertThat(c.visualIndices()).hasSize(64);
  }

  @Test
  void declaresItsHookAndNoSignals() {
    RandomDrop op = new RandomDrop(new RandomDropConfig(Budget.keep(8), 3));
    assertThat(op.name()).isEqualTo("random-drop");
    assertThat(op.hooks()).containsExactly(Hook.VISUAL_TOKENS);
    assertThat(op.signals(SHAPE)).isEmpty();
    assertThat(op.toString()).isEqualTo("RandomDrop{\"op\":\"random-drop\",\"keep\":8,\"seed\":3}");
  }
}
