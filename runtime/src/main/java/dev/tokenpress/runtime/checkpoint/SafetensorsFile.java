package dev.tokenpress.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reader of one {@code .safetensors} file: an 8-byte little-endian header length, a JSON header
 * ({@code dtype}, {@code shape}, {@code data_offsets} per tensor, optional {@code __metadata__}),
 * then raw little-endian data. Tensors are read with positional reads (no whole-file mapping, so
 * files over 2 GB are fine) and converted from F32/F16/BF16 to float.
 *
 * <p>Thread-safe for reads (positional reads do not move a shared file pointer).
 */
public final class SafetensorsFile implements AutoCloseable {
  private static final long MAX_HEADER = 100L << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path path;
  private final FileChannel channel;
  private final Map<String, TensorEntry> tensors;
  private final Map<String, String> metadata;

  private SafetensorsFile(
      Path path,
      FileChannel channel,
      Map<String, TensorEntry> tensors,
      Map<String, String> metadata) {
    this.path = path;
    this.channel = channel;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /** Opens and parses the header; the file stays open until {@link #close()}. */
  public static SafetensorsFile open(Path path) {
    FileChannel ch = null;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ);
      long size = ch.size();
      if (size < 8) {
        throw new IllegalArgumentException("not a safetensors file (" + size + " bytes): " + path);
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0, path);
      long headerLen = lenBuf.getLong(0);
      if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
        throw new IllegalArgumentException(
            "corrupt safetensors header length "
                + headerLen
                + " in "
                + path
                + " (file has "
                + size
                + " bytes)");
      }
      ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
      readFully(ch, hb, 8, path);
      JsonNode header = JSON.readTree(new String(hb.array(), StandardCharsets.UTF_8));
      long dataStart = 8 + headerLen;
      Map<String, TensorEntry> tensors = new LinkedHashMap<>();
      Map<String, String> meta = new LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> e : header.properties()) {
        if (e.getKey().equals("__metadata__")) {
          e.getValue().properties().forEach(m -> meta.put(m.getKey(), m.getValue().asText()));
          continue;
        }
        JsonNode t = e.getValue();
        DType dtype = DType.parse(t.path("dtype").asText(), e.getKey());
        JsonNode shapeNode = t.path("shape");
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
          shape[i] = shapeNode.get(i).asLong();
        }
        JsonNode off = t.path("data_offsets");
        long b = dataStart + off.get(0).asLong();
        long en = dataStart + off.get(1).asLong();
        if (en > size) {
          throw new IllegalArgumentException(
              "tensor "
                  + e.getKey()
                  + " ends at byte "
                  + en
                  + " beyond the end of "
                  + path
                  + " ("
                  + size
                  + " bytes): truncated file?");
        }
        tensors.put(e.getKey(), new TensorEntry(e.getKey(), dtype, shape, b, en));
      }
      return new SafetensorsFile(
          path, ch, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(meta));
    } catch (IOException e) {
      closeQuietly(ch);
      throw new UncheckedIOException("cannot read safetensors file " + path, e);
    } catch (RuntimeException e) {
      closeQuietly(ch);
      throw e;
    }
  }

  public Path path() {
    return path;
  }

  /** Tensors by name, in header order. */
  public Map<String, TensorEntry> tensors() {
    return tensors;
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  public TensorEntry entry(String name) {
    TensorEntry e = tensors.get(name);
    if (e == null) {
      throw new IllegalArgumentException("tensor " + name + " not found in " + path);
    }
    return e;
  }

  /** The whole tensor as floats. */
  public float[] readFloats(String name) {
    TensorEntry e = entry(name);
    long n = e.elementCount();
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "tensor " + name + " has " + n + " elements, too many for one float[]");
    }
    float[] out = new float[(int) n];
    readFloats(name, 0, out, 0, (int) n);
    return out;
  }

  /**
   * Reads {@code count} elements starting at element {@code first} (row-major) into {@code dst}.
   */
  public void readFloats(String name, long first, float[] dst, int dstOff, int count) {
    TensorEntry e = entry(name);
    if (first < 0 || first + count > e.elementCount()) {
      throw new IllegalArgumentException(
          "elements [" + first + ", " + (first + count) + ") outside tensor " + e);
    }
    int eb = e.dtype().bytes();
    int chunkElems = Math.max(1, (1 << 20) / eb);
    ByteBuffer buf =
        ByteBuffer.allocate(Math.min(count, chunkElems) * eb).order(ByteOrder.LITTLE_ENDIAN);
    int done = 0;
    while (done < count) {
      int n = Math.min(count - done, chunkElems);
      buf.clear().limit(n * eb);
      readFully(channel, buf, e.begin() + (first + done) * eb, path);
      convert(e.dtype(), buf, n, dst, dstOff + done);
      done += n;
    }
  }

  private static void convert(DType dtype, ByteBuffer buf, int n, float[] dst, int off) {
    switch (dtype) {
      case F32:
        buf.asFloatBuffer().get(dst, off, n);
        break;
      case F16:
        for (int i = 0; i < n; i++) {
          dst[off + i] = dev.tokenpress.operators.kv.Fp16.toFloat(buf.getShort(2 * i));
        }
        break;
      case BF16:
        for (int i = 0; i < n; i++) {
          dst[off + i] = Float.intBitsToFloat((buf.getShort(2 * i) & 0xffff) << 16);
        }
        break;
      default:
        throw new IllegalStateException("unhandled dtype " + dtype);
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos, Path path) {
    try {
      long p = pos;
      while (buf.hasRemaining()) {
        int r = ch.read(buf, p);
        if (r < 0) {
          throw new IllegalArgumentException(
              "unexpected end of " + path + " at byte " + p + ": truncated file?");
        }
        p += r;
      }
      buf.flip();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + path, e);
    }
  }

  private static void closeQuietly(FileChannel ch) {
    if (ch != null) {
      try {
        ch.close();
      } catch (IOException ignored) {
        // already failing
      }
    }
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close " + path, e);
    }
  }
}
