package dev.tokenpress.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's checksummed local filesystem ({@code file:}) with permissions set through {@link
 * Files#setPosixFilePermissions} instead of a {@code chmod} child process.
 *
 * <p>Without Hadoop's native library (which Spark does not ship), {@link RawLocalFileSystem} starts
 * a {@code chmod} process for every file and directory it creates: each Parquet part file, its
 * {@code .crc}, each task's temporary directory, {@code _SUCCESS}. Measured in the compress job on
 * {@code local[2]}: about 60 process starts per run of 256 images, on the executor threads' and the
 * driver's critical path. The permission bits written are the same; where the file store has no
 * POSIX attributes this falls back to Hadoop's own implementation.
 *
 * <p>Enabled by {@code spark.hadoop.fs.file.impl=dev.tokenpress.spark.NioLocalFileSystem}, which
 * the compress job sets unless the configuration names another implementation. Other schemes (HDFS,
 * S3, GCS) are not affected.
 */
public class NioLocalFileSystem extends LocalFileSystem {
  /** The Hadoop configuration key that selects the {@code file:} implementation. */
  public static final String IMPL_KEY = "fs.file.impl";

  public NioLocalFileSystem() {
    super(new Raw());
  }

  /** The raw (checksum-free) layer whose permission changes use NIO. */
  static final class Raw extends RawLocalFileSystem {
    @Override
    public void setPermission(Path p, FsPermission permission) throws IOException {
      java.nio.file.Path file = pathToFile(p).toPath();
      try {
        Files.setPosixFilePermissions(file, posix(permission));
      } catch (UnsupportedOperationException notPosix) {
        super.setPermission(p, permission);
      }
    }
  }

  /**
   * The POSIX permission set of Hadoop's {@code rwxrwxrwx} bits (sticky bit not representable, as
   * in chmod's octal form).
   */
  static Set<PosixFilePermission> posix(FsPermission permission) {
    short bits = permission.toShort();
    Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[] order = {
      PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
          PosixFilePermission.OTHERS_READ,
      PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE,
          PosixFilePermission.GROUP_READ,
      PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
          PosixFilePermission.OWNER_READ,
    };
    for (int i = 0; i < order.length; i++) {
      if ((bits & (1 << i)) != 0) {
        set.add(order[i]);
      }
    }
    return set;
  }
}
