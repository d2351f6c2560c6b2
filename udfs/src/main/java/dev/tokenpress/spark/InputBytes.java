package dev.tokenpress.spark;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.attribute.BasicFileAttributes;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

/**
 * Reads one input file through Hadoop's FileSystem (HDFS, S3A, ...; {@code file:} paths with NIO)
 * with a size limit.
 */
public final class InputBytes {
  private InputBytes() {}

  /**
   * The whole file at {@code source}.
   *
   * @throws InputNotFoundException when nothing is at {@code source}, or a symbolic link to nothing
   * @throws InputNotAFileException when it is a directory, FIFO, socket or device (not opened)
   * @throws InputTooLargeException when the file is larger than {@code maxBytes} (not read)
   * @throws EmptyInputException when the file has no bytes
   * @throws UncheckedIOException when it cannot be read (permissions, a symbolic link loop, I/O)
   */
  public static byte[] read(String source, long maxBytes, Configuration conf) {
    java.nio.file.Path direct = localFile(source, conf);
    if (direct != null) {
      try {
        return readLocal(source, direct, maxBytes);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read " + source + ": " + reason(e), e);
      }
    }
    Path path = new Path(source);
    try {
      FileSystem fs = path.getFileSystem(conf);
      if (fs instanceof LocalFileSystem local) {
        // Local files are read with NIO directly: Hadoop's checksummed local filesystem would look
        // for a .crc sidecar and wrap the stream for every image (an image has no sidecar).
        return readLocal(source, local.pathToFile(path).toPath(), maxBytes);
      }
      if (fs instanceof RawLocalFileSystem raw) {
        return readLocal(source, raw.pathToFile(path).toPath(), maxBytes);
      }
      FileStatus st;
      try {
        st = fs.getFileStatus(path);
      } catch (FileNotFoundException e) {
        throw new InputNotFoundException(source, "does not exist");
      }
      if (st.isDirectory()) {
        throw new InputNotAFileException(source, "a directory");
      }
      long len = st.getLen();
      byte[] out = allocate(source, len, maxBytes);
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
      throw new UncheckedIOException("cannot read " + source + ": " + reason(e), e);
    }
  }

  /**
   * Why {@code e} happened, without repeating the path ({@link FileSystemException}s put it first).
   */
  private static String reason(IOException e) {
    if (e instanceof AccessDeniedException) {
      return "permission denied";
    }
    if (e instanceof FileSystemException f && f.getReason() != null) {
      return f.getReason();
    }
    return e.getMessage();
  }

  /**
   * The file of a {@code file:/abs} or {@code file:///abs} source when {@code file:} is Hadoop's
   * local filesystem (or tokenpress's {@link NioLocalFileSystem}), else null. Such a source is read
   * without a Hadoop {@link Path} and filesystem look-up (URI parsing, a regex, the filesystem
   * cache's key with the current user: a few percent of a small model's time per record). Like
   * Hadoop's {@code Path(String)}, the rest of the string is the path as is (no percent-decoding).
   */
  static java.nio.file.Path localFile(String source, Configuration conf) {
    String rest;
    if (source.startsWith("file:///")) {
      rest = source.substring(7);
    } else if (source.startsWith("file:/") && !source.startsWith("file://")) {
      rest = source.substring(5);
    } else {
      return null;
    }
    String impl = conf.get(NioLocalFileSystem.IMPL_KEY);
    if (impl != null
        && !impl.equals(NioLocalFileSystem.class.getName())
        && !impl.equals(LocalFileSystem.class.getName())) {
      return null;
    }
    return java.nio.file.Path.of(rest);
  }

  private static byte[] readLocal(String source, java.nio.file.Path file, long maxBytes)
      throws IOException {
    long len = regularFile(source, file).size();
    byte[] out = allocate(source, len, maxBytes);
    try (InputStream in = Files.newInputStream(file)) {
      int n = in.readNBytes(out, 0, out.length);
      if (n < out.length) {
        throw new IOException(source + " ended after " + n + " of " + len + " bytes");
      }
    }
    return out;
  }

  /**
   * The attributes of the regular file at {@code file} (following links); anything else is a typed
   * error, found without opening it (opening a FIFO would block).
   */
  private static BasicFileAttributes regularFile(String source, java.nio.file.Path file)
      throws IOException {
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(file, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      if (Files.isSymbolicLink(file)) {
        String target;
        try {
          target = Files.readSymbolicLink(file).toString();
        } catch (IOException unreadable) {
          target = "a path";
        }
        throw new InputNotFoundException(
            source, "is a symbolic link to " + target + ", which does not exist");
      }
      throw new InputNotFoundException(source, "does not exist");
    }
    if (a.isDirectory()) {
      throw new InputNotAFileException(source, "a directory");
    }
    if (!a.isRegularFile()) {
      throw new InputNotAFileException(source, "a FIFO, socket or device");
    }
    return a;
  }

  private static byte[] allocate(String source, long len, long maxBytes) {
    if (len > maxBytes) {
      throw new InputTooLargeException(source, len, maxBytes);
    }
    if (len == 0) {
      throw new EmptyInputException(source);
    }
    return new byte[(int) len];
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
