package dev.tokenpress.runtime.media;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.runtime.media.MediaDecodeException.Reason;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class ImageDecoderTest {
  private final ImageDecoder decoder = new ImageDecoder();

  static Stream<Arguments> pillowCases() {
    JsonNode decode = MediaFixtures.expected().get("decode");
    Stream.Builder<Arguments> b = Stream.builder();
    decode.forEach(c -> b.add(Arguments.of(c.get("file").asText(), c.get("mode").asText(), c)));
    return b.build();
  }

  /** Lossless formats: byte-identical to Pillow's convert("RGB"); JPEG: within a few levels. */
  @ParameterizedTest(name = "{0} ({1})")
  @MethodSource("pillowCases")
  void matchesPillow(String file, String mode, JsonNode c) {
    RgbImage img = decoder.decode(MediaFixtures.bytes(file));
    assertThat(img.width()).isEqualTo(c.get("width").asInt());
    assertThat(img.height()).isEqualTo(c.get("height").asInt());
    if (file.endsWith(".jpg")) {
      RgbImage pil = decoder.decode(MediaFixtures.bytes(file + ".pillow.png"));
      byte[] a = img.toByteArray();
      byte[] p = pil.toByteArray();
      int maxDiff = 0;
      double meanDiff = 0;
      for (int i = 0; i < a.length; i++) {
        int d = Math.abs((a[i] & 0xFF) - (p[i] & 0xFF));
        maxDiff = Math.max(maxDiff, d);
        meanDiff += d;
      }
      meanDiff /= a.length;
      // libjpeg 6b (JDK) vs libjpeg-turbo (Pillow): same ISLOW IDCT, small upsampling differences.
      assertThat(maxDiff).as("max abs difference to Pillow").isLessThanOrEqualTo(4);
      assertThat(meanDiff).as("mean abs difference to Pillow").isLessThan(0.5);
    } else {
      assertThat(img.sha256()).isEqualTo(c.get("rgb_sha256").asText());
    }
  }

  @Test
  void compositesAlphaOnWhiteWhenAsked() {
    ImageDecoder white =
        new ImageDecoder(DecodeOptions.DEFAULT.withAlphaMode(AlphaMode.COMPOSITE_WHITE));
    RgbImage dropped = decoder.decode(MediaFixtures.bytes("rgba.png"));
    RgbImage composited = white.decode(MediaFixtures.bytes("rgba.png"));
    // alpha ramps 0 at x = 0 to 255 at the right edge
    for (int c = 0; c < 3; c++) {
      assertThat(composited.get(0, 10, c)).isEqualTo(255);
      assertThat(composited.get(60, 10, c)).isEqualTo(dropped.get(60, 10, c));
    }
    int a = (int) Math.round(30 * 255.0 / 60); // np.linspace(0, 255, 61) rounded down by uint8 cast
    int expected = ImageDecoder.over(dropped.get(30, 10, 0), (int) (30 * 255.0 / 60));
    assertThat(composited.get(30, 10, 0)).isBetween(expected - 1, expected + 1);
    assertThat(a).isPositive();
  }

  @Test
  void overIsExactAtTheEnds() {
    for (int c = 0; c < 256; c++) {
      assertThat(ImageDecoder.over(c, 255)).isEqualTo(c);
      assertThat(ImageDecoder.over(c, 0)).isEqualTo(255);
    }
  }

  @Test
  void javaWrittenImagesOfEveryBufferedImageType() throws IOException {
    int[] types = {
      BufferedImage.TYPE_INT_RGB,
      BufferedImage.TYPE_INT_ARGB,
      BufferedImage.TYPE_INT_BGR,
      BufferedImage.TYPE_3BYTE_BGR,
      BufferedImage.TYPE_4BYTE_ABGR,
      BufferedImage.TYPE_BYTE_GRAY,
      BufferedImage.TYPE_USHORT_GRAY,
      BufferedImage.TYPE_BYTE_INDEXED,
      BufferedImage.TYPE_BYTE_BINARY,
      BufferedImage.TYPE_USHORT_565_RGB
    };
    for (int type : types) {
      BufferedImage src = new BufferedImage(9, 5, type);
      src.getRaster().setSample(3, 2, 0, 1);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      assertThat(ImageIO.write(src, "png", out)).as("png writer for type " + type).isTrue();
      RgbImage img = decoder.decode(out.toByteArray());
      assertThat(img.width()).isEqualTo(9);
      assertThat(img.height()).isEqualTo(5);
    }
  }

  @Test
  void emptyInput() {
    assertReason(new byte[0], Reason.EMPTY);
    assertThatThrownBy(() -> decoder.decode((byte[]) null))
        .isInstanceOfSatisfying(
            MediaDecodeException.class, e -> assertThat(e.reason()).isEqualTo(Reason.EMPTY));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {"hello, world", "{\"json\": true}", "\u0000\u0000\u0000\u0000\u0000\u0000"})
  void notAnImage(String text) {
    assertReason(text.getBytes(java.nio.charset.StandardCharsets.UTF_8), Reason.NOT_AN_IMAGE);
  }

  @Test
  void randomBytesAreNotAnImage() {
    java.util.SplittableRandom rng = new java.util.SplittableRandom(7);
    for (int i = 0; i < 50; i++) {
      byte[] b = new byte[1 + rng.nextInt(2000)];
      for (int j = 0; j < b.length; j++) {
        b[j] = (byte) rng.nextInt(256);
      }
      if (ImageFormat.sniff(b) == null) {
        assertReason(b, Reason.NOT_AN_IMAGE);
      }
    }
  }

  @Test
  void webpIsUnsupported() {
    assertReason(MediaFixtures.bytes("rgb.webp"), Reason.UNSUPPORTED);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "rgb.png",
        "rgb_q90.jpg",
        "palette.gif",
        "rgb.bmp",
        "gray16.png",
        "cmyk.jpg",
        "rgb.tiff"
      })
  void truncatedEverywhereIsTypedNeverACrash(String file) {
    byte[] full = MediaFixtures.bytes(file);
    for (int len :
        new int[] {1, 2, 5, 9, 16, 30, 60, full.length / 3, full.length / 2, full.length - 40}) {
      byte[] cut = Arrays.copyOf(full, len);
      try {
        decoder.decode(cut);
        throw new AssertionError(
            file + " cut to " + len + " of " + full.length + " bytes decoded without error");
      } catch (MediaDecodeException e) {
        assertThat(e.reason())
            .as(file + " cut to " + len + ": " + e.getMessage())
            .isIn(Reason.TRUNCATED, Reason.CORRUPT, Reason.NOT_AN_IMAGE);
      }
    }
  }

  @Test
  void truncatedPngAndJpegSayTruncated() {
    for (String file : new String[] {"rgb.png", "rgb_q90.jpg", "photo_203x157.png"}) {
      byte[] full = MediaFixtures.bytes(file);
      assertReason(Arrays.copyOf(full, full.length / 2), Reason.TRUNCATED);
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "rgb.png",
        "rgb_q90.jpg",
        "palette.gif",
        "rgb.bmp",
        "photo_203x157.png",
        "rgb.tiff"
      })
  void corruptedBytesAreTypedNeverACrash(String file) {
    byte[] full = MediaFixtures.bytes(file);
    java.util.SplittableRandom rng = new java.util.SplittableRandom(file.hashCode());
    for (int trial = 0; trial < 40; trial++) {
      byte[] bad = full.clone();
      int flips = 1 + rng.nextInt(20);
      for (int i = 0; i < flips; i++) {
        bad[8 + rng.nextInt(bad.length - 8)] = (byte) rng.nextInt(256);
      }
      try {
        RgbImage img = decoder.decode(bad);
        assertThat(img.width())
            .isPositive(); // some corruptions are invisible (e.g. PNG CRC is not checked)
      } catch (MediaDecodeException e) {
        assertThat(e.reason()).isNotNull();
      }
    }
  }

  @Test
  void pixelLimitRejectsFromTheHeader() {
    // A PNG header claiming 100000 x 100000 followed by no data: only the header is read.
    byte[] png = MediaFixtures.bytes("rgb.png");
    byte[] huge = Arrays.copyOf(png, 33);
    writeInt(huge, 16, 100_000);
    writeInt(huge, 20, 100_000);
    assertReason(huge, Reason.TOO_LARGE);
    ImageDecoder small = new ImageDecoder(DecodeOptions.DEFAULT.withMaxPixels(61 * 47 - 1));
    assertThatThrownBy(() -> small.decode(MediaFixtures.bytes("rgb_q90.jpg")))
        .isInstanceOfSatisfying(
            MediaDecodeException.class,
            e -> {
              assertThat(e.reason()).isEqualTo(Reason.TOO_LARGE);
              assertThat(e.getMessage()).contains("61x47").contains("maxPixels=2866");
            });
    assertThat(
            new ImageDecoder(DecodeOptions.DEFAULT.withMaxPixels(61 * 47))
                .decode(MediaFixtures.bytes("rgb.png"))
                .width())
        .isEqualTo(61);
  }

  @Test
  void byteLimit() {
    ImageDecoder tiny = new ImageDecoder(new DecodeOptions(1 << 20, 100, AlphaMode.DROP));
    assertReason(tiny, MediaFixtures.bytes("rgb.png"), Reason.TOO_LARGE);
  }

  @Test
  void probeReadsOnlyTheHeader() {
    byte[] png = MediaFixtures.bytes("photo_203x157.png");
    ImageInfo info = decoder.probe(Arrays.copyOf(png, 64));
    assertThat(info).isEqualTo(new ImageInfo(ImageFormat.PNG, 203, 157));
    assertThat(decoder.probe(MediaFixtures.bytes("rgb_q90.jpg")))
        .isEqualTo(new ImageInfo(ImageFormat.JPEG, 61, 47));
  }

  @Test
  void animatedGifUsesTheFirstFrame() {
    // covered by matchesPillow(anim.gif): Pillow's convert gives the first frame
    assertThat(decoder.decode(MediaFixtures.bytes("anim.gif")).width()).isEqualTo(40);
  }

  private void assertReason(byte[] bytes, Reason reason) {
    assertReason(decoder, bytes, reason);
  }

  private static void assertReason(ImageDecoder d, byte[] bytes, Reason reason) {
    assertThatThrownBy(() -> d.decode(bytes))
        .isInstanceOfSatisfying(
            MediaDecodeException.class,
            e -> assertThat(e.reason()).as(e.getMessage()).isEqualTo(reason));
  }

  private static void writeInt(byte[] b, int off, int v) {
    b[off] = (byte) (v >>> 24);
    b[off + 1] = (byte) (v >>> 16);
    b[off + 2] = (byte) (v >>> 8);
    b[off + 3] = (byte) v;
  }
}
