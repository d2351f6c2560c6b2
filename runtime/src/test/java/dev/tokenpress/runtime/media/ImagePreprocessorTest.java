package dev.tokenpress.runtime.media;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ImagePreprocessorTest {
  private static final ImageDecoder DECODER = new ImageDecoder();

  static Stream<Arguments> resizeCases() {
    Stream.Builder<Arguments> b = Stream.builder();
    MediaFixtures.expected()
        .get("resize")
        .forEach(
            c ->
                b.add(
                    Arguments.of(
                        Resample.ofPilId(c.get("filter").asInt()),
                        c.get("width").asInt(),
                        c.get("height").asInt(),
                        c)));
    return b.build();
  }

  /** Bit-exact with Pillow 9.4 Image.resize for every filter, down- and up-scaling. */
  @ParameterizedTest(name = "{0} -> {1}x{2}")
  @MethodSource("resizeCases")
  void resizeMatchesPillow(Resample filter, int w, int h, JsonNode c) {
    RgbImage src = DECODER.decode(MediaFixtures.bytes(c.get("file").asText()));
    RgbImage out = PilResize.resize(src, w, h, filter);
    assertThat(out.width()).isEqualTo(w);
    assertThat(out.height()).isEqualTo(h);
    assertThat(out.sha256()).isEqualTo(c.get("sha256").asText());
  }

  static Stream<Arguments> preprocessCases() {
    Stream.Builder<Arguments> b = Stream.builder();
    MediaFixtures.expected()
        .get("preprocess")
        .forEach(
            c ->
                b.add(
                    Arguments.of(
                        c.get("file").asText(), c.get("size").asInt(), c.get("crop").asInt(), c)));
    return b.build();
  }

  /** Hugging Face CLIPImageProcessor semantics (written out in numpy): identical float32 tensor. */
  @ParameterizedTest(name = "{0} size={1} crop={2}")
  @MethodSource("preprocessCases")
  void preprocessMatchesReference(String file, int size, int crop, JsonNode c) throws Exception {
    List<Double> mean = new ArrayList<>();
    List<Double> std = new ArrayList<>();
    c.get("mean").forEach(v -> mean.add(v.asDouble()));
    c.get("std").forEach(v -> std.add(v.asDouble()));
    PreprocessorConfig cfg =
        new PreprocessorConfig(
            true,
            size,
            0,
            0,
            Resample.ofPilId(c.get("filter").asInt()),
            true,
            crop,
            crop,
            true,
            1.0 / 255,
            true,
            mean,
            std,
            PreprocessorConfig.RescalePrecision.FLOAT64);
    PixelValues px =
        new ImagePreprocessor(cfg).preprocess(DECODER.decode(MediaFixtures.bytes(file)));
    assertThat(px.height()).isEqualTo(crop);
    assertThat(px.width()).isEqualTo(crop);
    assertThat(px.sum()).isCloseTo(c.get("sum").asDouble(), within(1e-6));
    ByteBuffer le = ByteBuffer.allocate(px.toArray().length * 4).order(ByteOrder.LITTLE_ENDIAN);
    le.asFloatBuffer().put(px.toArray());
    String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(le.array()));
    assertThat(sha).isEqualTo(c.get("sha256").asText());
  }

  @Test
  void parsesHuggingFaceConfig() throws Exception {
    String json =
        "{\"crop_size\":{\"height\":336,\"width\":336},\"do_center_crop\":true,\"do_convert_rgb\":true,"
            + "\"do_normalize\":true,\"do_rescale\":true,\"do_resize\":true,\"image_mean\":[0.48145466,0.4578275,0.40821073],"
            + "\"image_processor_type\":\"CLIPImageProcessor\",\"image_std\":[0.26862954,0.26130258,0.27577711],"
            + "\"resample\":3,\"rescale_factor\":0.00392156862745098,\"size\":{\"shortest_edge\":336}}";
    PreprocessorConfig cfg =
        PreprocessorConfig.fromJson(
            new com.fasterxml.jackson.databind.ObjectMapper().readTree(json));
    assertThat(cfg).isEqualTo(PreprocessorConfig.clip(336, Resample.BICUBIC));
    assertThat(cfg.outputHeight(480, 640)).isEqualTo(336);
    assertThat(cfg.resizedSize(480, 640)).containsExactly(336, 448);
    assertThat(cfg.resizedSize(641, 480)).containsExactly(448, 336);
  }

  @Test
  void rescalePrecisionsDifferByAtMostOneUlp() {
    PreprocessorConfig f64 =
        new PreprocessorConfig(
            false,
            0,
            0,
            0,
            Resample.BILINEAR,
            false,
            0,
            0,
            true,
            1.0 / 255,
            false,
            List.of(0.0, 0.0, 0.0),
            List.of(1.0, 1.0, 1.0),
            PreprocessorConfig.RescalePrecision.FLOAT64);
    PreprocessorConfig f32 = f64.withRescalePrecision(PreprocessorConfig.RescalePrecision.FLOAT32);
    byte[] px = new byte[256 * 3];
    for (int v = 0; v < 256; v++) {
      px[v * 3] = (byte) v;
    }
    PixelValues a = new ImagePreprocessor(f64).preprocess(RgbImage.wrap(256, 1, px));
    PixelValues b = new ImagePreprocessor(f32).preprocess(RgbImage.wrap(256, 1, px));
    int differ = 0;
    for (int v = 0; v < 256; v++) {
      float x = a.get(0, 0, v);
      assertThat(x).isEqualTo((float) (v / 255.0)); // FLOAT64 = correctly rounded v/255
      assertThat(Math.abs(x - b.get(0, 0, v))).isLessThanOrEqualTo(Math.ulp(x));
      differ += x != b.get(0, 0, v) ? 1 : 0;
    }
    assertThat(differ)
        .isEqualTo(126); // numpy: (u8 * (1/255)).astype(f32) != u8.astype(f32) * f32(1/255)
  }

  @Test
  void centerCropPadsLikeHuggingFace() {
    byte[] px = new byte[2 * 3 * 3];
    java.util.Arrays.fill(px, (byte) 9);
    RgbImage small = RgbImage.wrap(2, 3, px); // 2 wide, 3 high
    RgbImage out = ImagePreprocessor.centerCrop(small, 4, 5);
    // pad top = ceil((4-3)/2) = 1, pad left = ceil((5-2)/2) = 2
    assertThat(out.get(2, 1, 0)).isEqualTo(9);
    assertThat(out.get(3, 3, 0)).isEqualTo(9);
    assertThat(out.get(1, 1, 0)).isZero();
    assertThat(out.get(2, 0, 0)).isZero();
    assertThat(out.get(4, 1, 0)).isZero();
  }
}
