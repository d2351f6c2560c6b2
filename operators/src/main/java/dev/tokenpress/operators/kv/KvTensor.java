package dev.tokenpress.operators.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The K or the V of one {@link KvChunk} in stored form: what one {@code k}/{@code v} struct of a
 * Parquet {@code kv_cache} row holds ({@code data}, {@code shape}, {@code dtype}, {@code layout})
 * plus its quantisation metadata ({@code bits}, {@code group_size}, {@code scales}, {@code zeros},
 * {@code channel_scales}). The formats are in {@link KvCodecs}.
 *
 * <p>Immutable: accessors return copies. Validated on construction, so {@link #dequantize()} cannot
 * fail.
 */
public final class KvTensor {
  private static final float[] NONE = new float[0];

  private final String dtype;
  private final String layout;
  private final int[] shape;
  private final int bits;
  private final int groupSize;
  private final float[] scales;
  private final float[] zeros;
  private final float[] channelScales;
  private final byte[] data;

  /** Takes ownership of the arrays (callers in this package pass fresh ones). */
  KvTensor(
      String dtype,
      String layout,
      int[] shape,
      int bits,
      int groupSize,
      float[] scales,
      float[] zeros,
      float[] channelScales,
      byte[] data) {
    KvCodecs.validate(dtype, layout, data, shape, bits, groupSize, scales, zeros, channelScales);
    this.dtype = dtype;
    this.layout = layout;
    this.shape = shape;
    this.bits = bits;
    this.groupSize = groupSize;
    this.scales = scales == null ? NONE : scales;
    this.zeros = zeros == null ? NONE : zeros;
    this.channelScales = channelScales == null ? NONE : channelScales;
    this.data = data;
  }

  /**
   * A stored tensor read back from a Parquet row (arrays are copied; null metadata arrays mean
   * none).
   *
   * @throws IllegalArgumentException if the fields are inconsistent (see {@link
   *     KvCodecs#dequantize})
   */
  public static KvTensor of(
      String dtype,
      String layout,
      byte[] data,
      int[] shape,
      int bits,
      int groupSize,
      float[] scales,
      float[] zeros,
      float[] channelScales) {
    return new KvTensor(
        dtype,
        layout,
        shape == null ? null : shape.clone(),
        bits,
        groupSize,
        scales == null ? null : scales.clone(),
        zeros == null ? null : zeros.clone(),
        channelScales == null ? null : channelScales.clone(),
        data == null ? null : data.clone());
  }

  /** An FP32 or FP16 tensor of the given floats (FP16 rounds to nearest even). */
  static KvTensor ofFloats(KvPrecision p, int[] shape, float[] values) {
    if (p == KvPrecision.FP16) {
      short[] halves = new short[values.length];
      for (int i = 0; i < values.length; i++) {
        halves[i] = Fp16.fromFloat(values[i]);
      }
      return ofHalves(shape, halves, halves.length);
    }
    if (p != KvPrecision.FP32) {
      throw new IllegalArgumentException("not a float precision: " + p);
    }
    byte[] bytes = new byte[values.length * Float.BYTES];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(values);
    return floatTensor(p, shape, bytes);
  }

  /** A {@code float16} tensor of the first {@code count} stored halves, as little-endian bytes. */
  static KvTensor ofHalves(int[] shape, short[] halves, int count) {
    byte[] bytes = new byte[count * Short.BYTES];
    for (int i = 0, o = 0; i < count; i++, o += 2) {
      short h = halves[i];
      bytes[o] = (byte) h;
      bytes[o + 1] = (byte) (h >>> 8);
    }
    return floatTensor(KvPrecision.FP16, shape, bytes);
  }

  private static KvTensor floatTensor(KvPrecision p, int[] shape, byte[] bytes) {
    return new KvTensor(
        KvCodecs.dtype(p),
        KvCodecs.LAYOUT_TOKEN_MAJOR,
        shape,
        p.bits(),
        0,
        NONE,
        NONE,
        NONE,
        bytes);
  }

  /** {@code float32}, {@code float16}, {@code uint8}, {@code uint4x2} or {@code uint2x4}. */
  public String dtype() {
    return dtype;
  }

  /** {@code token_major}, {@code zipcache_key_per_channel} or {@code zipcache_value_per_token}. */
  public String layout() {
    return layout;
  }

  /** The logical shape {@code [rows, numKvHeads, headDim]} of the dequantised tensor. */
  public int[] shape() {
    return shape.clone();
  }

  /**
   * The shape of {@link #data()} as an array of its dtype; {@code [rows, ceil(W / k)]} when packed.
   */
  public int[] storedShape() {
    int k = KvCodecs.codesPerByte(dtype);
    if (k <= 1) {
      return shape.clone();
    }
    return new int[] {shape[0], (width() + k - 1) / k};
  }

  /** Rows (tokens). */
  public int rows() {
    return shape[0];
  }

  /** Channels per row, {@code numKvHeads * headDim}. */
  public int width() {
    int w = 1;
    for (int i = 1; i < shape.length; i++) {
      w *= shape[i];
    }
    return w;
  }

  public int bits() {
    return bits;
  }

  /** Elements sharing one scale/zero pair; 0 for float dtypes. */
  public int groupSize() {
    return groupSize;
  }

  /** Quantisation step per group (empty for float dtypes). */
  public float[] scales() {
    return scales.clone();
  }

  /** Float offset (the group minimum) per group: {@code x = code * scale + zero}. */
  public float[] zeros() {
    return zeros.clone();
  }

  /** Value channel scales {@code s_c} (values only; empty otherwise). */
  public float[] channelScales() {
    return channelScales.clone();
  }

  /** The stored bytes, little-endian, C order. */
  public byte[] data() {
    return data.clone();
  }

  /** Size of {@link #data()} in bytes. */
  public int dataLength() {
    return data.length;
  }

  /** The dequantised floats, {@code rows * width}, row-major. */
  public float[] dequantize() {
    return KvCodecs.dequantize(
        dtype, layout, data, shape, bits, groupSize, scales, zeros, channelScales);
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof KvTensor)) {
      return false;
    }
    KvTensor t = (KvTensor) o;
    return dtype.equals(t.dtype)
        && layout.equals(t.layout)
        && Arrays.equals(shape, t.shape)
        && bits == t.bits
        && groupSize == t.groupSize
        && Arrays.equals(scales, t.scales)
        && Arrays.equals(zeros, t.zeros)
        && Arrays.equals(channelScales, t.channelScales)
        && Arrays.equals(data, t.data);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return "KvTensor("
        + dtype
        + ", "
        + layout
        + ", shape="
        + Arrays.toString(shape)
        + ", bits="
        + bits
        + ", groupSize="
        + groupSize
        + ", "
        + data.length
        + " bytes)";
  }
}
