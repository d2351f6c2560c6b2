package dev.tokenpress.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
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
    assertArrayEquals(
        data, InputBytes.read(f.toString(), 1000, conf), "a scheme-less path is a local file");

    assertThrows(
        InputTooLargeException.class, () -> InputBytes.read(f.toUri().toString(), 999, conf));
    Path empty = Files.write(dir.resolve("empty.bin"), new byte[0]);
    assertThrows(
        EmptyInputException.class, () -> InputBytes.read(empty.toUri().toString(), 1000, conf));
    InputNotFoundException missing =
        assertThrows(
            InputNotFoundException.class,
            () -> InputBytes.read(dir.resolve("nope.bin").toUri().toString(), 1000, conf));
    assertEquals(
        "not found: " + dir.resolve("nope.bin").toUri() + " does not exist", missing.getMessage());
  }

  /**
   * Every kind of non-file is a typed error with a plain message, through NIO and through Hadoop.
   */
  @Test
  void danglingLinksDirectoriesFifosAndLoopsAreTypedErrorsAndNeverOpened() throws Exception {
    Path dangling = Files.createSymbolicLink(dir.resolve("gone.png"), dir.resolve("deleted.png"));
    Path sub = Files.createDirectories(dir.resolve("a.png"));
    Path loopA = dir.resolve("loop-a.png");
    Files.createSymbolicLink(loopA, dir.resolve("loop-b.png"));
    Files.createSymbolicLink(dir.resolve("loop-b.png"), loopA);
    Path fifo = dir.resolve("pipe.png");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    assertEquals(0, mkfifo.waitFor());
    Configuration nio = new Configuration(false);
    Configuration raw = new Configuration(false);
    raw.set("fs.file.impl", org.apache.hadoop.fs.RawLocalFileSystem.class.getName());
    raw.setBoolean("fs.file.impl.disable.cache", true);
    for (Configuration conf : new Configuration[] {nio, raw}) {
      String s = dangling.toUri().toString();
      InputNotFoundException nf =
          assertThrows(InputNotFoundException.class, () -> InputBytes.read(s, 100, conf));
      assertEquals(
          "not found: "
              + s
              + " is a symbolic link to "
              + dir.resolve("deleted.png")
              + ", which does not exist",
          nf.getMessage());
      String d = sub.toUri().toString();
      InputNotAFileException isDir =
          assertThrows(InputNotAFileException.class, () -> InputBytes.read(d, 100, conf));
      assertEquals("not a regular file: " + d + " is a directory", isDir.getMessage());
      String p = fifo.toUri().toString();
      // A FIFO without a writer would block an open() forever: it must be refused from its
      // attributes.
      InputNotAFileException isFifo =
          assertTimeoutPreemptively(
              java.time.Duration.ofSeconds(10),
              () ->
                  assertThrows(InputNotAFileException.class, () -> InputBytes.read(p, 100, conf)));
      assertEquals(
          "not a regular file: " + p + " is a FIFO, socket or device", isFifo.getMessage());
      String l = loopA.toUri().toString();
      UncheckedIOException loop =
          assertThrows(UncheckedIOException.class, () -> InputBytes.read(l, 100, conf));
      assertTrue(
          loop.getMessage().startsWith("cannot read " + l + ": Too many levels of symbolic links"),
          loop.getMessage());
    }
  }

  @Test
  void fileUrisOfEveryFormReadTheSameBytesWithOrWithoutTheDirectPath() throws Exception {
    byte[] data = "some image bytes".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    Path f = Files.write(dir.resolve("a b%20c.png"), data);
    String hadoopForm =
        new org.apache.hadoop.fs.Path(f.toString())
            .makeQualified(java.net.URI.create("file:///"), new org.apache.hadoop.fs.Path("/"))
            .toString();
    assertTrue(hadoopForm.startsWith("file:/") && !hadoopForm.startsWith("file://"), hadoopForm);
    Configuration local = new Configuration(false);
    Configuration raw = new Configuration(false);
    raw.set("fs.file.impl", org.apache.hadoop.fs.RawLocalFileSystem.class.getName());
    raw.setBoolean("fs.file.impl.disable.cache", true);
    for (String source : new String[] {hadoopForm, "file://" + f, f.toString()}) {
      assertArrayEquals(data, InputBytes.read(source, 100, local), source);
      assertArrayEquals(
          data, InputBytes.read(source, 100, raw), source + " through Hadoop's raw filesystem");
    }
    assertTrue(InputBytes.localFile(hadoopForm, local) != null);
    assertTrue(InputBytes.localFile("file://" + f, local) != null);
    assertTrue(
        InputBytes.localFile("file://host/x", local) == null, "an authority goes through Hadoop");
    assertTrue(
        InputBytes.localFile(hadoopForm, raw) == null,
        "another file: implementation goes through Hadoop");
    assertTrue(InputBytes.localFile("hdfs://nn/x", local) == null);
    assertThrows(
        InputTooLargeException.class, () -> InputBytes.read(hadoopForm, data.length - 1, local));
  }
}
