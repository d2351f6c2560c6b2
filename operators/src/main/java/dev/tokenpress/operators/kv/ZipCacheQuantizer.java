package dev.tokenpress.operators.kv;

/**
 * The arithmetic of the ZipCache KV quantisers (He et al., "ZipCache", arXiv 2405.14256; code
 * {@code ThisisBillhe/ZipCache}, {@code CompressUtils/compress_function.py}), shared by {@link
 * ZipCacheCodec}, {@link MixedPrecisionEncoder} and {@link KvCodecs#dequantize}.
 *
 * <p>A group is {@code n} token rows of {@code W = numKvHeads * headDim} channels, token-major. All
 * arithmetic is float32 (Java {@code float}, which is strict IEEE 754; no fused multiply-add), so
 * it agrees bit for bit with numpy float32 ({@code src/test/python/gen_golden_kv_quant.py}):
 *
 * <pre>
 *   qmax = 2^bits - 1
 *   keys (true_channel_wise_quantize), per channel c over the group's tokens:
 *     zero_c = min_t K[t,c];  scale_c = (max_t K[t,c] - zero_c) / qmax
 *     code   = scale_c == 0 ? 0 : clamp(rint((K[t,c] - zero_c) / scale_c), 0, qmax)
 *     deq    = code * scale_c + zero_c
 *   values (channel_separate_mixedprec_tokenwise):
 *     s_c    = sqrt(max_t |V[t,c]|)              channel scale over the whole group
 *     U[t,c] = s_c == 0 ? 0 : V[t,c] / s_c       an all-zero channel stays exactly 0
 *     per token t over all W channels:
 *     zero_t = min_c U[t,c];  scale_t = (max_c U[t,c] - zero_t) / qmax
 *     code   = scale_t == 0 ? 0 : clamp(rint((U[t,c] - zero_t) / scale_t), 0, qmax)
 *     deq    = (code * scale_t + zero_t) * s_c
 * </pre>
 *
 * <ul>
 *   <li><b>Rounding</b> is round-half-to-even ({@link Math#rint}), as {@code torch.round} and
 *       {@code np.rint}.
 *   <li><b>Zero range</b>: when max == min (or the range is so small that the scale underflows to
 *       0) every code is 0 and the element dequantises to the minimum: a constant key channel comes
 *       back exactly; a constant value row comes back as {@code (V / s_c) * s_c}, within one
 *       rounding of each operation. ZipCache divides by zero there (NaN codes).
 *   <li><b>Non-finite input</b> (NaN, ±Inf) is rejected with an {@link IllegalArgumentException}
 *       naming the tensor, row and channel: min/max quantisation cannot represent it and would
 *       silently spread NaN over a whole channel or token. So is a key channel whose max − min
 *       overflows float32.
 *   <li>The clamp only matters where float rounding gives a quotient a hair above qmax.
 * </ul>
 *
 * <p><b>Packing</b> ({@link #pack}): {@code k = 8 / bits} codes per byte and {@code P = ceil(W /
 * k)} bytes per row; channel {@code c = j * P + i} is stored in byte {@code i} of its row at bits
 * {@code [j * bits, (j + 1) * bits)}. That is ZipCache's "split the last dimension into halves /
 * quarters" ({@code transfer_8bit_to_4bit_batchwise}: low nibble = first half), extended to {@code
 * W % k != 0} by padding channels {@code W .. k*P-1} with code 0.
 */
final class ZipCacheQuantizer {
  private ZipCacheQuantizer() {}

  static void checkBits(int bits) {
    if (bits != 8 && bits != 4 && bits != 2) {
      throw new IllegalArgumentException("ZipCache bits must be 8, 4 or 2, found " + bits);
    }
  }

  /** Codes per byte. */
  static int perByte(int bits) {
    return 8 / bits;
  }

  /** Packed bytes per row of {@code width} channels. */
  static int rowBytes(int width, int bits) {
    int k = perByte(bits);
    return (width + k - 1) / k;
  }

  /** Rejects NaN and infinities with the row and channel of the first one. */
  static void checkFinite(String what, float[] x, int rows, int width) {
    for (int r = 0; r < rows; r++) {
      int o = r * width;
      for (int c = 0; c < width; c++) {
        float f = x[o + c];
        if (!Float.isFinite(f)) {
          throw new IllegalArgumentException(
              what
                  + " row "
                  + r
                  + " channel "
                  + c
                  + " is "
                  + f
                  + ": ZipCache quantisation needs finite values");
        }
      }
    }
  }

  /** The quantised code of {@code x} given a group's zero and scale. */
  static int code(float x, float zero, float scale, int qmax) {
    if (scale == 0f) {
      return 0;
    }
    double q = Math.rint((x - zero) / scale); // float subtraction and division, exact rint
    if (q <= 0) {
      return 0;
    }
    return q >= qmax ? qmax : (int) q;
  }

  /**
   * Key codes per channel: fills {@code codes[r * width + c]}, {@code scale[c]} and {@code
   * zero[c]}. With {@code rows == 0} the metadata is 0.
   */
  static void quantizeKeys(
      float[] k, int rows, int width, int bits, int[] codes, float[] scale, float[] zero) {
    int qmax = (1 << bits) - 1;
    if (rows == 0) {
      return;
    }
    for (int c = 0; c < width; c++) {
      float mn = k[c];
      float mx = k[c];
      for (int r = 1; r < rows; r++) {
        float x = k[r * width + c];
        mn = Math.min(mn, x);
        mx = Math.max(mx, x);
      }
      float range = mx - mn;
      if (!Float.isFinite(range)) {
        throw new IllegalArgumentException(
            "key channel " + c + " range [" + mn + ", " + mx + "] overflows float32");
      }
      scale[c] = range / qmax;
      zero[c] = mn;
    }
    for (int r = 0; r < rows; r++) {
      int o = r * width;
      for (int c = 0; c < width; c++) {
        codes[o + c] = code(k[o + c], zero[c], scale[c], qmax);
      }
    }
  }

  /** {@code s_c = sqrt(max_t |V[t,c]|)} over {@code rows} rows. */
  static float[] channelScales(float[] v, int rows, int width) {
    float[] s = new float[width];
    for (int r = 0; r < rows; r++) {
      int o = r * width;
      for (int c = 0; c < width; c++) {
        s[c] = Math.max(s[c], Math.abs(v[o + c]));
      }
    }
    for (int c = 0; c < width; c++) {
      // sqrt in double rounded to float is the correctly rounded float sqrt
      s[c] = (float) Math.sqrt(s[c]);
    }
    return s;
  }

  /**
   * Value codes per token after channel scaling by {@code channelScale}: fills {@code codes[r *
   * width + c]}, {@code scale[r]} and {@code zero[r]}.
   */
  static void quantizeValues(
      float[] v,
      int rows,
      int width,
      int bits,
      float[] channelScale,
      int[] codes,
      float[] scale,
      float[] zero) {
    int qmax = (1 << bits) - 1;
    float[] u = new float[width];
    for (int r = 0; r < rows; r++) {
      int o = r * width;
      float mn = Float.POSITIVE_INFINITY;
      float mx = Float.NEGATIVE_INFINITY;
      for (int c = 0; c < width; c++) {
        float sc = channelScale[c];
        float x = sc == 0f ? 0f : v[o + c] / sc;
        u[c] = x;
        mn = Math.min(mn, x);
        mx = Math.max(mx, x);
      }
      float st = (mx - mn) / qmax;
      scale[r] = st;
      zero[r] = mn;
      for (int c = 0; c < width; c++) {
        codes[o + c] = code(u[c], mn, st, qmax);
      }
    }
  }

  /** Packs {@code rows * width} codes into {@code rows * rowBytes(width, bits)} bytes. */
  static byte[] pack(int[] codes, int rows, int width, int bits) {
    int p = rowBytes(width, bits);
    byte[] out = new byte[rows * p];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < width; c++) {
        int i = c % p;
        int j = c / p;
        out[r * p + i] |= (byte) (codes[r * width + c] << (j * bits));
      }
    }
    return out;
  }

  /** The code of channel {@code c} of row {@code r} in packed bytes. */
  static int unpack(byte[] packed, int r, int c, int rowBytes, int bits) {
    int b = packed[r * rowBytes + c % rowBytes] & 0xff;
    return (b >>> ((c / rowBytes) * bits)) & ((1 << bits) - 1);
  }
}
