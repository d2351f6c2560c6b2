package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.jobs.corpus.DirectoryListing;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The compress job, with the real runtime and decoder (bundled tiny model), over a directory of
 * hostile inputs: broken, empty, over-limit and mislabelled images, formats the decoder does not
 * take, special files and links, odd names, hidden entries. Each input must end as exactly one
 * {@code outputs/} row with the expected status and error, or as exactly one counted exclusion of
 * the listing (logged, in {@code _run.json} and the summary) — nothing else, nothing silently lost
 * — and the run must complete (a FIFO must not block the listing or a task).
 */
class HostileCorpusTest {
  /** The pixel limit of the run: a 2000x2000 image is at it, 2001x2000 over it. */
  static final long MAX_PIXELS = 2000L * 2000L;

  /**
   * What one input must become: a row (status, error class, message fragment) or an exclusion
   * (reason).
   */
  record Expect(String status, String errorClass, String message, String excludedAs) {
    static Expect ok() {
      return new Expect("ok", null, null, null);
    }

    static Expect error(Class<?> cls, String message) {
      return new Expect("error", cls.getName(), message, null);
    }

    static Expect error(String cls, String message) {
      return new Expect("error", cls, message, null);
    }

    static Expect excluded(String reason) {
      return new Expect(null, null, null, reason);
    }
  }

  @Test
  @Timeout(value = 10, unit = TimeUnit.MINUTES)
  void everyHostileInputIsOneRowOrOneCountedExclusion(@TempDir Path tmp) throws Exception {
    Path model = RealRuntimeEndToEndTest.project().resolve("models/tiny-llava-shapes");
    assumeTrue(
        Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    Path corpus = Files.createDirectories(tmp.resolve("corpus"));
    Map<String, Expect> expect = new TreeMap<>();
    String decodeError = "dev.tokenpress.runtime.media.MediaDecodeException";
    byte[] png = TestImages.png(64, 48, 1);
    byte[] jpeg = encode(image(64, 48, 2), "jpeg");

    // Valid images under the limit, in every format the decoder takes, under every kind of name.
    put(corpus, expect, "ok.png", png, Expect.ok());
    put(corpus, expect, "UPPER.PNG", TestImages.png(40, 40, 3), Expect.ok());
    put(corpus, expect, "Mixed.JpG", jpeg, Expect.ok());
    put(corpus, expect, "photo.JPEG", encode(image(30, 20, 4), "jpeg"), Expect.ok());
    put(corpus, expect, "palette.gif", encode(image(32, 32, 5), "gif"), Expect.ok());
    put(corpus, expect, "bitmap.bmp", encode(image(33, 17, 6), "bmp"), Expect.ok());
    put(corpus, expect, "scan.tiff", encode(image(20, 30, 7), "tiff"), Expect.ok());
    put(corpus, expect, "png-named.jpg", TestImages.png(24, 24, 8), Expect.ok());
    put(corpus, expect, "jpeg-named.png", encode(image(24, 24, 9), "jpeg"), Expect.ok());
    put(corpus, expect, "unicode ✓ 画像 ü.png", TestImages.png(20, 20, 10), Expect.ok());
    put(corpus, expect, "name with  spaces .png", TestImages.png(20, 20, 11), Expect.ok());
    put(corpus, expect, "new\nline.png", TestImages.png(20, 20, 12), Expect.ok());
    put(corpus, expect, "100% done.png", TestImages.png(20, 20, 13), Expect.ok());
    put(corpus, expect, "colon:name.png", TestImages.png(20, 20, 14), Expect.ok());
    put(corpus, expect, "back\\slash.png", TestImages.png(20, 20, 15), Expect.ok());
    put(corpus, expect, "-leading-dash.png", TestImages.png(20, 20, 16), Expect.ok());
    // A huge but valid image exactly at model.maxPixels, and one pixel column over it.
    put(corpus, expect, "at-limit.png", TestImages.png(2000, 2000, 17), Expect.ok());
    put(
        corpus,
        expect,
        "over-limit.png",
        pngHeader(2001, 2000),
        Expect.error(decodeError, "TOO_LARGE"));
    // Pixel bombs: tiny files whose headers claim billions of pixels.
    put(
        corpus,
        expect,
        "bomb.png",
        pngHeader(100_000, 100_000),
        Expect.error(decodeError, "TOO_LARGE"));
    put(
        corpus,
        expect,
        "bomb.jpg",
        jpegClaiming(jpeg, 60_000, 60_000),
        Expect.error(decodeError, "TOO_LARGE"));
    // Broken files.
    put(
        corpus,
        expect,
        "truncated.png",
        TestImages.truncated(TestImages.png(200, 200, 18)),
        Expect.error(decodeError, "TRUNCATED"));
    byte[] bigJpeg = encode(image(256, 256, 23), "jpeg");
    put(
        corpus,
        expect,
        "truncated.jpg",
        java.util.Arrays.copyOf(bigJpeg, bigJpeg.length * 2 / 3),
        Expect.error(decodeError, "TRUNCATED"));
    put(
        corpus,
        expect,
        "corrupt.png",
        corrupted(TestImages.png(200, 200, 22)),
        Expect.error(decodeError, "CORRUPT"));
    put(
        corpus,
        expect,
        "empty.png",
        new byte[0],
        Expect.error(dev.tokenpress.spark.EmptyInputException.class, "is empty (0 bytes)"));
    put(
        corpus,
        expect,
        "text.png",
        "this is not a PNG\n".getBytes(StandardCharsets.UTF_8),
        Expect.error(decodeError, "NOT_AN_IMAGE"));
    put(corpus, expect, "noise.jpeg", noise(4096), Expect.error(decodeError, "NOT_AN_IMAGE"));
    put(
        corpus,
        expect,
        "header-only.gif",
        "GIF89a".getBytes(StandardCharsets.US_ASCII),
        Expect.error(decodeError, "TRUNCATED"));
    put(corpus, expect, "anim.webp", webp(), Expect.error(decodeError, "UNSUPPORTED"));
    // Not regular files: a dangling link, a link loop, a FIFO (never opened), a link to a
    // directory.
    Files.createSymbolicLink(corpus.resolve("dangling.png"), corpus.resolve("deleted.png"));
    expect.put(
        "dangling.png",
        Expect.error(
            dev.tokenpress.spark.InputNotFoundException.class,
            "not found: "
                + source(corpus, "dangling.png")
                + " is a symbolic link to "
                + corpus.resolve("deleted.png")));
    Files.createSymbolicLink(corpus.resolve("loop-a.png"), corpus.resolve("loop-b.png"));
    Files.createSymbolicLink(corpus.resolve("loop-b.png"), corpus.resolve("loop-a.png"));
    expect.put(
        "loop-a.png",
        Expect.error(UncheckedIOException.class, "Too many levels of symbolic links"));
    expect.put(
        "loop-b.png",
        Expect.error(UncheckedIOException.class, "Too many levels of symbolic links"));
    Process mkfifo =
        new ProcessBuilder("mkfifo", corpus.resolve("fifo.png").toString()).inheritIO().start();
    assertThat(mkfifo.waitFor()).isZero();
    expect.put(
        "fifo.png",
        Expect.error(
            dev.tokenpress.spark.InputNotAFileException.class,
            "not a regular file: " + source(corpus, "fifo.png") + " is a FIFO, socket or device"));
    // A directory named like an image is descended into; so is a link to it, but not a link back
    // up.
    put(corpus, expect, "dir.png/inside.png", TestImages.png(20, 20, 19), Expect.ok());
    Files.createSymbolicLink(corpus.resolve("linked-dir"), corpus.resolve("dir.png"));
    expect.put("linked-dir/inside.png", Expect.ok());
    Files.createSymbolicLink(corpus.resolve("dir.png/up"), corpus);
    expect.put("dir.png/up/", Expect.excluded(DirectoryListing.DIRECTORY_CYCLE));
    expect.put("linked-dir/up/", Expect.excluded(DirectoryListing.DIRECTORY_CYCLE));
    // Unreadable file and directory: root reads them anyway (tests may run as root).
    Path locked = TestImages.write(corpus.resolve("locked.png"), TestImages.png(20, 20, 20));
    Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("---------"));
    expect.put(
        "locked.png",
        Files.isReadable(locked)
            ? Expect.ok()
            : Expect.error(UncheckedIOException.class, "permission denied"));
    Path lockedDir = Files.createDirectories(corpus.resolve("locked-dir"));
    TestImages.write(lockedDir.resolve("in-locked.png"), TestImages.png(20, 20, 21));
    Files.setPosixFilePermissions(lockedDir, PosixFilePermissions.fromString("---------"));
    if (Files.isReadable(lockedDir)) {
      expect.put("locked-dir/in-locked.png", Expect.ok());
    } else {
      expect.put("locked-dir/", Expect.excluded(DirectoryListing.UNREADABLE_DIRECTORY));
    }
    // Hidden entries (a hidden directory counts once) and names the default glob does not match.
    put(corpus, expect, ".hidden.png", png, Expect.excluded(DirectoryListing.HIDDEN));
    put(
        corpus,
        expect,
        ".DS_Store",
        new byte[] {0, 0, 0, 1},
        Expect.excluded(DirectoryListing.HIDDEN));
    put(corpus, expect, "_SUCCESS", new byte[0], Expect.excluded(DirectoryListing.HIDDEN));
    put(
        corpus,
        expect,
        "sub/._resource-fork.jpg",
        new byte[] {0, 5, 22, 7},
        Expect.excluded(DirectoryListing.HIDDEN));
    TestImages.write(corpus.resolve("_temporary/0/part.png"), png);
    expect.put("_temporary/", Expect.excluded(DirectoryListing.HIDDEN));
    TestImages.write(corpus.resolve(".cache/thumb.png"), png);
    expect.put(".cache/", Expect.excluded(DirectoryListing.HIDDEN));
    put(
        corpus,
        expect,
        "notes.txt",
        "notes".getBytes(StandardCharsets.UTF_8),
        Expect.excluded(DirectoryListing.NOT_MATCHING_GLOB));
    put(
        corpus,
        expect,
        "README",
        "readme".getBytes(StandardCharsets.UTF_8),
        Expect.excluded(DirectoryListing.NOT_MATCHING_GLOB));
    put(
        corpus,
        expect,
        "sub/phone.heic",
        noise(64),
        Expect.excluded(DirectoryListing.NOT_MATCHING_GLOB));
    put(corpus, expect, "sub/ok.png.bak", png, Expect.excluded(DirectoryListing.NOT_MATCHING_GLOB));
    assertThat(expect).hasSizeGreaterThanOrEqualTo(45);

    Path out = tmp.resolve("out");
    // The embedded default config (its glob included), with the bundled model and a lower pixel
    // limit.
    JobConfig config =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=" + corpus,
                "model.bundle=" + model,
                "model.maxNewTokens=2",
                "model.maxPixels=" + MAX_PIXELS,
                "output.path=" + out,
                "output.mode=resume",
                "output.rowsPerTask=8",
                "run.progressIntervalSeconds=60"));
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    try {
      RunSummary s =
          CompressJob.run(
              SparkTestSession.get(),
              config,
              VlmProcessorFactory.INSTANCE,
              new PrintStream(console, true, StandardCharsets.UTF_8));
      String log = console.toString(StandardCharsets.UTF_8);

      Map<String, Expect> rows = new TreeMap<>();
      Map<String, Long> exclusions = new LinkedHashMap<>();
      expect.forEach(
          (id, e) -> {
            if (e.excludedAs() == null) {
              rows.put(id, e);
            } else {
              exclusions.merge(e.excludedAs(), 1L, Long::sum);
            }
          });
      long okRows = rows.values().stream().filter(e -> e.status().equals("ok")).count();
      assertThat(s.inputs()).as(log).isEqualTo(rows.size());
      assertThat(s.processed()).isEqualTo(rows.size());
      assertThat(s.ok()).as(log).isEqualTo(okRows);
      assertThat(s.errors()).isEqualTo(rows.size() - okRows);
      assertThat(s.excluded()).containsExactlyInAnyOrderEntriesOf(exclusions);

      // Exactly one row per processable input, with the expected status and error.
      try (DuckDb db = new DuckDb()) {
        List<Map<String, Object>> found =
            db.query(
                "SELECT id, status, error.class AS cls, error.message AS msg, "
                    + "answer FROM "
                    + DuckDb.outputs(out)
                    + " ORDER BY id");
        assertThat(found)
            .extracting(r -> (String) r.get("id"))
            .containsExactlyElementsOf(rows.keySet());
        for (Map<String, Object> r : found) {
          String id = (String) r.get("id");
          Expect e = rows.get(id);
          assertThat(r.get("status"))
              .as(id + ": " + r.get("cls") + ": " + r.get("msg"))
              .isEqualTo(e.status());
          if (e.status().equals("ok")) {
            assertThat((String) r.get("answer")).as(id).isNotNull();
          } else {
            assertThat(r.get("cls")).as(id + ": " + r.get("msg")).isEqualTo(e.errorClass());
            assertThat((String) r.get("msg")).as(id).contains(e.message());
          }
        }
        // KV rows for the ok inputs only.
        List<String> kvIds =
            db.query("SELECT DISTINCT id FROM " + DuckDb.kv(out) + " ORDER BY id").stream()
                .map(r -> (String) r.get("id"))
                .toList();
        assertThat(kvIds)
            .containsExactlyElementsOf(
                rows.entrySet().stream()
                    .filter(x -> x.getValue().status().equals("ok"))
                    .map(Map.Entry::getKey)
                    .toList());
      }

      // Exactly one counted exclusion per other input: counts by reason, and the examples name
      // them.
      JsonNode run = new ObjectMapper().readTree(Files.readString(out.resolve("_run.json")));
      Map<String, Long> inManifest = new LinkedHashMap<>();
      run.get("excluded")
          .fields()
          .forEachRemaining(f -> inManifest.put(f.getKey(), f.getValue().asLong()));
      assertThat(inManifest).containsExactlyInAnyOrderEntriesOf(exclusions);
      assertThat(run.get("counts").get("excluded").asLong()).isEqualTo(expect.size() - rows.size());
      for (Map.Entry<String, Long> x : exclusions.entrySet()) {
        List<String> examples = new ArrayList<>();
        run.get("excluded_examples").get(x.getKey()).forEach(n -> examples.add(n.asText()));
        assertThat(examples)
            .as(x.getKey())
            .hasSize((int) Math.min(x.getValue(), DirectoryListing.EXAMPLES))
            .doesNotHaveDuplicates()
            .allSatisfy(
                p -> assertThat(expect.get(p)).as(p).isEqualTo(Expect.excluded(x.getKey())));
      }
      // ... and the console says so.
      for (String reason : exclusions.keySet()) {
        assertThat(log)
            .contains(
                "[tokenpress] not processed (no row): " + reason + ": " + exclusions.get(reason));
      }
      assertThat(log).contains("[tokenpress] not processed (no row), by reason: ");

      // A rerun finds every input committed (error rows included) and lists the same exclusions.
      RunSummary again =
          CompressJob.run(
              SparkTestSession.get(),
              config,
              VlmProcessorFactory.INSTANCE,
              new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
      assertThat(again.processed()).isZero();
      assertThat(again.alreadyCommitted()).isEqualTo(rows.size());
      assertThat(again.excluded()).isEqualTo(s.excluded());
    } finally {
      // Let @TempDir clean up when the tests do not run as root.
      Files.setPosixFilePermissions(lockedDir, PosixFilePermissions.fromString("rwx------"));
      Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("rw-------"));
    }
  }

  /** Writes {@code bytes} at {@code rel} below {@code corpus} and records what it must become. */
  private static void put(
      Path corpus, Map<String, Expect> expect, String rel, byte[] bytes, Expect e) {
    TestImages.write(corpus.resolve(rel), bytes);
    expect.put(rel, e);
  }

  /** The {@code source} the listing gives a top-level entry (Hadoop's qualified path form). */
  private static String source(Path corpus, String name) {
    return new org.apache.hadoop.fs.Path(corpus.resolve(name).toUri()).toString();
  }

  private static BufferedImage image(int w, int h, long seed) {
    try {
      return ImageIO.read(new java.io.ByteArrayInputStream(TestImages.png(w, h, seed)));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static byte[] encode(BufferedImage img, String format) {
    try {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      assertThat(ImageIO.write(img, format, out)).as("ImageIO writes " + format).isTrue();
      return out.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * A PNG signature and an IHDR chunk claiming {@code w x h} RGB pixels, then IEND: no pixel data.
   */
  static byte[] pngHeader(int w, int h) {
    ByteBuffer b = ByteBuffer.allocate(8 + 25 + 12);
    b.put(new byte[] {(byte) 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A});
    chunk(
        b,
        "IHDR",
        ByteBuffer.allocate(13).putInt(w).putInt(h).put(new byte[] {8, 2, 0, 0, 0}).array());
    chunk(b, "IEND", new byte[0]);
    return b.array();
  }

  private static void chunk(ByteBuffer b, String type, byte[] data) {
    byte[] t = type.getBytes(StandardCharsets.US_ASCII);
    CRC32 crc = new CRC32();
    crc.update(t);
    crc.update(data);
    b.putInt(data.length).put(t).put(data).putInt((int) crc.getValue());
  }

  /** {@code jpeg} with its baseline frame header (SOF0) rewritten to claim {@code w x h}. */
  static byte[] jpegClaiming(byte[] jpeg, int w, int h) {
    byte[] b = jpeg.clone();
    for (int i = 2; i + 9 < b.length; i++) {
      if ((b[i] & 0xFF) == 0xFF && (b[i + 1] & 0xFF) == 0xC0) {
        b[i + 5] = (byte) (h >> 8);
        b[i + 6] = (byte) h;
        b[i + 7] = (byte) (w >> 8);
        b[i + 8] = (byte) w;
        return b;
      }
    }
    throw new IllegalStateException("no SOF0 marker in the test JPEG");
  }

  /** A RIFF/WEBP container with a lossless bitstream header (the JDK has no WebP reader). */
  static byte[] webp() {
    byte[] vp8l = {0x2F, 0x00, 0x00, 0x00, 0x00};
    ByteBuffer b =
        ByteBuffer.allocate(12 + 8 + vp8l.length + 1).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    b.put("RIFF".getBytes(StandardCharsets.US_ASCII))
        .putInt(4 + 8 + vp8l.length + 1)
        .put("WEBP".getBytes(StandardCharsets.US_ASCII))
        .put("VP8L".getBytes(StandardCharsets.US_ASCII))
        .putInt(vp8l.length)
        .put(vp8l)
        .put((byte) 0);
    return b.array();
  }

  /**
   * {@code png} with the middle of its data overwritten: a valid header, then an invalid zlib
   * stream.
   */
  private static byte[] corrupted(byte[] png) {
    byte[] b = png.clone();
    for (int i = b.length / 3; i < b.length / 2; i++) {
      b[i] = (byte) 0xA5;
    }
    return b;
  }

  private static byte[] noise(int n) {
    byte[] b = new byte[n];
    new SplittableRandom(n).nextBytes(b);
    // Not starting with any image magic.
    b[0] = 'x';
    return b;
  }
}
