package dev.tokenpress.runtime.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleException;
import dev.tokenpress.runtime.bundle.BundleWriter;
import dev.tokenpress.runtime.checkpoint.TensorStore;
import dev.tokenpress.runtime.media.PreprocessorConfig;
import dev.tokenpress.runtime.media.Resample;
import dev.tokenpress.runtime.onnx.GraphBuilder;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The vision half of a model bundle: the graphs of {@link VisionGraphs} under {@code vision/}
 * (sharing {@code vision/weights.bin} with external data, or inline) and the manifest's {@code
 * vision} section:
 *
 * <pre>{@code
 * "vision": {
 *   "architecture": "clip-vit",
 *   "config": { VisionConfig fields },
 *   "preprocessor": { PreprocessorConfig fields },
 *   "graph_dir": "vision",
 *   "graphs": ["embed", "embed_pre0", "pre_0", ...],
 *   "fused": "vision/fused.onnx"          // or null
 * }
 * }</pre>
 */
public final class VisionBundle {
  public static final String DIR = "vision";
  static final ObjectMapper JSON = new ObjectMapper();

  /** What a bundle says about its vision tower. */
  public record Spec(
      VisionConfig config, PreprocessorConfig preprocessor, Path graphDir, Path fused) {}

  private VisionBundle() {}

  /**
   * Writes the vision graphs of a LLaVA checkpoint into the bundle being written and returns the
   * manifest section. Preprocessing comes from the checkpoint's {@code preprocessor_config.json}
   * (CLIP defaults at the ViT's image size when absent).
   */
  public static JsonNode write(
      Path checkpoint, TensorStore store, BundleWriter writer, boolean fused) {
    JsonNode cfgJson;
    PreprocessorConfig pre;
    try {
      cfgJson = JSON.readTree(checkpoint.resolve("config.json").toFile());
      VisionConfig probe = VisionConfig.fromLlavaConfig(cfgJson);
      Path pp = checkpoint.resolve("preprocessor_config.json");
      pre =
          Files.isRegularFile(pp)
              ? PreprocessorConfig.fromJson(JSON.readTree(pp.toFile()))
              : PreprocessorConfig.clip(probe.imageSize(), Resample.BICUBIC);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the configs of checkpoint " + checkpoint, e);
    }
    VisionConfig cfg = VisionConfig.fromLlavaConfig(cfgJson);
    int outH = pre.outputHeight(cfg.imageSize(), cfg.imageSize());
    int outW = pre.outputWidth(cfg.imageSize(), cfg.imageSize());
    if (outH != cfg.imageSize() || outW != cfg.imageSize()) {
      throw new IllegalArgumentException(
          "preprocessor_config.json produces "
              + outH
              + "x"
              + outW
              + " pixels but the vision tower takes "
              + cfg.imageSize()
              + "x"
              + cfg.imageSize());
    }
    VisionGraphs graphs = new VisionGraphs(cfg, WeightSource.of(store));
    ArrayNode names = JSON.createArrayNode();
    for (Map.Entry<String, GraphBuilder> e : graphs.splitGraphs().entrySet()) {
      writer.writeGraph(DIR + "/" + e.getKey() + ".onnx", e.getValue());
      names.add(e.getKey());
    }
    String fusedPath = null;
    if (fused) {
      fusedPath = DIR + "/fused.onnx";
      writer.writeGraph(fusedPath, graphs.fused());
    }
    ObjectNode section = JSON.createObjectNode();
    section.put("architecture", "clip-vit");
    section.set("config", JSON.valueToTree(cfg));
    section.set("preprocessor", JSON.valueToTree(pre));
    section.put("graph_dir", DIR);
    section.set("graphs", names);
    section.put("fused", fusedPath);
    return section;
  }

  /** Reads the {@code vision} section of an opened bundle. */
  public static Spec spec(Bundle bundle) {
    JsonNode v = bundle.manifest().vision();
    if (v == null || v.isNull()) {
      throw new BundleException(
          "bundle "
              + bundle.directory()
              + " has no vision tower (built from a "
              + bundle.manifest().family()
              + " checkpoint)");
    }
    if (!"clip-vit".equals(v.path("architecture").asText())) {
      throw new BundleException(
          "vision architecture " + v.path("architecture") + " is not supported (clip-vit)");
    }
    try {
      VisionConfig cfg = JSON.treeToValue(v.get("config"), VisionConfig.class);
      PreprocessorConfig pre = JSON.treeToValue(v.get("preprocessor"), PreprocessorConfig.class);
      String fused = v.path("fused").isTextual() ? v.get("fused").asText() : null;
      return new Spec(
          cfg,
          pre,
          bundle.resolve(v.path("graph_dir").asText(DIR)),
          fused == null ? null : bundle.resolve(fused));
    } catch (IOException | IllegalArgumentException e) {
      throw new BundleException(
          "invalid vision section in " + bundle.directory() + "/bundle.json: " + e.getMessage(), e);
    }
  }

  /** The split encoder of a bundle. */
  public static VisionEncoder openSplit(Bundle bundle, SessionConfig config) {
    Spec s = spec(bundle);
    return VisionEncoder.load(s.graphDir(), s.config(), config);
  }

  /** The fused encoder of a bundle built with fused graphs. */
  public static FusedVisionEncoder openFused(Bundle bundle, SessionConfig config) {
    Spec s = spec(bundle);
    if (s.fused() == null) {
      throw new BundleException(
          "bundle " + bundle.directory() + " has no fused vision graph (build it with --fused)");
    }
    return FusedVisionEncoder.load(s.fused(), s.config(), config);
  }
}
