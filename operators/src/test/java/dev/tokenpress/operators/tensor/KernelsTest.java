package dev.tokenpress.operators.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.testing.Golden;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Kernels against golden values from {@code src/test/python/gen_golden_kernels.py}, plus
 * invariants.
 */
class KernelsTest {

  private static final Map<String, Object> GOLDEN = Golden.load("kernels/kernels.json");
  private static final int[] SIZES = {1, 4, 7, 13, 64, 576, 577, 2880};

  @Test
  void softmaxMatchesNumpy() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("softmax"))) {
      float[] logits = Golden.floats(c.get("logits"));
      float[] before = logits.clone();
      double[] expected = Golden.doubles(c.get("probs"));
      float[] probs = Kernels.softmax(logits);
      assertThat(logits).as("input unchanged").containsExactly(before);
      for (int i = 0; i < probs.length; i++) {
        assertThat((double) probs[i])
            .as("%s[%d]", c.get("name"), i)
            .isCloseTo(expected[i], within(1e-6 * Math.max(1e-3, expected[i]) + 1e-9));
        if (expected[i] == 0.0) {
          assertThat(probs[i]).as("masked entry is exactly 0").isEqualTo(0f);
        }
      }
    }
  }

  @Test
  void softmaxInPlaceAndOffsets() {
    float[] x = {9f, 1f, 2f, 3f, 9f};
    float[] expected = Kernels.softmax(new float[] {1f, 2f, 3f});
    Kernels.softmax(x, 1, 3, x, 1);
    assertThat(Arrays.copyOfRange(x, 1, 4)).containsExactly(expected);
    assertThat(x[0]).isEqualTo(9f);
    assertThat(x[4]).isEqualTo(9f);
  }

  @Test
  void softmaxSumsToOneForLuceneSizes() {
    SplittableRandom rng = new SplittableRandom(3);
    for (int n : SIZES) {
      float[] x = new float[n];
      for (int i = 0; i < n; i++) {
        x[i] = (float) (rng.nextGaussian() * 10);
      }
      double sum = 0;
      for (float p : Kernels.softmax(x)) {
        assertThat(p).isBetween(0f, 1f);
        sum += p;
      }
      assertThat(sum).as("n=%d", n).isCloseTo(1.0, within(1e-6 * n));
    }
  }

  @Test
  void softmaxRejectsBadInput() {
    assertThatThrownBy(() -> Kernels.softmax(new float[0]))
        .hasMessageContaining("softmax over 0 values");
    assertThatThrownBy(() -> Kernels.softmax(new float[] {1f, Float.NaN}))
        .hasMessageContaining("input 1 is NaN");
    assertThatThrownBy(() -> Kernels.softmax(new float[] {Float.NEGATIVE_INFINITY}))
        .hasMessageContaining("all -Infinity");
  }

  @Test
  void headMeanSoftmaxMatchesNumpy() {
    @SuppressWarnings("unchecked")
    Map<String, Object> c = (Map<String, Object>) GOLDEN.get("head_mean_softmax");
    int heads = Golden.integer(c.get("heads"));
    int len = Golden.integer(c.get("len"));
    float[] logits = Golden.floats(c.get("logits"));
    float[] before = logits.clone();
    double[] expected = Golden.doubles(c.get("mean"));
    float[] mean = Kernels.headMeanSoftmax(logits, heads, len);
    assertThat(logits).containsExactly(before);
    for (int j = 0; j < len; j++) {
      assertThat((double) mean[j]).isCloseTo(expected[j], within(1e-7));
    }
    assertThatThrownBy(() -> Kernels.headMeanSoftmax(logits, 4, len))
        .hasMessageContaining("is not [heads=4");
  }

  @Test
  void meanOverHeads() {
    float[] x = {1f, 2f, 3f, 3f, 4f, 5f};
    assertThat(Kernels.meanOverHeads(x, 2, 3)).containsExactly(2f, 3f, 4f);
    assertThat(Kernels.meanOverHeads(x, 1, 6)).containsExactly(x);
  }

  @Test
  void topKMatchesNumpyIncludingTies() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("topk"))) {
      float[] scores = Golden.floats(c.get("scores"));
      float[] before = scores.clone();
      int[] ks = Golden.ints(c.get("k"));
      List<?> expected = (List<?>) c.get("expected");
      for (int i = 0; i < ks.length; i++) {
        assertThat(Kernels.topK(scores, ks[i]))
            .as("%s k=%d", c.get("name"), ks[i])
            .containsExactly(Golden.ints(expected.get(i)));
        int[] sorted = Golden.ints(expected.get(i));
        Arrays.sort(sorted);
        assertThat(Kernels.topKInIndexOrder(scores, ks[i])).containsExactly(sorted);
      }
      assertThat(scores).containsExactly(before);
    }
  }

  @Test
  void topKAgreesWithBruteForceOnLuceneSizes() {
    SplittableRandom rng = new SplittableRandom(11);
    for (int n : SIZES) {
      float[] s = new float[n];
      for (int i = 0; i < n; i++) {
        s[i] = rng.nextInt(5) == 0 ? 0.5f : (float) rng.nextGaussian();
      }
      int k = Math.max(1, n / 4);
      int[] top = Kernels.topK(s, k);
      assertThat(top).hasSize(k).doesNotHaveDuplicates();
      // Rank order: non-increasing score, ascending index among equal scores.
      for (int i = 1; i < k; i++) {
        float a = s[top[i - 1]];
        float b = s[top[i]];
        assertThat(a > b || (a == b && top[i - 1] < top[i])).as("n=%d rank %d", n, i).isTrue();
      }
      // Everything outside is not better than the k-th.
      boolean[] in = new boolean[n];
      for (int t : top) {
        in[t] = true;
      }
      float kth = s[top[k - 1]];
      for (int j = 0; j < n; j++) {
        if (!in[j]) {
          assertThat(s[j] < kth || (s[j] == kth && j > top[k - 1])).isTrue();
        }
      }
    }
  }

  @Test
  void topKHandlesSpecialValuesAndRejectsNaN() {
    float[] s = {
      Float.NEGATIVE_INFINITY, -0f, 0f, Float.POSITIVE_INFINITY, -Float.MAX_VALUE, Float.MIN_VALUE
    };
    assertThat(Kernels.topK(s, 6)).containsExactly(3, 5, 1, 2, 4, 0);
    assertThat(Kernels.topK(s, 100)).hasSize(6);
    assertThat(Kernels.topK(new float[0], 3)).isEmpty();
    assertThatThrownBy(() -> Kernels.topK(new float[] {1f, Float.NaN}, 1))
        .hasMessageContaining("score 1 is NaN");
    assertThatThrownBy(() -> Kernels.topK(s, -1)).hasMessageContaining("k must be >= 0, got -1");
  }

  @Test
  void roundHalfUp() {
    assertThat(Kernels.roundHalfUp(6.5)).isEqualTo(7);
    assertThat(Kernels.roundHalfUp(6.4999)).isEqualTo(6);
    assertThat(Kernels.roundHalfUp(0.5 * 576)).isEqualTo(288);
    assertThat(Kernels.roundHalfUp(-0.5)).isEqualTo(0);
    assertThat(Kernels.roundHalfUp(0.0)).isEqualTo(0);
    assertThatThrownBy(() -> Kernels.roundHalfUp(Double.NaN))
        .hasMessageContaining("cannot round NaN");
    assertThatThrownBy(() -> Kernels.roundHalfUp(1e12)).hasMessageContaining("cannot round");
  }

  @Test
  void strictlyIncreasing() {
    assertThat(Kernels.isStrictlyIncreasing(new int[0])).isTrue();
    assertThat(Kernels.isStrictlyIncreasing(new int[] {3})).isTrue();
    assertThat(Kernels.isStrictlyIncreasing(new int[] {1, 2, 5})).isTrue();
    assertThat(Kernels.isStrictlyIncreasing(new int[] {1, 1})).isFalse();
    assertThat(Kernels.isStrictlyIncreasing(new int[] {2, 1})).isFalse();
  }
}
