package dev.tokenpress.operators.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class LayerKvCacheTest {
  private static final KvLayout LAYOUT = new KvLayout(2, 4);

  private static float[] row(int i, float sign) {
    float[] r = new float[LAYOUT.width()];
    for (int d = 0; d < r.length; d++) {
      r[d] = sign * (i * 10 + d) / 8f;
    }
    return r;
  }

  private static LayerKvCache filled(int n, KvPrecision p) {
    LayerKvCache c = new LayerKvCache(LAYOUT, KvCodec.of(p));
    for (int i = 0; i < n; i++) {
      c.append(row(i, 1), 0, row(i, -1), 0, i, 100 + i);
    }
    return c;
  }

  @Test
  void appendKeepsIndicesPositionsAndValues() {
    LayerKvCache c = filled(130, KvPrecision.FP32); // grows past the initial capacity
    assertThat(c.length()).isEqualTo(130);
    assertThat(c.tokenIndices()[129]).isEqualTo(129);
    assertThat(c.positions()[5]).isEqualTo(105);
    float[] k = c.keys();
    float[] v = c.values();
    assertThat(k[77 * 8 + 3]).isEqualTo(row(77, 1)[3]);
    assertThat(v[77 * 8 + 3]).isEqualTo(row(77, -1)[3]);
    assertThat(c.storedBytes()).isEqualTo(130L * 8 * 2 * 4);
  }

  @Test
  void retainKeepsChosenEntriesInOrder() {
    LayerKvCache c = filled(10, KvPrecision.FP32);
    c.recode(0, 4, KvCodec.of(KvPrecision.FP16));
    c.retain(new int[] {1, 3, 4, 9});
    assertThat(c.length()).isEqualTo(4);
    assertThat(c.tokenIndices()).containsExactly(1, 3, 4, 9);
    assertThat(c.positions()).containsExactly(101, 103, 104, 109);
    assertThat(c.precisions())
        .containsExactly(KvPrecision.FP16, KvPrecision.FP16, KvPrecision.FP32, KvPrecision.FP32);
    assertThat(c.keys()[3 * 8 + 2]).isEqualTo(row(9, 1)[2]);
    assertThatThrownBy(() -> c.retain(new int[] {2, 1}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("ascending");
  }

  @Test
  void recodeMixesPrecisionAndAppendsContinue() {
    LayerKvCache c = filled(12, KvPrecision.FP32);
    c.recode(3, 8, KvCodec.of(KvPrecision.FP16));
    assertThat(c.length()).isEqualTo(12);
    assertThat(c.segments()).hasSize(3);
    KvPrecision[] p = c.precisions();
    assertThat(p[2]).isEqualTo(KvPrecision.FP32);
    assertThat(p[3]).isEqualTo(KvPrecision.FP16);
    assertThat(p[7]).isEqualTo(KvPrecision.FP16);
    assertThat(p[8]).isEqualTo(KvPrecision.FP32);
    assertThat(c.tokenIndices()).containsExactly(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
    float[] k = c.keys();
    for (int i = 0; i < 12; i++) {
      for (int d = 0; d < 8; d++) {
        assertThat(k[i * 8 + d])
            .isCloseTo(row(i, 1)[d], within(Math.abs(row(i, 1)[d]) * 1e-3f + 1e-6f));
      }
    }
    c.append(row(12, 1), 0, row(12, -1), 0, 12, 112);
    assertThat(c.length()).isEqualTo(13);
    assertThat(c.segments()).hasSize(3); // appended into the trailing fp32 segment
    assertThat(c.positions()[12]).isEqualTo(112);
  }

  @Test
  void fp16CacheRoundTripErrorIsBounded() {
    SplittableRandom rnd = new SplittableRandom(3);
    LayerKvCache c = new LayerKvCache(LAYOUT, KvCodec.of(KvPrecision.FP16));
    float[] ref = new float[50 * 8];
    for (int i = 0; i < 50; i++) {
      float[] r = new float[8];
      for (int d = 0; d < 8; d++) {
        r[d] = (float) (rnd.nextGaussian() * 4);
        ref[i * 8 + d] = r[d];
      }
      c.append(r, 0, r, 0, i, i);
    }
    float[] back = c.values();
    for (int i = 0; i < ref.length; i++) {
      // binary16 has 11 significant bits: relative error <= 2^-11
      assertThat(Math.abs(back[i] - ref[i]))
          .isLessThanOrEqualTo(Math.abs(ref[i]) * 0x1p-11f + 0x1p-25f);
    }
    assertThat(c.storedBytes()).isEqualTo(50L * 8 * 2 * 2);
  }
}
