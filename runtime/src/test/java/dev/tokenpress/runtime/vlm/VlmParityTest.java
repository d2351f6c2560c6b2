package dev.tokenpress.runtime.vlm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.runtime.lm.StopReason;
import dev.tokenpress.runtime.media.ImagePreprocessor;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.media.PreprocessorConfig;
import dev.tokenpress.runtime.media.RgbImage;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Parity with the trainer, for both bundled models ({@link TinyLlavaBundle#DEFAULT} and {@link
 * TinyLlavaBundle#DROPTRAINED}): for every entry of a model's {@code reference_outputs.json}
 * (written by {@code models/tiny-llava-shapes/train.py} from an independent plain-torch reference),
 * the Java pipeline gives the same pixels, prompt ids, last-position logits (max abs ≤ 1e-4) and
 * greedy ids/answer — with the split runtime and with the fused graphs.
 */
class VlmParityTest {
  private static final double LOGIT_TOL = 1e-4;
  private static final List<String> MODELS =
      List.of(TinyLlavaBundle.DEFAULT, TinyLlavaBundle.DROPTRAINED);
  private static final Map<String, VlmRuntime[]> RUNTIMES = new HashMap<>();

  /** The split and the fused runtime of {@code model}, opened on first use. */
  private static synchronized VlmRuntime[] runtimes(String model) {
    return RUNTIMES.computeIfAbsent(
        model,
        m -> {
          Path bundle = TinyLlavaBundle.bundle(m);
          return new VlmRuntime[] {
            VlmRuntime.open(bundle, VlmOptions.defaults()),
            VlmRuntime.open(bundle, VlmOptions.defaults().withFused(true))
          };
        });
  }

  @AfterAll
  static void close() {
    for (VlmRuntime[] rts : RUNTIMES.values()) {
      for (VlmRuntime rt : rts) {
        rt.close();
      }
    }
    RUNTIMES.clear();
  }

  static Stream<Arguments> entries() {
    List<Arguments> out = new ArrayList<>();
    for (String model : MODELS) {
      Path dir = Path.of(System.getProperty("tokenpress.project.dir", "."), "models", model);
      if (!Files.isRegularFile(dir.resolve("reference_outputs.json"))) {
        out.add(Arguments.of(model, -1, "absent")); // skips with the helper's message
        continue;
      }
      JsonNode entries = TinyLlavaBundle.references(model).get("entries");
      for (int i = 0; i < entries.size(); i++) {
        out.add(Arguments.of(model, i, entries.get(i).get("id").asText()));
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void hasEnoughReferences(String model) {
    assertThat(TinyLlavaBundle.references(model).get("entries").size()).isGreaterThanOrEqualTo(32);
  }

  static Stream<String> models() {
    return MODELS.stream();
  }

  @ParameterizedTest(name = "{0} {2}")
  @MethodSource("entries")
  void pixelsAndPromptMatch(String model, int index, String id) throws Exception {
    JsonNode refs = TinyLlavaBundle.references(model);
    VlmRuntime split = runtimes(model)[0];
    JsonNode e = refs.get("entries").get(index);
    byte[] bytes =
        Files.readAllBytes(
            TinyLlavaBundle.checkpoint(model).resolve(e.get("reference_image").asText()));
    RgbImage img = split.decoder().decode(bytes);
    assertThat(img.sha256()).isEqualTo(e.get("pixel_sha256").asText());
    // The trainer normalises in float32 (tinyllava.normalize_pixels_np): with that arithmetic the
    // sum is exact up to summation order; the Hugging Face (float64) rescale differs by 1 ulp on
    // some pixels, well inside the logit tolerance.
    PreprocessorConfig cfg =
        split
            .preprocessor()
            .config()
            .withRescalePrecision(PreprocessorConfig.RescalePrecision.FLOAT32);
    PixelValues px = new ImagePreprocessor(cfg).preprocess(img);
    assertThat(px.sum()).isCloseTo(e.get("pixel_sum").asDouble(), within(1e-6));
    assertThat(split.preprocessor().preprocess(img).sum())
        .isCloseTo(e.get("pixel_sum").asDouble(), within(1e-2));
    int[] ids =
        split
            .prompts()
            .encode(e.get("question").asText(), refs.get("num_image_tokens").asInt())
            .ids();
    assertThat(ids).containsExactly(ints(e.get("input_ids")));
    assertThat(split.prompts().render(e.get("question").asText()))
        .isEqualTo(e.get("prompt").asText());
  }

  @ParameterizedTest(name = "{0} {2}")
  @MethodSource("entries")
  void logitsAndGreedyAnswerMatch(String model, int index, String id) throws Exception {
    JsonNode refs = TinyLlavaBundle.references(model);
    JsonNode e = refs.get("entries").get(index);
    byte[] bytes =
        Files.readAllBytes(
            TinyLlavaBundle.checkpoint(model).resolve(e.get("reference_image").asText()));
    int maxNew = refs.get("max_new_tokens").asInt();
    for (VlmRuntime rt : runtimes(model)) {
      VlmResult r =
          rt.generate(
              VlmRequest.ofBytes(id, bytes, e.get("question").asText())
                  .withMaxNewTokens(maxNew)
                  .withRecordLogits(true));
      float[] last = r.stepLogits().get(0);
      JsonNode ref = e.get("last_logits");
      assertThat(last).hasSize(ref.size());
      double max = 0;
      for (int i = 0; i < last.length; i++) {
        max = Math.max(max, Math.abs(last[i] - ref.get(i).asDouble()));
      }
      assertThat(max).as(id + " max |logit - reference|").isLessThanOrEqualTo(LOGIT_TOL);
      int[] greedy = r.tokenIds();
      if (r.stopReason() == StopReason.STOP_TOKEN) { // the reference lists the EOS it stopped at
        greedy = java.util.Arrays.copyOf(greedy, greedy.length + 1);
        greedy[greedy.length - 1] = refs.get("eos_token_id").asInt();
      }
      assertThat(greedy).as(id + " greedy ids").containsExactly(ints(e.get("greedy_ids")));
      assertThat(r.answer()).isEqualTo(e.get("greedy_answer").asText());
      assertThat(r.visualTokensIn()).isEqualTo(refs.get("num_image_tokens").asInt());
      assertThat(r.visualTokensKept()).isEqualTo(r.visualTokensIn());
    }
  }

  static int[] ints(JsonNode a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).asInt();
    }
    return out;
  }
}
