package dev.tokenpress.spark;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/** Reads one input file through Hadoop's FileSystem (local, HDFS, S3A, ...) with a size limit. */
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
      FileStatus st = fs.getFileStatus(path);
      long len = st.getLen();
      if (len > maxBytes) {
        throw new InputTooLargeException(source, len, maxBytes);
      }
      if (len == 0) {
        throw new EmptyInputException(source);
      }
      byte[] out = new byte[(int) len];
      try (InputStream in = fs.open(path)) {
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
