package dev.tokenpress.operators.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class FloatTensorTest {

  @Test
  void wrapChecksShape() {
    assertThatThrownBy(() -> FloatTensor.wrap(new float[6], 2, 4))
        .hasMessageContaining("has 8 elements, data has 6");
    assertThatThrownBy(() -> FloatTensor.wrap(new float[0]))
        .hasMessageContaining("at least one dimension");
    assertThatThrownBy(() -> FloatTensor.wrap(new float[0], 2, -1))
        .hasMessageContaining("negative dimension");
    FloatTensor t = FloatTensor.wrap(new float[0], 0, 5);
    assertThat(t.size()).isZero();
    assertThat(t.rowSize()).isEqualTo(5);
  }

  @Test
  void accessorsAndCopies() {
    float[] data = {1, 2, 3, 4, 5, 6};
    FloatTensor t = FloatTensor.copyOf(data, 2, 3);
    data[0] = 99;
    assertThat(t.get(0, 0)).as("copyOf copies").isEqualTo(1f);
    assertThat(t.rank()).isEqualTo(2);
    assertThat(t.dim(1)).isEqualTo(3);
    assertThat(t.shape()).containsExactly(2, 3);
    assertThat(t.get(1, 2)).isEqualTo(6f);
    assertThat(t.get(4)).isEqualTo(5f);
    assertThat(t.row(1)).containsExactly(4f, 5f, 6f);
    float[] out = t.toArray();
    out[0] = -1;
    assertThat(t.get(0)).as("toArray copies").isEqualTo(1f);
    t.shape()[0] = 7;
    assertThat(t.dim(0)).as("shape() copies").isEqualTo(2);
    assertThatThrownBy(() -> t.get(2, 0)).isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> t.dim(2)).isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> FloatTensor.vector(1f).get(0, 0)).hasMessageContaining("rank-2");
  }

  @Test
  void selectRowsReturnsNewTensor() {
    FloatTensor t = FloatTensor.copyOf(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
    FloatTensor s = t.selectRows(new int[] {2, 0});
    assertThat(s.shape()).containsExactly(2, 2);
    assertThat(s.toArray()).containsExactly(5f, 6f, 1f, 2f);
    assertThat(t.toArray()).containsExactly(1f, 2f, 3f, 4f, 5f, 6f);
    assertThatThrownBy(() -> t.selectRows(new int[] {3}))
        .isInstanceOf(IndexOutOfBoundsException.class);
  }

  @Test
  void valueEquality() {
    FloatTensor a = FloatTensor.copyOf(new float[] {1, 2}, 2);
    FloatTensor b = FloatTensor.vector(1, 2);
    assertThat(a).isEqualTo(b).hasSameHashCodeAs(b);
    assertThat(a).isNotEqualTo(FloatTensor.copyOf(new float[] {1, 2}, 1, 2));
    assertThat(a.toString()).isEqualTo("FloatTensor[2][1.0, 2.0]");
  }
}
