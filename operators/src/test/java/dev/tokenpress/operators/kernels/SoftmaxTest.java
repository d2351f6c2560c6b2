package dev.tokenpress.operators.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SoftmaxTest {
  @Test
  void expIsAccurateOverTheSoftmaxRange() {
    SplittableRandom rnd = new SplittableRandom(1);
    double worst = 0;
    for (int i = 0; i < 1_000_000; i++) {
      float x = (float) (-87.0 * rnd.nextDouble());
      double want = Math.exp(x);
      worst = Math.max(worst, Math.abs(Softmax.exp(x) - want) / want);
    }
    assertThat(worst).isLessThan(4e-7);
    assertThat(Softmax.exp(0f)).isEqualTo(1f);
    assertThat(Softmax.exp(-1e9f)).isZero();
    assertThat(Softmax.exp(Float.NEGATIVE_INFINITY)).isZero();
    assertThat(Float.isNaN(Softmax.exp(Float.NaN))).isTrue();
    assertThat(Softmax.exp(1f)).isCloseTo((float) Math.E, within(1e-6f));
  }

  @Test
  void rowsSumToOneAndMaskedRowsAreZero() {
    float[] x = {1, 2, 3, -1e9f, 0.5f};
    Softmax.inPlace(x, 0, 5);
    float sum = 0;
    for (float v : x) {
      sum += v;
    }
    assertThat(sum).isCloseTo(1f, within(1e-6f));
    assertThat(x[3]).isZero();
    assertThat(x[2])
        .isCloseTo(
            (float) (Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(0.5))),
            within(1e-6f));
    float[] masked = {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
    Softmax.inPlace(masked, 0, 2);
    assertThat(masked).containsExactly(0f, 0f);
  }
}
