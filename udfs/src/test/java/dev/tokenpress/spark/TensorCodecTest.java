package dev.tokenpress.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Float codecs and dequantisation against numpy goldens (src/test/python/gen_golden_fp16.py). */
class TensorCodecTest {
  private static JsonNode golden;

  @BeforeAll
  static void load() throws IOException {
    try (InputStream in = TensorCodecTest.class.getResourceAsStream("/golden/codec.json")) {
      golden = new ObjectMapper().readTree(in);
    }
  }

  private static float[] floats() {
    JsonNode bits = golden.get("float32_bits");
    float[] f = new float[bits.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = Float.intBitsToFloat((int) bits.get(i).asLong());
    }
    return f;
  }

  @Test
  void float16EncodingMatchesNumpyRoundToNearestEven() {
    float[] f = floats();
    JsonNode expected = golden.get("float16_bits");
    for (int i = 0; i < f.length; i++) {
      assertThat(TensorCodec.floatToHalf(f[i]) & 0xffff).as("float16 of %s", f[i]).isEqualTo(expected.get(i).asInt());
    }
  }

  @Test
  void bfloat16EncodingMatchesGolden() {
    float[] f = floats();
    JsonNode expected = golden.get("bfloat16_bits");
    for (int i = 0; i < f.length; i++) {
      assertThat(TensorCodec.floatToBfloat16(f[i]) & 0xffff).as("bfloat16 of %s", f[i]).isEqualTo(expected.get(i).asInt());
    }
  }

  @Test
  void everyFloat16ValueRoundTripsExactly() {
    for (int h = 0; h < 0x10000; h++) {
      float f = TensorCodec.halfToFloat((short) h);
      if (Float.isNaN(f)) {
        assertThat(Float.isNaN(TensorCodec.halfToFloat(TensorCodec.floatToHalf(f)))).isTrue();
        continue;
      }
      assertThat(TensorCodec.floatToHalf(f) & 0xffff).as("half 0x%04x", h).isEqualTo(h);
    }
  }

  @Test
  void encodeDecodeRoundTripsFloat32ExactlyAndFloat16WithinHalfUlp() {
    float[] f = {0f, 1.5f, -2.25f, 1e-3f, 123.456f, -7e4f / 2};
    int[] shape = {2, 3};
    TensorData t32 = TensorCodec.encode(f, shape, DType.FLOAT32, "T,D");
    assertThat(TensorCodec.decode(t32)).containsExactly(f);
    assertThat(t32.data()).hasSize(24);
    ByteBuffer le = ByteBuffer.wrap(t32.data()).order(ByteOrder.LITTLE_ENDIAN);
    assertThat(le.getFloat(4)).isEqualTo(1.5f);
    TensorData t16 = TensorCodec.encode(f, shape, DType.FLOAT16, "T,D");
    float[] back = TensorCodec.decode(t16);
    for (int i = 0; i < f.length; i++) {
      assertThat(back[i]).isCloseTo(f[i], org.assertj.core.data.Offset.offset(Math.abs(f[i]) / 1024 + 1e-7f));
    }
  }

  @Test
  void dequantizesPackedFourBitCodesLikeNumpy() {
    JsonNode q = golden.get("quant");
    int[] shape = ints(q.get("shape"));
    byte[] packed = bytes(q.get("packed"));
    TensorData codes = TensorData.wrap(packed, new int[] {shape[0], shape[1], shape[2] / 2}, DType.UINT8, "H_kv,T,D");
    assertThat(TensorCodec.logicalShape(codes, 4)).containsExactly(shape);
    TensorData kScales = halfTensor(q.get("k_scales"), ints(q.get("k_scales_shape")));
    TensorData kZeros = halfTensor(q.get("k_zeros"), ints(q.get("k_scales_shape")));
    float[] k = TensorCodec.dequantize(codes, 4, q.get("k_group").asInt(), kScales, kZeros);
    assertThat(bits(k)).containsExactly(ints(q.get("k_deq_bits")));
    TensorData vScales = halfTensor(q.get("v_scales"), ints(q.get("v_scales_shape")));
    float[] v = TensorCodec.dequantize(codes, 4, q.get("v_group").asInt(), vScales, null);
    assertThat(bits(v)).containsExactly(ints(q.get("v_deq_bits")));
  }

  @Test
  void rejectsInconsistentTensorsWithTheValuesInTheMessage() {
    assertThatThrownBy(() -> TensorData.wrap(new byte[10], new int[] {2, 3}, DType.FLOAT16, "T,D"))
        .hasMessageContaining("10 bytes").hasMessageContaining("needs 12");
    assertThatThrownBy(() -> TensorData.wrap(new byte[12], new int[] {2, 3}, DType.FLOAT16, "T"))
        .hasMessageContaining("layout 'T'");
    TensorData q = TensorData.wrap(new byte[4], new int[] {2, 2}, DType.UINT8, "T,D");
    assertThatThrownBy(() -> TensorCodec.decode(q)).hasMessageContaining("dequantise");
    assertThatThrownBy(() -> TensorCodec.dequantize(q, 3, 1, q, null)).hasMessageContaining("bits 3");
    TensorData badScales = TensorCodec.encode(new float[3], new int[] {3, 1}, DType.FLOAT32, "T,D");
    assertThatThrownBy(() -> TensorCodec.dequantize(q, 8, 1, badScales, null)).hasMessageContaining("scales shape [3, 1]");
    assertThatThrownBy(() -> DType.fromWireName("float8")).hasMessageContaining("allowed: float32, float16");
  }

  private static TensorData halfTensor(JsonNode halfBits, int[] shape) {
    ByteBuffer b = ByteBuffer.allocate(halfBits.size() * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (JsonNode h : halfBits) {
      b.putShort((short) h.asInt());
    }
    return TensorData.wrap(b.array(), shape, DType.FLOAT16, "H_kv,T,D");
  }

  private static int[] ints(JsonNode a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (int) a.get(i).asLong();
    }
    return out;
  }

  private static byte[] bytes(JsonNode a) {
    byte[] out = new byte[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) a.get(i).asInt();
    }
    return out;
  }

  private static int[] bits(float[] f) {
    int[] out = new int[f.length];
    for (int i = 0; i < f.length; i++) {
      out[i] = Float.floatToRawIntBits(f[i]);
    }
    return out;
  }
}
