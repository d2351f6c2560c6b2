package dev.tokenpress.operators.kv;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Fp16Test {

  @Test
  void knownBitPatterns() {
    // Values as numpy prints them: np.array([...], np.float16).view(np.uint16)
    assertThat(Fp16.fromFloat(1.0f)).isEqualTo((short) 0x3c00);
    assertThat(Fp16.fromFloat(-2.0f)).isEqualTo((short) 0xc000);
    assertThat(Fp16.fromFloat(0.1f)).isEqualTo((short) 0x2e66);
    assertThat(Fp16.fromFloat(65504f)).isEqualTo((short) 0x7bff);
    assertThat(Fp16.fromFloat(65520f)).isEqualTo((short) 0x7c00); // rounds up to inf
    assertThat(Fp16.fromFloat(0x1p-24f)).isEqualTo((short) 0x0001); // smallest subnormal
    assertThat(Fp16.fromFloat(0x1p-25f)).isEqualTo((short) 0x0000); // tie to even -> 0
    assertThat(Fp16.fromFloat(1.5f * 0x1p-24f)).isEqualTo((short) 0x0002); // tie to even -> 2
    assertThat(Fp16.fromFloat(0x1p-14f)).isEqualTo((short) 0x0400); // smallest normal
    assertThat(Fp16.fromFloat(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xfc00);
    assertThat(Float.isNaN(Fp16.toFloat(Fp16.fromFloat(Float.NaN)))).isTrue();
    assertThat(Fp16.toFloat((short) 0x3555)).isEqualTo(0.333251953125f);
  }

  @Test
  void everyHalfRoundTrips() {
    for (int h = 0; h < 65536; h++) {
      float f = Fp16.toFloat((short) h);
      if (Float.isNaN(f)) {
        continue;
      }
      assertThat(Fp16.fromFloat(f) & 0xffff).as("half 0x%04x", h).isEqualTo(h);
    }
  }

  @Test
  void roundsToNearest() {
    SplittableRandom rnd = new SplittableRandom(7);
    for (int i = 0; i < 200_000; i++) {
      float x = (float) ((rnd.nextDouble() - 0.5) * Math.pow(2, rnd.nextInt(-20, 16)));
      short h = Fp16.fromFloat(x);
      float back = Fp16.toFloat(h);
      // no other half is strictly closer
      float up = Fp16.toFloat((short) (h + 1));
      float down = Fp16.toFloat((short) (h - 1));
      double err = Math.abs((double) back - x);
      if (!Float.isNaN(up) && !Float.isInfinite(up)) {
        assertThat(err).isLessThanOrEqualTo(Math.abs((double) up - x));
      }
      if (!Float.isNaN(down) && !Float.isInfinite(down) && (h & 0x7fff) != 0) {
        assertThat(err).isLessThanOrEqualTo(Math.abs((double) down - x));
      }
    }
  }
}
