package dev.tokenpress.spark;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.apache.hadoop.conf.Configuration;
import java.nio.file.Files;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Reads one input file through Hadoop's FileSystem (HDFS, S3A, ...; {@code file:} paths with NIO)
 * with a size limit.
 */
public final class InputBytes {
  private InputBytes() {}

  /**
   * The whole file at {@code source}.
   *
   * @throws InputTooLargeException when the file is larger than {@code maxBytes} (not read)
   * @throws EmptyInputException when the file has no bytes
   * @throws UncheckedIOException when it cannot be read
   */
  public static byte[] read(String source, long maxBytes, Configuration conf) {
    Path path = new Path(source);
    try {
      FileSystem fs = path.getFileSystem(conf);
      boolean local = fs instanceof LocalFileSystem;
      // Local files are read with NIO directly: Hadoop's checksummed local filesystem would look
      // for a .crc sidecar and wrap the stream for every image (an image has no sidecar).
      java.nio.file.Path file = local ? ((LocalFileSystem) fs).pathToFile(path).toPath() : null;
      long len = local ? Files.size(file) : fs.getFileStatus(path).getLen();
      if (len > maxBytes) {
        throw new InputTooLargeException(source, len, maxBytes);
      }
      if (len == 0) {
        throw new EmptyInputException(source);
      }
      byte[] out = new byte[(int) len];
      try (InputStream in = local ? Files.newInputStream(file) : fs.open(path)) {
        int off = 0;
        while (off < out.length) {
          int n = in.read(out, off, out.length - off);
          if (n < 0) {
            throw new IOException(source + " ended after " + off + " of " + len + " bytes");
          }
          off += n;
        }
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + source + ": " + e.getMessage(), e);
    }
  }

  /** Checks inline bytes against the same limits as files. */
  public static byte[] check(String source, byte[] bytes, long maxBytes) {
    if (bytes.length > maxBytes) {
      throw new InputTooLargeException(source, bytes.length, maxBytes);
    }
    if (bytes.length == 0) {
      throw new EmptyInputException(source);
    }
    return bytes;
  }
}
