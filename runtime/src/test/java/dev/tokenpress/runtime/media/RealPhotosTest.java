package dev.tokenpress.runtime.media;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HexFormat;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Real photos (src/test/resources/media/real, CC0 / public domain) against Pillow 9.4. */
class RealPhotosTest {
  private static final ImageDecoder DECODER = new ImageDecoder();

  static Stream<Arguments> photos() {
    Stream.Builder<Arguments> b = Stream.builder();
    MediaFixtures.expected()
        .get("real")
        .forEach(c -> b.add(Arguments.of(c.get("file").asText(), c)));
    return b.build();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("photos")
  void decodesLikePillow(String file, JsonNode c) {
    RgbImage img = DECODER.decode(MediaFixtures.bytes(file));
    assertThat(img.width()).isEqualTo(c.get("width").asInt());
    assertThat(img.height()).isEqualTo(c.get("height").asInt());
    boolean lossy = file.endsWith(".jpg");
    if (!lossy) {
      assertThat(img.sha256()).isEqualTo(c.get("rgb_sha256").asText());
      return;
    }
    // libjpeg 6b (JDK) vs libjpeg-turbo 2.1 (Pillow): a few levels on some pixels, same on average
    JsonNode crop = c.get("center_crop");
    byte[] pil = Base64.getDecoder().decode(crop.get("rgb_base64").asText());
    int x0 = crop.get("x").asInt();
    int y0 = crop.get("y").asInt();
    int w = crop.get("w").asInt();
    int maxDiff = 0;
    for (int y = 0; y < crop.get("h").asInt(); y++) {
      for (int x = 0; x < w; x++) {
        for (int ch = 0; ch < 3; ch++) {
          int d = Math.abs(img.get(x0 + x, y0 + y, ch) - (pil[(y * w + x) * 3 + ch] & 0xFF));
          maxDiff = Math.max(maxDiff, d);
        }
      }
    }
    assertThat(maxDiff).as("max difference to Pillow in the centre crop").isLessThanOrEqualTo(4);
    for (int ch = 0; ch < 3; ch++) {
      double sum = 0;
      for (int y = 0; y < img.height(); y++) {
        for (int x = 0; x < img.width(); x++) {
          sum += img.get(x, y, ch);
        }
      }
      assertThat(sum / ((double) img.width() * img.height()))
          .isCloseTo(c.get("channel_means").get(ch).asDouble(), within(0.05));
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("photos")
  void preprocessesLikeHuggingFace(String file, JsonNode c) throws Exception {
    RgbImage img = DECODER.decode(MediaFixtures.bytes(file));
    for (JsonNode p : c.get("preprocess")) {
      PreprocessorConfig cfg =
          PreprocessorConfig.clip(p.get("size").asInt(), Resample.ofPilId(p.get("filter").asInt()));
      PixelValues px = new ImagePreprocessor(cfg).preprocess(img);
      if (file.endsWith(".jpg")) {
        // decoder differences only: the normalised sum moves by far less than one level per pixel
        assertThat(px.sum()).isCloseTo(p.get("sum").asDouble(), within(2e-3 * px.toArray().length));
        continue;
      }
      ByteBuffer le = ByteBuffer.allocate(px.toArray().length * 4).order(ByteOrder.LITTLE_ENDIAN);
      le.asFloatBuffer().put(px.toArray());
      assertThat(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(le.array())))
          .as(file + " " + p)
          .isEqualTo(p.get("sha256").asText());
    }
  }
}
