package dev.tokenpress.evaluate.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.checkpoint.DType;
import dev.tokenpress.runtime.checkpoint.SafetensorsFile;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.convert.RandomCheckpoint;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real-scale path in miniature: {@code model random --preset tiny} (same code as the
 * LLaVA-1.5-7B preset, tiny dims) → bundle builder → {@code bench plans}, so CI covers the
 * generator, the bundle of a generated checkpoint and the bench without gigabytes.
 */
class PlanSpeedupBenchTest {
  @TempDir static Path tmp;

  private static Path tokenizer;
  private static Path checkpoint;
  private static RandomCheckpoint.Spec written;

  @BeforeAll
  static void generate() {
    Path t =
        Path.of(System.getProperty("tokenpress.project.dir", "."), "models", "tiny-llava-shapes");
    if (Files.isRegularFile(t.resolve("tokenizer.json"))) {
      tokenizer = t;
      checkpoint = tmp.resolve("ckpt");
      written =
          RandomCheckpoint.write(
              RandomCheckpoint.Preset.TINY.spec(), checkpoint, 7, DType.F16, tokenizer);
    }
  }

  private static Path checkpoint() {
    assumeTrue(
        checkpoint != null,
        "skipped: models/tiny-llava-shapes (tokenizer) not found (set -Dtokenpress.project.dir)");
    return checkpoint;
  }

  @Test
  void generatedCheckpointHasThePresetShapesAndSmallRandomWeights() throws Exception {
    Path ckpt = checkpoint();
    RandomCheckpoint.Spec s = RandomCheckpoint.Preset.TINY.spec();
    JsonNode cfg = new ObjectMapper().readTree(ckpt.resolve("config.json").toFile());
    VisionConfig v = VisionConfig.fromLlavaConfig(cfg);
    assertThat(v.numPatches()).isEqualTo(16);
    assertThat(v.layersRun()).isEqualTo(s.vision().layers() - 1);
    assertThat(cfg.path("text_config").path("num_hidden_layers").asInt()).isEqualTo(s.layers());
    // the <image> token of the copied tokenizer, not the preset's placeholder
    assertThat(written.imageTokenIndex()).isEqualTo(4);
    assertThat(cfg.path("image_token_index").asInt()).isEqualTo(4);
    try (SafetensorsFile f = SafetensorsFile.open(ckpt.resolve("model.safetensors"))) {
      long params = 0;
      for (var e : f.tensors().values()) {
        assertThat(e.dtype()).isEqualTo(DType.F16);
        params += e.elementCount();
      }
      assertThat(params).isEqualTo(s.parameters());
      float[] up = f.readFloats("language_model.model.layers.1.mlp.up_proj.weight");
      assertThat(up).hasSize(s.intermediate() * s.hidden());
      double sum = 0;
      double sq = 0;
      for (float x : up) {
        sum += x;
        sq += x * x;
      }
      double mean = sum / up.length;
      double std = Math.sqrt(sq / up.length - mean * mean);
      assertThat(std).isBetween(0.018, 0.022);
      assertThat(Math.abs(mean)).isLessThan(0.002);
      assertThat(f.readFloats("vision_tower.vision_model.encoder.layers.0.layer_norm1.weight"))
          .containsOnly(1f);
      assertThat(f.readFloats("multi_modal_projector.linear_1.bias")).containsOnly(0f);
      assertThat(f.entry("vision_tower.vision_model.embeddings.position_embedding.weight").shape())
          .containsExactly(17L, 32L);
    }
  }

  @Test
  void sameSeedSameBytesOtherSeedOtherWeights() throws Exception {
    Path ckpt = checkpoint();
    Path again = tmp.resolve("again");
    Path other = tmp.resolve("other");
    RandomCheckpoint.write(RandomCheckpoint.Preset.TINY.spec(), again, 7, DType.F16, tokenizer);
    RandomCheckpoint.write(RandomCheckpoint.Preset.TINY.spec(), other, 8, DType.F16, tokenizer);
    byte[] a = Files.readAllBytes(ckpt.resolve("model.safetensors"));
    assertThat(Files.readAllBytes(again.resolve("model.safetensors"))).isEqualTo(a);
    assertThat(Files.readAllBytes(other.resolve("model.safetensors"))).isNotEqualTo(a);
    assertThat(Files.readString(again.resolve("config.json")))
        .isEqualTo(Files.readString(ckpt.resolve("config.json")));
  }

  @Test
  void bf16AndF32StoreTheSameValuesRounded() throws Exception {
    checkpoint();
    RandomCheckpoint.Spec s = RandomCheckpoint.Preset.TINY.spec().withLayers(1);
    Path f32 = tmp.resolve("f32");
    Path bf16 = tmp.resolve("bf16");
    RandomCheckpoint.write(s, f32, 3, DType.F32, tokenizer);
    RandomCheckpoint.write(s, bf16, 3, DType.BF16, tokenizer);
    String name = "language_model.model.layers.0.self_attn.q_proj.weight";
    try (SafetensorsFile a = SafetensorsFile.open(f32.resolve("model.safetensors"));
        SafetensorsFile b = SafetensorsFile.open(bf16.resolve("model.safetensors"))) {
      assertThat(b.entry(name).dtype()).isEqualTo(DType.BF16);
      float[] x = a.readFloats(name);
      float[] y = b.readFloats(name);
      for (int i = 0; i < x.length; i++) {
        assertThat(Math.abs(x[i] - y[i])).isLessThanOrEqualTo(Math.abs(x[i]) / 256f);
      }
      assertThat(Arrays.equals(x, y)).isFalse();
    }
  }

  @Test
  void benchRunsEveryPlanOnTheBundleOfAGeneratedCheckpoint() throws Exception {
    Path bundle = tmp.resolve("bundle");
    BundleBuilder.build(checkpoint(), bundle, new BuildOptions(false, true));
    assertThat(VisionBundle.spec(Bundle.open(bundle, Bundle.Verify.FULL)).config().numPatches())
        .isEqualTo(16);
    Path image =
        Path.of(
            System.getProperty("tokenpress.project.dir", "."),
            "models",
            "tiny-llava-shapes",
            "reference_images",
            "000000.png");
    JsonNode o =
        new ObjectMapper()
            .readTree(
                PlanSpeedupBenchCommand.run(
                    new String[] {
                      "--bundle",
                      bundle.toString(),
                      "--image",
                      image.toString(),
                      "--rounds",
                      "2",
                      "--warmup",
                      "0",
                      "--new-tokens",
                      "2",
                      "--threads",
                      "1",
                      "--keep",
                      "8",
                      "--fastv-layer",
                      "1"
                    }));
    assertThat(o.get("visual_tokens_in").asInt()).isEqualTo(16);
    assertThat(o.get("vit_layers_run").asInt()).isEqualTo(2);
    assertThat(o.get("same_tokens_every_round").asBoolean()).isTrue();
    Map<String, JsonNode> rows = new HashMap<>();
    for (JsonNode r : o.get("plans")) {
      rows.put(r.get("name").asText(), r);
      assertThat(r.get("answer_token_ids").asText()).matches("\\[\\d+, \\d+\\]");
      for (String st : PlanSpeedupBenchCommand.STAGES) {
        assertThat(r.get("median_ms").get(st).asDouble()).isPositive();
        assertThat(r.get("gflops").get(st).asDouble()).isPositive();
      }
    }
    java.util.List<String> expected =
        new java.util.ArrayList<>(
            java.util.List.of(
                "empty", "vtc-cls", "random-drop", "fastv", "tome", "tome-no-prop-attn"));
    if (dev.tokenpress.operators.api.CompressionPlan.operatorNames()
        .contains(PlanSpeedupBenchCommand.MUSTDROP)) {
      expected.add("mustdrop-a");
    }
    assertThat(rows.keySet()).containsExactlyInAnyOrderElementsOf(expected);
    JsonNode empty = rows.get("empty");
    assertThat(rows.get("tome-no-prop-attn").get("plan").asText()).contains("\"prop_attn\":false");
    // process CPU time ticks coarser than these tiny requests may read 0: then null, else exactly 1
    // for the baseline
    JsonNode cpu = empty.get("cpu_speedup_over_flops_reduction");
    assertThat(cpu.isNull() || cpu.asDouble() == 1.0)
        .as("empty plan cpu quotient %s", cpu)
        .isTrue();
    for (String st : PlanSpeedupBenchCommand.STAGES) {
      assertThat(empty.get("speedup_over_flops_reduction").get(st).asDouble()).isEqualTo(1.0);
    }
    // drops before the LM: fewer prefill FLOPs, the ViT untouched
    for (String n : new String[] {"vtc-cls", "random-drop"}) {
      JsonNode r = rows.get(n);
      assertThat(r.get("visual_tokens_kept").asInt()).isEqualTo(8);
      assertThat(r.get("flops_reduction").get("vision").asDouble()).isEqualTo(1.0);
      assertThat(r.get("flops_reduction").get("prefill").asDouble()).isGreaterThan(1.2);
    }
    // FastV drops inside the LM: all 16 enter, the KV cache of the last layer holds 8 fewer
    JsonNode fastv = rows.get("fastv");
    assertThat(fastv.get("visual_tokens_kept").asInt()).isEqualTo(16);
    assertThat(fastv.get("kv_length_last_layer").asInt() + 8)
        .isEqualTo(empty.get("kv_length_last_layer").asInt());
    // ToMe merges inside the ViT: 16 -> 8 patches over 2 layers (r = [4, 4]), fewer vision FLOPs
    JsonNode tome = rows.get("tome");
    assertThat(tome.get("plan").asText()).contains("\"r\":[4,4]");
    assertThat(tome.get("visual_tokens_kept").asInt()).isEqualTo(8);
    assertThat(tome.get("flops_reduction").get("vision").asDouble()).isGreaterThan(1.0);
    assertThat(tome.get("vit_rows_per_layer").toString()).isEqualTo("[\"0:12\",\"1:8\"]");
  }

  @Test
  void tomeScheduleReachesTheBudget() {
    int[] r = PlanSpeedupBenchCommand.tomeSchedule(576, 23, 144);
    assertThat(Arrays.stream(r).sum()).isEqualTo(432);
    assertThat(r[0]).isEqualTo(19);
    assertThat(r[17]).isEqualTo(19);
    assertThat(r[18]).isEqualTo(18);
    assertThat(r[22]).isEqualTo(18);
    assertThatThrownBy(() -> PlanSpeedupBenchCommand.tomeSchedule(16, 1, 2))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("choose a larger --keep");
  }

  @Test
  void usageErrors() {
    assertThatThrownBy(() -> PlanSpeedupBenchCommand.parsePlans("[]"))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--plans must be a non-empty JSON object");
    assertThatThrownBy(() -> PlanSpeedupBenchCommand.parsePlans("{\"x\":[{\"op\":\"nope\"}]}"))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--plans.x")
        .hasMessageContaining("nope");
    assertThatThrownBy(() -> PlanSpeedupBenchCommand.parsePlans("{\"empty\":[]}"))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("reserved");
    assertThat(
            PlanSpeedupBenchCommand.parsePlans("{\"fv\":[{\"op\":\"fastv\",\"layer\":1}]}")
                .keySet())
        .containsExactly("empty", "fv");
    assertThatThrownBy(
            () -> PlanSpeedupBenchCommand.run(new String[] {"--bundle", "x", "--rounds", "0"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--rounds must be in [1, 10000], found 0");
    assertThatThrownBy(
            () ->
                PlanSpeedupBenchCommand.run(
                    new String[] {
                      "--bundle", "x", "--image", tmp.resolve("absent.png").toString()
                    }))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("cannot be read");
    assertThatThrownBy(() -> RandomCheckpoint.Preset.of("llava-13b"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("presets: llava-1.5-7b, tiny");
  }
}
