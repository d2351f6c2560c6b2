package dev.tokenpress.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InputBytesTest {
  @TempDir Path dir;

  @Test
  void readsLocalFilesWholeAndAppliesTheLimits() throws Exception {
    Configuration conf = new Configuration(false);
    byte[] data = new byte[1000];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i * 31);
    }
    Path f = Files.write(dir.resolve("a.bin"), data);
    assertArrayEquals(data, InputBytes.read(f.toUri().toString(), 1000, conf));
    assertArrayEquals(data, InputBytes.read(f.toString(), 1000, conf), "a scheme-less path is a local file");

    assertThrows(InputTooLargeException.class, () -> InputBytes.read(f.toUri().toString(), 999, conf));
    Path empty = Files.write(dir.resolve("empty.bin"), new byte[0]);
    assertThrows(EmptyInputException.class, () -> InputBytes.read(empty.toUri().toString(), 1000, conf));
    UncheckedIOException missing = assertThrows(UncheckedIOException.class,
        () -> InputBytes.read(dir.resolve("nope.bin").toUri().toString(), 1000, conf));
    assertTrue(missing.getMessage().startsWith("cannot read "), missing.getMessage());
  }

  @Test
  void fileUrisOfEveryFormReadTheSameBytesWithOrWithoutTheDirectPath() throws Exception {
    byte[] data = "some image bytes".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    Path f = Files.write(dir.resolve("a b%20c.png"), data);
    String hadoopForm = new org.apache.hadoop.fs.Path(f.toString()).makeQualified(
        java.net.URI.create("file:///"), new org.apache.hadoop.fs.Path("/")).toString();
    assertTrue(hadoopForm.startsWith("file:/") && !hadoopForm.startsWith("file://"), hadoopForm);
    Configuration local = new Configuration(false);
    Configuration raw = new Configuration(false);
    raw.set("fs.file.impl", org.apache.hadoop.fs.RawLocalFileSystem.class.getName());
    raw.setBoolean("fs.file.impl.disable.cache", true);
    for (String source : new String[] {hadoopForm, "file://" + f, f.toString()}) {
      assertArrayEquals(data, InputBytes.read(source, 100, local), source);
      assertArrayEquals(data, InputBytes.read(source, 100, raw), source + " through Hadoop's raw filesystem");
    }
    assertTrue(InputBytes.localFile(hadoopForm, local) != null);
    assertTrue(InputBytes.localFile("file://" + f, local) != null);
    assertTrue(InputBytes.localFile("file://host/x", local) == null, "an authority goes through Hadoop");
    assertTrue(InputBytes.localFile(hadoopForm, raw) == null, "another file: implementation goes through Hadoop");
    assertTrue(InputBytes.localFile("hdfs://nn/x", local) == null);
    assertThrows(InputTooLargeException.class, () -> InputBytes.read(hadoopForm, data.length - 1, local));
  }
}
