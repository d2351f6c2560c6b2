package dev.tokenpress.operators.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The stored KV formats: names, byte layouts, metadata, and the reader every consumer uses ({@link
 * #dequantize}, e.g. from a Spark SQL UDF).
 *
 * <h2>What a Parquet {@code kv_cache} row holds</h2>
 *
 * {@link LayerKvCache#chunks()} turns a layer into {@link KvChunk}s; each chunk has {@code entries}
 * (row i of the chunk is entry {@code entries[i]} of the layer), {@code kv_head} ({@link
 * KvChunk#kvHead()}: null/-1 when the chunk holds every KV head, g when it holds KV head g only),
 * {@code token_index}, {@code position}, and a {@link KvTensor} for K and one for V with:
 *
 * <ul>
 *   <li>{@code shape}: the logical shape {@code [rows, kv_heads, head_dim]}, or {@code [rows, 1,
 *       head_dim]} for a chunk of one KV head; {@code W} = the product after {@code rows} channels
 *       per row, head after head;
 *   <li>{@code dtype}, {@code layout}, {@code data}: see the table;
 *   <li>{@code bits}; {@code group_size}: elements sharing one (scale, zero) pair; {@code scales},
 *       {@code zeros}, {@code channel_scales}: float32 arrays (empty where unused). Zeros are float
 *       offsets (the group minimum), not integer zero points: {@code x = code * scale + zero}.
 * </ul>
 *
 * <table>
 *   <caption>dtypes (all little-endian, C order)</caption>
 *   <tr><th>precision</th><th>dtype</th><th>bits</th><th>data</th></tr>
 *   <tr><td>FP32</td><td>{@code float32}</td><td>32</td><td>{@code rows*W} IEEE floats ({@code <f4})</td></tr>
 *   <tr><td>FP16</td><td>{@code float16}</td><td>16</td><td>{@code rows*W} IEEE halves ({@code <f2})</td></tr>
 *   <tr><td>INT8</td><td>{@code uint8}</td><td>8</td><td>{@code rows*W} unsigned codes 0..255</td></tr>
 *   <tr><td>INT4</td><td>{@code uint4x2}</td><td>4</td><td>{@code rows*ceil(W/2)} bytes, 2 codes 0..15 each</td></tr>
 *   <tr><td>INT2</td><td>{@code uint2x4}</td><td>2</td><td>{@code rows*ceil(W/4)} bytes, 4 codes 0..3 each</td></tr>
 * </table>
 *
 * <p><b>Packing</b> (ZipCache's split of the last dimension, not interleaved): with {@code k =
 * 8/bits} codes per byte and {@code P = ceil(W/k)} bytes per row, the code of channel {@code c =
 * j*P + i} is bits {@code [j*bits, (j+1)*bits)} of byte {@code i} of its row. For 4 bits: low
 * nibble = channel i, high nibble = channel i + P. Padding channels (W..k*P-1, when W is not a
 * multiple of k) hold code 0.
 *
 * <table>
 *   <caption>layouts and metadata</caption>
 *   <tr><th>layout</th><th>used for</th><th>group_size</th><th>scales, zeros</th><th>channel_scales</th><th>x</th></tr>
 *   <tr><td>{@code token_major}</td><td>float32, float16</td><td>0</td><td>empty</td><td>empty</td>
 *       <td>the stored float</td></tr>
 *   <tr><td>{@code zipcache_key_per_channel}</td><td>quantised K</td><td>rows</td><td>[W], per channel</td><td>empty</td>
 *       <td>{@code code[t,c] * scales[c] + zeros[c]}</td></tr>
 *   <tr><td>{@code zipcache_value_per_token}</td><td>quantised V</td><td>W</td><td>[rows], per token</td>
 *       <td>[W], {@code s_c}</td><td>{@code (code[t,c] * scales[t] + zeros[t]) * channel_scales[c]}</td></tr>
 * </table>
 *
 * All arithmetic is float32 in that order (no fused multiply-add), which makes the numpy recipe
 * below bit-exact. How the metadata is computed (rounding half to even, zero ranges, NaN/Inf) is in
 * {@code ZipCacheQuantizer}'s documentation: keys per channel and values per token after channel
 * scaling by {@code s_c = sqrt(max_t |V[t,c]|)}, over the group a chunk was quantised in (for the
 * two chunks of a mixed-precision group, {@code s_c} is shared and key statistics are per chunk; a
 * per-KV-head group ({@link MixedPrecisionEncoder#encodePerHead}) is quantised head by head, so a
 * chunk of KV head g has statistics over that head's {@code head_dim} channels only).
 *
 * <h2>Reading with PyArrow and numpy</h2>
 *
 * <pre>{@code
 * import numpy as np
 *
 * def kv_to_numpy(t):
 *     """t: one k or v struct plus its quantisation metadata, as Python values (to_pylist)."""
 *     shape = tuple(t["shape"])
 *     rows, w = shape[0], int(np.prod(shape[1:]))
 *     if t["dtype"] in ("float32", "float16"):
 *         return np.frombuffer(t["data"], "<f4" if t["dtype"] == "float32" else "<f2").astype(np.float32).reshape(shape)
 *     bits = t["bits"]
 *     k = 8 // bits
 *     p = -(-w // k)
 *     u = np.frombuffer(t["data"], np.uint8).reshape(rows, p)
 *     codes = np.concatenate([(u >> (j * bits)) & ((1 << bits) - 1) for j in range(k)], axis=1)[:, :w]
 *     codes = codes.astype(np.float32)
 *     scales = np.asarray(t["scales"], np.float32)
 *     zeros = np.asarray(t["zeros"], np.float32)
 *     if t["layout"] == "zipcache_key_per_channel":
 *         x = codes * scales + zeros
 *     else:
 *         x = (codes * scales[:, None] + zeros[:, None]) * np.asarray(t["channel_scales"], np.float32)
 *     return x.reshape(shape)
 * }</pre>
 *
 * To rebuild a layer, place each chunk's rows at its {@code entries} (and, for a chunk of one KV
 * head, at that head). The golden generator {@code
 * operators/src/test/python/gen_golden_kv_quant.py} runs this exact function against its reference
 * quantiser, and {@code check_kv_rows.py} runs it on the rows a job wrote (ZipVL's mixed caches
 * included). For example, with PyArrow:
 *
 * <pre>{@code
 * import pyarrow.parquet as pq
 * rows = pq.read_table("out/kv_cache", filters=[("id", "=", "images/000123.png"), ("layer", "=", 0)]).to_pylist()
 * t = 1 + max(max(r["entries"]) for r in rows)
 * h = max(r["k"]["shape"][1] if r.get("kv_head") is None else r["kv_head"] + 1 for r in rows)
 * k = np.empty((t, h, rows[0]["k"]["shape"][2]), np.float32)
 * for r in rows:
 *     x = kv_to_numpy(r["k"])                   # a mixed group's INT4 and INT2 chunks interleave
 *     if r.get("kv_head") is None:
 *         k[r["entries"]] = x                   # every KV head: [rows, H, D]
 *     else:
 *         k[r["entries"], r["kv_head"]] = x[:, 0]   # KV head g only: [rows, 1, D]
 * }</pre>
 *
 * Each row also carries {@code compression} (ZipVL's τ, p, probe seed and bits for the layer,
 * {@code heads} and the per-head counts ({@link KvCompressionInfo}), or null) and {@code
 * trailing_float} (the layer's last entries still stored as floats).
 */
public final class KvCodecs {
  public static final String DTYPE_FLOAT32 = "float32";
  public static final String DTYPE_FLOAT16 = "float16";
  public static final String DTYPE_UINT8 = "uint8";
  public static final String DTYPE_UINT4X2 = "uint4x2";
  public static final String DTYPE_UINT2X4 = "uint2x4";

  /** Float rows, {@code [rows, kv_heads, head_dim]}. */
  public static final String LAYOUT_TOKEN_MAJOR = "token_major";

  /** Quantised keys, scale and zero per channel. */
  public static final String LAYOUT_KEY = "zipcache_key_per_channel";

  /** Quantised values, scale and zero per token, then channel scales. */
  public static final String LAYOUT_VALUE = "zipcache_value_per_token";

  private KvCodecs() {}

  /** The codec of a precision (same as {@link KvCodec#of}). */
  public static KvCodec codec(KvPrecision precision) {
    return KvCodec.of(precision);
  }

  /** The stored dtype name of a precision. */
  public static String dtype(KvPrecision precision) {
    switch (precision) {
      case FP32:
        return DTYPE_FLOAT32;
      case FP16:
        return DTYPE_FLOAT16;
      case INT8:
        return DTYPE_UINT8;
      case INT4:
        return DTYPE_UINT4X2;
      case INT2:
        return DTYPE_UINT2X4;
      default:
        throw new IllegalArgumentException("no dtype for KV precision " + precision);
    }
  }

  /** The precision of a stored dtype name. */
  public static KvPrecision precision(String dtype) {
    if (dtype != null) {
      switch (dtype) {
        case DTYPE_FLOAT32:
          return KvPrecision.FP32;
        case DTYPE_FLOAT16:
          return KvPrecision.FP16;
        case DTYPE_UINT8:
          return KvPrecision.INT8;
        case DTYPE_UINT4X2:
          return KvPrecision.INT4;
        case DTYPE_UINT2X4:
          return KvPrecision.INT2;
        default:
          break;
      }
    }
    throw new IllegalArgumentException(
        "unknown KV dtype '"
            + dtype
            + "' (expected one of float32, float16, uint8,"
            + " uint4x2, uint2x4)");
  }

  /** Codes per byte of a dtype: 0 for float dtypes, else 8 / bits. */
  static int codesPerByte(String dtype) {
    KvPrecision p = precision(dtype);
    return p.quantized() ? 8 / p.bits() : 0;
  }

  /**
   * Turns one stored K or V tensor (the fields of a Parquet {@code kv_cache} row) back into floats:
   * {@code rows * W} values, row-major in {@code shape}, bit-identical to what the cache's kernels
   * computed with. Null metadata arrays count as empty.
   *
   * @param dtype {@code float32}, {@code float16}, {@code uint8}, {@code uint4x2}, {@code uint2x4}
   * @param layout {@code token_major} for float dtypes; {@code zipcache_key_per_channel} or {@code
   *     zipcache_value_per_token} for the others
   * @param data the stored bytes, little-endian
   * @param shape {@code [rows, kv_heads, head_dim]} (any {@code [rows, ...]} with at least two
   *     dimensions; W is the product after the first)
   * @param bits 32, 16, 8, 4, 2, matching the dtype
   * @param groupSize 0 (float), rows (keys), W (values)
   * @param scales per-channel (keys, W) or per-token (values, rows) steps
   * @param zeros per-channel or per-token minimums, same length as scales
   * @param channelScales value channel scales (values: W; else empty or null)
   * @throws IllegalArgumentException naming the field when the row is inconsistent (lengths,
   *     unknown dtype/layout, non-finite metadata)
   */
  public static float[] dequantize(
      String dtype,
      String layout,
      byte[] data,
      int[] shape,
      int bits,
      int groupSize,
      float[] scales,
      float[] zeros,
      float[] channelScales) {
    validate(dtype, layout, data, shape, bits, groupSize, scales, zeros, channelScales);
    KvPrecision p = precision(dtype);
    int rows = shape[0];
    int w = width(shape);
    float[] out = new float[rows * w];
    if (p == KvPrecision.FP32) {
      ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
      return out;
    }
    if (p == KvPrecision.FP16) {
      ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < out.length; i++) {
        out[i] = Fp16.toFloat(b.getShort(i * 2));
      }
      return out;
    }
    int rowBytes = ZipCacheQuantizer.rowBytes(w, bits);
    if (LAYOUT_KEY.equals(layout)) {
      for (int r = 0; r < rows; r++) {
        for (int c = 0; c < w; c++) {
          int code = ZipCacheQuantizer.unpack(data, r, c, rowBytes, bits);
          out[r * w + c] = code * scales[c] + zeros[c];
        }
      }
    } else {
      for (int r = 0; r < rows; r++) {
        float st = scales[r];
        float zr = zeros[r];
        for (int c = 0; c < w; c++) {
          int code = ZipCacheQuantizer.unpack(data, r, c, rowBytes, bits);
          out[r * w + c] = (code * st + zr) * channelScales[c];
        }
      }
    }
    return out;
  }

  private static int width(int[] shape) {
    long w = 1;
    for (int i = 1; i < shape.length; i++) {
      w *= shape[i];
    }
    return (int) w;
  }

  static void validate(
      String dtype,
      String layout,
      byte[] data,
      int[] shape,
      int bits,
      int groupSize,
      float[] scales,
      float[] zeros,
      float[] channelScales) {
    KvPrecision p = precision(dtype);
    if (bits != p.bits()) {
      throw new IllegalArgumentException(
          "bits " + bits + " do not match dtype " + dtype + " (" + p.bits() + ")");
    }
    if (shape == null || shape.length < 2) {
      throw new IllegalArgumentException(
          "shape must be [rows, kv_heads, head_dim], found " + Arrays.toString(shape));
    }
    long n = 1;
    for (int d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "shape has a negative dimension: " + Arrays.toString(shape));
      }
      n *= d;
      if (n > Integer.MAX_VALUE) {
        throw new IllegalArgumentException(
            "shape " + Arrays.toString(shape) + " has more than 2^31-1 elements");
      }
    }
    int rows = shape[0];
    int w = width(shape);
    if (data == null) {
      throw new IllegalArgumentException("data must not be null");
    }
    int ns = scales == null ? 0 : scales.length;
    int nz = zeros == null ? 0 : zeros.length;
    int nc = channelScales == null ? 0 : channelScales.length;
    long expectBytes;
    if (!p.quantized()) {
      expectBytes = n * (bits / 8);
      expect(
          LAYOUT_TOKEN_MAJOR.equals(layout),
          "layout of " + dtype + " must be " + LAYOUT_TOKEN_MAJOR + ", found " + layout);
      expect(groupSize == 0, "group_size of " + dtype + " must be 0, found " + groupSize);
      expect(
          ns == 0 && nz == 0 && nc == 0,
          dtype + " takes no scales, zeros or channel_scales, found " + ns + ", " + nz + ", " + nc);
    } else {
      expectBytes = (long) rows * ZipCacheQuantizer.rowBytes(w, bits);
      if (LAYOUT_KEY.equals(layout)) {
        expect(
            groupSize == rows,
            "group_size of keys must be rows = " + rows + ", found " + groupSize);
        expect(
            ns == w && nz == w,
            "keys need " + w + " scales and zeros (one per channel), found " + ns + " and " + nz);
        expect(nc == 0, "keys take no channel_scales, found " + nc);
      } else if (LAYOUT_VALUE.equals(layout)) {
        expect(groupSize == w, "group_size of values must be W = " + w + ", found " + groupSize);
        expect(
            ns == rows && nz == rows,
            "values need "
                + rows
                + " scales and zeros (one per token), found "
                + ns
                + " and "
                + nz);
        expect(nc == w, "values need " + w + " channel_scales, found " + nc);
      } else {
        throw new IllegalArgumentException(
            "layout of "
                + dtype
                + " must be "
                + LAYOUT_KEY
                + " or "
                + LAYOUT_VALUE
                + ", found "
                + layout);
      }
      checkFinite("scales", scales);
      checkFinite("zeros", zeros);
      checkFinite("channel_scales", channelScales);
    }
    expect(
        data.length == expectBytes,
        dtype
            + " data of shape "
            + Arrays.toString(shape)
            + " must have "
            + expectBytes
            + " bytes, found "
            + data.length);
  }

  private static void expect(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  private static void checkFinite(String name, float[] a) {
    if (a == null) {
      return;
    }
    for (int i = 0; i < a.length; i++) {
      if (!Float.isFinite(a[i])) {
        throw new IllegalArgumentException(name + "[" + i + "] is " + a[i]);
      }
    }
  }
}
