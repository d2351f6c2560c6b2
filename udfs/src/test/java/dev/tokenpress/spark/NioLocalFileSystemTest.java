package dev.tokenpress.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NioLocalFileSystemTest {
  @TempDir java.nio.file.Path dir;

  private FileSystem open() throws Exception {
    Configuration conf = new Configuration(false);
    conf.set(NioLocalFileSystem.IMPL_KEY, NioLocalFileSystem.class.getName());
    conf.setBoolean("fs.file.impl.disable.cache", true);
    conf.set("fs.permissions.umask-mode", "022");
    return FileSystem.get(java.net.URI.create("file:///"), conf);
  }

  @Test
  void createsFilesDirectoriesAndChecksumsWithHadoopsPermissionBits() throws Exception {
    try (FileSystem fs = open()) {
      assertInstanceOf(NioLocalFileSystem.class, fs);
      Path sub = new Path(dir.toUri().toString(), "a/b");
      assertTrue(fs.mkdirs(sub));
      Path file = new Path(sub, "part-0.txt");
      try (FSDataOutputStream out = fs.create(file)) {
        out.write("hello".getBytes(StandardCharsets.UTF_8));
      }
      // Hadoop's defaults after umask 022: directories 755, files 644 (what chmod gave before).
      assertEquals(
          "rwxr-xr-x",
          PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("a/b"))));
      assertEquals(
          "rw-r--r--",
          PosixFilePermissions.toString(
              Files.getPosixFilePermissions(dir.resolve("a/b/part-0.txt"))));
      assertTrue(
          Files.exists(dir.resolve("a/b/.part-0.txt.crc")),
          "checksummed like Hadoop's LocalFileSystem");
      assertEquals("hello", new String(fs.open(file).readAllBytes(), StandardCharsets.UTF_8));

      fs.setPermission(file, new FsPermission((short) 0640));
      assertEquals(
          "rw-r-----",
          PosixFilePermissions.toString(
              Files.getPosixFilePermissions(dir.resolve("a/b/part-0.txt"))));
      assertEquals((short) 0640, fs.getFileStatus(file).getPermission().toShort());
    }
  }

  @Test
  void mapsEveryPermissionBit() {
    for (int bits = 0; bits < 512; bits++) {
      String expected =
          PosixFilePermissions.toString(NioLocalFileSystem.posix(new FsPermission((short) bits)));
      assertEquals(
          new FsPermission((short) bits).toString(),
          expected,
          "bits " + Integer.toOctalString(bits));
    }
  }
}
