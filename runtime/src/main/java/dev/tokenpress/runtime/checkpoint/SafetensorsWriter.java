package dev.tokenpress.runtime.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Writes float tensors as one {@code .safetensors} file (header padded with spaces to 8 bytes, as
 * the reference implementation does), stored as F32 (default), F16 (round to nearest even) or BF16
 * (round to nearest even). Used by converters, the random checkpoint generator and for bundle side
 * files. Tensors added with a {@link Supplier} are computed one at a time while writing, so a
 * checkpoint of several GB needs memory for its largest tensor only.
 */
public final class SafetensorsWriter {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final DType dtype;
  private final List<String> names = new ArrayList<>();
  private final Map<String, Supplier<float[]>> data = new LinkedHashMap<>();
  private final Map<String, long[]> shapes = new LinkedHashMap<>();
  private final Map<String, String> metadata = new LinkedHashMap<>();

  /** A writer of F32 tensors. */
  public SafetensorsWriter() {
    this(DType.F32);
  }

  /** A writer storing every tensor as {@code dtype}. */
  public SafetensorsWriter(DType dtype) {
    if (dtype == null) {
      throw new IllegalArgumentException("dtype must not be null (F32, F16 or BF16)");
    }
    this.dtype = dtype;
  }

  /** Adds a tensor; the array is not copied and must not change until {@link #write}. */
  public SafetensorsWriter add(String name, float[] values, long... shape) {
    long n = elements(shape);
    if (n != values.length) {
      throw new IllegalArgumentException(
          "tensor "
              + name
              + " has "
              + values.length
              + " values, shape "
              + Arrays.toString(shape)
              + " needs "
              + n);
    }
    return add(name, () -> values, shape);
  }

  /**
   * Adds a tensor whose values are computed by {@code values} during {@link #write}, once, in order
   * of addition; the array it returns must have exactly the shape's element count.
   */
  public SafetensorsWriter add(String name, Supplier<float[]> values, long... shape) {
    long n = elements(shape);
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "tensor "
              + name
              + " of shape "
              + Arrays.toString(shape)
              + " has "
              + n
              + " elements, more than one float[] holds");
    }
    if (data.containsKey(name)) {
      throw new IllegalArgumentException("duplicate tensor name " + name);
    }
    names.add(name);
    data.put(name, values);
    shapes.put(name, shape.clone());
    return this;
  }

  private static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  public SafetensorsWriter metadata(String key, String value) {
    metadata.put(key, value);
    return this;
  }

  public void write(Path path) {
    ObjectNode header = JSON.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode m = header.putObject("__metadata__");
      metadata.forEach(m::put);
    }
    long off = 0;
    for (String name : names) {
      ObjectNode t = header.putObject(name);
      t.put("dtype", dtype.name());
      ArrayNode s = t.putArray("shape");
      for (long d : shapes.get(name)) {
        s.add(d);
      }
      long bytes = (long) dtype.bytes() * elements(shapes.get(name));
      t.putArray("data_offsets").add(off).add(off + bytes);
      off += bytes;
    }
    byte[] hj;
    try {
      hj = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    int padded = (hj.length + 7) / 8 * 8;
    byte[] h = Arrays.copyOf(hj, padded);
    Arrays.fill(h, hj.length, padded, (byte) ' ');
    try (FileChannel ch =
        FileChannel.open(
            path,
            StandardOpenOption.CREATE,
            StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
      writeFully(ch, len);
      writeFully(ch, ByteBuffer.wrap(h));
      ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      int eb = dtype.bytes();
      for (String name : names) {
        float[] v = data.get(name).get();
        if (v.length != elements(shapes.get(name))) {
          throw new IllegalStateException(
              "tensor "
                  + name
                  + " produced "
                  + v.length
                  + " values, shape "
                  + Arrays.toString(shapes.get(name))
                  + " needs "
                  + elements(shapes.get(name)));
        }
        int i = 0;
        while (i < v.length) {
          int n = Math.min(v.length - i, buf.capacity() / eb);
          buf.clear();
          encode(v, i, n, buf);
          buf.limit(n * eb);
          writeFully(ch, buf);
          i += n;
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path, e);
    }
  }

  private void encode(float[] v, int from, int n, ByteBuffer buf) {
    switch (dtype) {
      case F32:
        buf.asFloatBuffer().put(v, from, n);
        break;
      case F16:
        for (int i = 0; i < n; i++) {
          buf.putShort(2 * i, dev.tokenpress.operators.kv.Fp16.fromFloat(v[from + i]));
        }
        break;
      case BF16:
        for (int i = 0; i < n; i++) {
          buf.putShort(2 * i, toBf16(v[from + i]));
        }
        break;
      default:
        throw new IllegalStateException("unsupported dtype " + dtype);
    }
  }

  /** The nearest bfloat16 (ties to even) as raw bits; NaN stays NaN. */
  static short toBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
    b.position(0);
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }
}
