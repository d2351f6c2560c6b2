package dev.tokenpress.spark;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Converts between float arrays and the stored tensor bytes, and dequantises packed integer
 * tensors. Every stored tensor is little-endian and C-order.
 *
 * <p>Quantised tensors (scheme {@code affine}): {@code data} holds unsigned integers of
 * {@code bits} bits ({@code uint8}, 8/4/2 bits) or signed bytes ({@code int8}, 8 bits), packed
 * least-significant bits first along the flattened C order, so the stored shape is the logical
 * shape with its last axis divided by {@code 8 / bits}. The value is {@code q * scale + zero}
 * ({@code zero} is 0 when the tensor has no zeros). {@code scales} and {@code zeros} are float
 * tensors of the logical rank; on each axis their size equals the logical size (one per index),
 * 1 (broadcast), or {@code ceil(size / group_size)} (one per group of {@code group_size}
 * consecutive indices on that axis; at most one such axis).
 */
public final class TensorCodec {
  private TensorCodec() {}

  /** Encodes {@code values} with shape {@code shape} as {@code dtype} (a float type). */
  public static TensorData encode(float[] values, int[] shape, DType dtype, String layout) {
    long n = TensorData.elementCount(shape);
    if (n != values.length) {
      throw new IllegalArgumentException(
          "shape " + Arrays.toString(shape) + " has " + n + " elements, values has " + values.length);
    }
    ByteBuffer out = ByteBuffer.allocate(values.length * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
    switch (dtype) {
      case FLOAT32 -> {
        for (float v : values) {
          out.putFloat(v);
        }
      }
      case FLOAT16 -> {
        for (float v : values) {
          out.putShort(floatToHalf(v));
        }
      }
      case BFLOAT16 -> {
        for (float v : values) {
          out.putShort(floatToBfloat16(v));
        }
      }
      default -> throw new IllegalArgumentException(
          "encode writes float32, float16 or bfloat16, not " + dtype.wireName());
    }
    return TensorData.wrap(out.array(), shape, dtype, layout);
  }

  /** Decodes an unquantised float tensor (float32, float16, bfloat16) to float32 values. */
  public static float[] decode(TensorData t) {
    if (!t.dtype().isFloat()) {
      throw new IllegalArgumentException(
          "tensor " + t + " holds quantised " + t.dtype().wireName()
              + " values: dequantise it with its scales, zeros and bits");
    }
    ByteBuffer in = ByteBuffer.wrap(t.data()).order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[Math.toIntExact(t.elementCount())];
    switch (t.dtype()) {
      case FLOAT32 -> in.asFloatBuffer().get(out);
      case FLOAT16 -> {
        for (int i = 0; i < out.length; i++) {
          out[i] = halfToFloat(in.getShort());
        }
      }
      case BFLOAT16 -> {
        for (int i = 0; i < out.length; i++) {
          out[i] = bfloat16ToFloat(in.getShort());
        }
      }
      default -> throw new AssertionError(t.dtype());
    }
    return out;
  }

  /** The logical shape of a stored tensor: the last axis unpacked for sub-byte {@code bits}. */
  public static int[] logicalShape(TensorData t, int bits) {
    int[] shape = t.shape();
    if (t.dtype().isFloat() || bits == 8 || bits == 16 || bits == 32) {
      return shape;
    }
    checkBits(t, bits);
    if (shape.length == 0) {
      throw new IllegalArgumentException("a packed " + bits + "-bit tensor needs rank >= 1");
    }
    shape[shape.length - 1] *= 8 / bits;
    return shape;
  }

  /**
   * Dequantises {@code q} (scheme {@code affine}, see the class comment) to float32 values in the
   * logical shape. {@code zeros} may be null. Float tensors are decoded as they are.
   */
  public static float[] dequantize(TensorData q, int bits, int groupSize, TensorData scales, TensorData zeros) {
    if (q.dtype().isFloat()) {
      return decode(q);
    }
    checkBits(q, bits);
    if (scales == null) {
      throw new IllegalArgumentException("quantised tensor " + q + " has no scales");
    }
    int[] logical = logicalShape(q, bits);
    int n = Math.toIntExact(TensorData.elementCount(logical));
    float[] scale = decode(scales);
    float[] zero = zeros == null ? null : decode(zeros);
    int[] scaleStride = groupStrides(logical, scales.shape(), groupSize, "scales");
    int[] zeroStride = zeros == null ? null : groupStrides(logical, zeros.shape(), groupSize, "zeros");
    int[] divisor = groupDivisors(logical, scales.shape(), groupSize);
    int[] zeroDivisor = zeros == null ? null : groupDivisors(logical, zeros.shape(), groupSize);
    byte[] data = q.data();
    boolean signed = q.dtype() == DType.INT8;
    int mask = (1 << bits) - 1;
    int perByte = 8 / bits;
    float[] out = new float[n];
    int rank = logical.length;
    int[] idx = new int[rank];
    for (int i = 0; i < n; i++) {
      int code;
      if (bits == 8) {
        code = signed ? data[i] : data[i] & 0xff;
      } else {
        code = ((data[i / perByte] & 0xff) >>> ((i % perByte) * bits)) & mask;
      }
      int so = 0;
      int zo = 0;
      for (int a = 0; a < rank; a++) {
        so += (idx[a] / divisor[a]) * scaleStride[a];
        if (zero != null) {
          zo += (idx[a] / zeroDivisor[a]) * zeroStride[a];
        }
      }
      out[i] = zero == null ? code * scale[so] : code * scale[so] + zero[zo];
      for (int a = rank - 1; a >= 0; a--) {
        if (++idx[a] < logical[a]) {
          break;
        }
        idx[a] = 0;
      }
    }
    return out;
  }

  private static void checkBits(TensorData q, int bits) {
    boolean ok = switch (q.dtype()) {
      case UINT8 -> bits == 8 || bits == 4 || bits == 2;
      case INT8 -> bits == 8;
      default -> false;
    };
    if (!ok) {
      throw new IllegalArgumentException(
          "bits " + bits + " is not valid for dtype " + q.dtype().wireName()
              + " (allowed: uint8 with 8, 4 or 2 bits; int8 with 8 bits)");
    }
  }

  private static int[] groupDivisors(int[] logical, int[] s, int groupSize) {
    int[] div = new int[logical.length];
    for (int a = 0; a < logical.length; a++) {
      div[a] = s[a] == logical[a] ? 1 : s[a] == 1 ? Integer.MAX_VALUE : groupSize;
    }
    return div;
  }

  /** Strides into the scales tensor per logical axis (0 on a broadcast axis). */
  private static int[] groupStrides(int[] logical, int[] s, int groupSize, String what) {
    if (s.length != logical.length) {
      throw new IllegalArgumentException(
          what + " shape " + Arrays.toString(s) + " must have the rank of the tensor's logical shape "
              + Arrays.toString(logical));
    }
    int grouped = 0;
    for (int a = 0; a < s.length; a++) {
      if (s[a] == logical[a] || s[a] == 1) {
        continue;
      }
      if (groupSize <= 0 || s[a] != (logical[a] + groupSize - 1) / groupSize) {
        throw new IllegalArgumentException(
            what + " shape " + Arrays.toString(s) + " does not match logical shape "
                + Arrays.toString(logical) + " with group_size " + groupSize + " on axis " + a);
      }
      grouped++;
    }
    if (grouped > 1) {
      throw new IllegalArgumentException(
          what + " shape " + Arrays.toString(s) + " groups more than one axis of " + Arrays.toString(logical));
    }
    int[] stride = new int[s.length];
    int acc = 1;
    for (int a = s.length - 1; a >= 0; a--) {
      stride[a] = s[a] == 1 && logical[a] != 1 ? 0 : acc;
      acc *= s[a];
    }
    return stride;
  }

  /** IEEE 754 binary16 to float32 (exact). */
  public static float halfToFloat(short h) {
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0) {
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    if (exp == 31) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
  }

  /** float32 to IEEE 754 binary16, rounding to nearest even; overflow gives infinity. */
  public static short floatToHalf(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xff;
    int mant = bits & 0x7fffff;
    if (exp == 0xff) {
      return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign;
      }
      int m = mant | 0x800000;
      int shift = 14 - e;
      int half = m >>> shift;
      int rem = m & ((1 << shift) - 1);
      int halfway = 1 << (shift - 1);
      if (rem > halfway || (rem == halfway && (half & 1) != 0)) {
        half++;
      }
      return (short) (sign | half);
    }
    int half = (e << 10) | (mant >>> 13);
    int rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
      half++;
    }
    return (short) (sign | half);
  }

  /** bfloat16 to float32 (exact). */
  public static float bfloat16ToFloat(short b) {
    return Float.intBitsToFloat((b & 0xffff) << 16);
  }

  /** float32 to bfloat16, rounding to nearest even; NaN stays NaN. */
  public static short floatToBfloat16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
    return (short) (rounded >>> 16);
  }
}
