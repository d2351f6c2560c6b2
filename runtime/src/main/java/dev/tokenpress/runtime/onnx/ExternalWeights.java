package dev.tokenpress.runtime.onnx;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * One ONNX external-data file shared by several graphs in the same directory. A weight is written
 * once per key (the initializer name) and every graph that uses it points at the same bytes, so the
 * split graphs, the merged "post + pre" graphs and the fused graph of a bundle store each weight
 * once. Offsets are 64-byte aligned.
 *
 * <p>Graphs referencing the file must live in the file's directory (ONNX Runtime resolves the
 * location relative to the model and refuses paths that leave it).
 */
public final class ExternalWeights implements AutoCloseable {
  private static final int ALIGN = 64;

  /** Where a weight's bytes are. */
  public record Location(String file, long offset, long length) {}

  private final Path path;
  private final FileChannel channel;
  private final Map<String, Location> written = new HashMap<>();
  private long size;

  public ExternalWeights(Path path) {
    this.path = path;
    try {
      this.channel =
          FileChannel.open(
              path,
              StandardOpenOption.CREATE,
              StandardOpenOption.WRITE,
              StandardOpenOption.TRUNCATE_EXISTING);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create external data file " + path, e);
    }
  }

  public Path path() {
    return path;
  }

  /** Whether a weight with this key is already in the file. */
  public boolean contains(String key) {
    return written.containsKey(key);
  }

  /**
   * The location of the weight {@code key}, writing {@code data} (float32, little-endian) the first
   * time the key is seen. A key seen again must have the same element count.
   */
  public Location put(String key, long elements, Supplier<float[]> data) {
    Location loc = written.get(key);
    if (loc != null) {
      if (loc.length() != elements * 4) {
        throw new IllegalArgumentException(
            "external weight "
                + key
                + " was written with "
                + loc.length() / 4
                + " elements, now given "
                + elements);
      }
      return loc;
    }
    float[] values = data.get();
    if (values.length != elements) {
      throw new IllegalArgumentException(
          "weight " + key + " supplies " + values.length + " values, expected " + elements);
    }
    long offset = (size + ALIGN - 1) / ALIGN * ALIGN;
    try {
      ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      long pos = offset;
      int i = 0;
      while (i < values.length) {
        int n = Math.min(values.length - i, buf.capacity() / 4);
        buf.clear();
        buf.asFloatBuffer().put(values, i, n);
        buf.limit(n * 4);
        while (buf.hasRemaining()) {
          pos += channel.write(buf, pos);
        }
        i += n;
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write external data " + path, e);
    }
    loc = new Location(path.getFileName().toString(), offset, elements * 4);
    size = offset + elements * 4;
    written.put(key, loc);
    return loc;
  }

  /** Bytes written so far. */
  public long size() {
    return size;
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
