package dev.tokenpress.operators.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** dtype names, the packed byte layout, and the validation of {@link KvCodecs#dequantize}. */
class KvCodecsTest {

  @Test
  void dtypeNamesRoundTrip() {
    for (KvPrecision p : KvPrecision.values()) {
      assertThat(KvCodecs.precision(KvCodecs.dtype(p))).isEqualTo(p);
      assertThat(KvCodecs.codec(p).precision()).isEqualTo(p);
      assertThat(KvPrecision.ofBits(p.bits())).isEqualTo(p);
    }
    assertThat(KvCodecs.dtype(KvPrecision.INT8)).isEqualTo("uint8");
    assertThat(KvCodecs.dtype(KvPrecision.INT4)).isEqualTo("uint4x2");
    assertThat(KvCodecs.dtype(KvPrecision.INT2)).isEqualTo("uint2x4");
    assertThat(KvPrecision.INT4.quantized()).isTrue();
    assertThat(KvPrecision.FP16.quantized()).isFalse();
    assertThat(KvCodec.of(KvPrecision.INT2).appendable()).isFalse();
    assertThat(KvCodec.of(KvPrecision.FP16).appendable()).isTrue();
    assertThatThrownBy(() -> KvCodecs.precision("int4"))
        .hasMessageContaining("unknown KV dtype 'int4'");
    assertThatThrownBy(() -> KvPrecision.ofBits(3))
        .hasMessageContaining("no KV precision has 3 bits");
  }

  /** Hand-checked: 4-bit codes of channel i in the low nibble, channel i + P in the high nibble. */
  @Test
  void packsHalvesAndQuartersNotInterleaved() {
    // keys of 2 rows x 5 channels: row 0 is all minimum (code 0), row 1 all maximum (code qmax)
    KvLayout layout = new KvLayout(1, 5);
    float[] k = {0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
    KvSegment s4 = ZipCacheCodec.ofBits(4).encode(layout, k, k, 2, new int[2], new int[2]);
    KvTensor t4 = s4.export(0).get(0).k();
    // P = 3: byte i holds channel i (low) and i + 3 (high); channel 5 is padding (0)
    assertThat(t4.data()).containsExactly(0, 0, 0, (byte) 0xff, (byte) 0xff, 0x0f);
    assertThat(t4.storedShape()).containsExactly(2, 3);
    assertThat(t4.shape()).containsExactly(2, 1, 5);
    assertThat(t4.groupSize()).isEqualTo(2);
    KvSegment s2 = ZipCacheCodec.ofBits(2).encode(layout, k, k, 2, new int[2], new int[2]);
    // P = 2: byte 0 holds channels 0, 2, 4, (6); byte 1 holds 1, 3, (5), (7)
    assertThat(s2.export(0).get(0).k().data()).containsExactly(0, 0, 0x3f, 0x0f);
    KvSegment s8 = ZipCacheCodec.ofBits(8).encode(layout, k, k, 2, new int[2], new int[2]);
    assertThat(s8.export(0).get(0).k().data()).containsExactly(0, 0, 0, 0, 0, -1, -1, -1, -1, -1);
    assertThat(s8.export(0).get(0).k().storedShape()).containsExactly(2, 1, 5);
  }

  @Test
  void floatDtypesAreLittleEndian() {
    byte[] f32 =
        ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f).array();
    assertThat(
            KvCodecs.dequantize(
                "float32", "token_major", f32, new int[] {1, 1, 2}, 32, 0, null, null, null))
        .containsExactly(1.5f, -2f);
    byte[] f16 = {0x00, 0x3c, 0x00, (byte) 0xc0}; // 1.0, -2.0
    assertThat(
            KvCodecs.dequantize(
                "float16",
                "token_major",
                f16,
                new int[] {2, 1},
                16,
                0,
                new float[0],
                new float[0],
                new float[0]))
        .containsExactly(1f, -2f);
  }

  @Test
  void rejectsInconsistentRowsWithTheFieldName() {
    int[] shape = {2, 1, 4};
    byte[] b4 = new byte[4];
    float[] w4 = {1, 1, 1, 1};
    float[] r2 = {1, 1};
    assertThat(KvCodecs.dequantize("uint4x2", KvCodecs.LAYOUT_KEY, b4, shape, 4, 2, w4, w4, null))
        .hasSize(8);
    assertThat(KvCodecs.dequantize("uint4x2", KvCodecs.LAYOUT_VALUE, b4, shape, 4, 4, r2, r2, w4))
        .hasSize(8);
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize("uint4x2", KvCodecs.LAYOUT_KEY, b4, shape, 2, 2, w4, w4, null))
        .hasMessageContaining("bits 2 do not match dtype uint4x2");
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize(
                    "uint4x2", KvCodecs.LAYOUT_KEY, new byte[5], shape, 4, 2, w4, w4, null))
        .hasMessageContaining("must have 4 bytes, found 5");
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize("uint4x2", KvCodecs.LAYOUT_KEY, b4, shape, 4, 2, r2, w4, null))
        .hasMessageContaining("keys need 4 scales and zeros");
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize(
                    "uint4x2", KvCodecs.LAYOUT_VALUE, b4, shape, 4, 4, r2, r2, null))
        .hasMessageContaining("values need 4 channel_scales");
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize("uint4x2", KvCodecs.LAYOUT_VALUE, b4, shape, 4, 2, r2, r2, w4))
        .hasMessageContaining("group_size of values must be W = 4");
    assertThatThrownBy(
            () -> KvCodecs.dequantize("uint4x2", "token_major", b4, shape, 4, 2, w4, w4, null))
        .hasMessageContaining("layout of uint4x2 must be");
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize(
                    "uint4x2",
                    KvCodecs.LAYOUT_KEY,
                    b4,
                    shape,
                    4,
                    2,
                    new float[] {1, Float.NaN, 1, 1},
                    w4,
                    null))
        .hasMessageContaining("scales[1] is NaN");
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize(
                    "float32", "token_major", new byte[32], shape, 32, 0, w4, null, null))
        .hasMessageContaining("float32 takes no scales");
    assertThatThrownBy(
            () ->
                KvCodecs.dequantize(
                    "float32", "token_major", new byte[32], new int[] {8}, 32, 0, null, null, null))
        .hasMessageContaining("shape must be [rows, kv_heads, head_dim]");
    assertThatThrownBy(
            () -> KvTensor.of("uint4x2", KvCodecs.LAYOUT_KEY, null, shape, 4, 2, w4, w4, null))
        .hasMessageContaining("data must not be null");
  }

  @Test
  void tensorsAreImmutableValues() {
    KvLayout layout = new KvLayout(1, 4);
    float[] k = {1, 2, 3, 4, 5, 6, 7, 9};
    KvChunk c =
        ZipCacheCodec.ofBits(4)
            .encode(layout, k, k, 2, new int[] {4, 5}, new int[] {0, 1})
            .export(0)
            .get(0);
    KvTensor t = c.k();
    t.data()[0] = 99;
    t.scales()[0] = 99;
    c.entries()[0] = 99;
    assertThat(t.data()[0]).isNotEqualTo((byte) 99);
    assertThat(t.scales()[0]).isNotEqualTo(99f);
    assertThat(c.entries()[0]).isZero();
    KvTensor copy =
        KvTensor.of(
            t.dtype(),
            t.layout(),
            t.data(),
            t.shape(),
            t.bits(),
            t.groupSize(),
            t.scales(),
            t.zeros(),
            t.channelScales());
    assertThat(copy).isEqualTo(t);
    assertThat(copy.dequantize()).containsExactly(t.dequantize());
  }
}
