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
}
