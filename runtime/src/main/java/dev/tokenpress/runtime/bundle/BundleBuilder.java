package dev.tokenpress.runtime.bundle;

import dev.tokenpress.runtime.checkpoint.LlamaConfig;
import dev.tokenpress.runtime.checkpoint.LmCheckpoint;
import dev.tokenpress.runtime.checkpoint.SafetensorsWriter;
import dev.tokenpress.runtime.lm.LlamaGraphs;
import dev.tokenpress.runtime.onnx.GraphBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Builds a bundle from a Hugging Face checkpoint directory ({@code tokenpress model build}). Today:
 * the language model (Llama, or the {@code text_config} of a LLaVA checkpoint) and the
 * tokenizer/config side files; the vision tower and projector are added by the vision side through
 * the same {@link BundleWriter}.
 *
 * <p>Layout: {@code lm/embed_tokens.safetensors}, {@code lm/layer_NN_{pre,post,mid}.onnx}, {@code
 * lm/tail.onnx}, {@code lm/head.onnx}, {@code lm/attention.onnx}, optionally {@code
 * lm/decoder_fused.onnx}, all sharing {@code lm/weights.bin}.
 *
 * <p>Deterministic: building the same checkpoint with the same options gives byte-identical files,
 * {@code bundle.json} included ({@code BundleDeterminismTest}).
 */
public final class BundleBuilder {
  /**
   * Checkpoint side files copied verbatim when present (tokenizer, chat template, preprocessing).
   */
  /**
   * Changes whenever the builder writes different bytes for the same checkpoint, so caches of built
   * bundles (keyed by the checkpoint's files) never serve a bundle of an older builder.
   */
  public static final String REVISION = "2-deterministic-manifest";

  public static final List<String> SIDE_FILES =
      List.of(
          "tokenizer.json",
          "tokenizer_config.json",
          "tokenizer.model",
          "special_tokens_map.json",
          "generation_config.json",
          "chat_template.json",
          "chat_template.jinja",
          "preprocessor_config.json",
          "processor_config.json");

  private BundleBuilder() {}

  public static BundleManifest build(Path checkpoint, Path out, BuildOptions options) {
    try (LmCheckpoint ckpt = LmCheckpoint.open(checkpoint);
        BundleWriter w = new BundleWriter(out, options.externalWeights())) {
      LmSpec lm = writeLm(ckpt, w, options);
      // A LLaVA-layout checkpoint may hold only its language model (text_config without
      // vision_config).
      boolean hasVision =
          "llava".equals(ckpt.family()) && ckpt.rawConfig().path("vision_config").isObject();
      com.fasterxml.jackson.databind.JsonNode vision =
          hasVision
              ? dev.tokenpress.runtime.vision.VisionBundle.write(
                  checkpoint, ckpt.store(), w, options.fused())
              : null;
      for (String f : SIDE_FILES) {
        Path p = checkpoint.resolve(f);
        if (Files.isRegularFile(p)) {
          w.copyFile(p, f);
        }
      }
      w.copyFile(checkpoint.resolve("config.json"), "source_config.json");
      // Only what shapes the bytes: no directory name, path, builder version or time, so that
      // every build of the same checkpoint (any copy, any launcher) has the same model_sha256.
      Map<String, String> build = Map.of("opset", Integer.toString(GraphBuilder.OPSET));
      return w.finish(ckpt.family(), lm, vision, null, build);
    }
  }

  /** Writes the LM graphs and embedding table; returns the manifest section. */
  public static LmSpec writeLm(LmCheckpoint ckpt, BundleWriter w, BuildOptions options) {
    LlamaConfig c = ckpt.config();
    LlamaGraphs graphs = new LlamaGraphs(ckpt);
    String embedding = "lm/embed_tokens.safetensors";
    new SafetensorsWriter()
        .add("embed_tokens", ckpt.weight("embed_tokens.weight"), c.vocabSize(), c.hiddenSize())
        .write(w.resolve(embedding));
    w.addFile(embedding);

    List<String> pre = new ArrayList<>();
    List<String> post = new ArrayList<>();
    List<String> mid = new ArrayList<>();
    for (int l = 0; l < c.numLayers(); l++) {
      String p = String.format("lm/layer_%02d_pre.onnx", l);
      w.writeGraph(p, graphs.pre(l));
      pre.add(p);
      String q = String.format("lm/layer_%02d_post.onnx", l);
      w.writeGraph(q, graphs.post(l));
      post.add(q);
      if (l + 1 < c.numLayers()) {
        String m = String.format("lm/layer_%02d_mid.onnx", l);
        w.writeGraph(m, graphs.mid(l));
        mid.add(m);
      }
    }
    w.writeGraph("lm/tail.onnx", graphs.tail());
    w.writeGraph("lm/head.onnx", graphs.head());
    w.writeGraph("lm/attention.onnx", graphs.attention());
    String fused = null;
    if (options.fused()) {
      fused = "lm/decoder_fused.onnx";
      w.writeGraph(fused, graphs.fused());
    }
    return new LmSpec(
        "llama",
        c.hiddenSize(),
        c.intermediateSize(),
        c.numLayers(),
        c.numHeads(),
        c.numKvHeads(),
        c.headDim(),
        c.vocabSize(),
        c.maxPositionEmbeddings(),
        c.ropeTheta(),
        c.rmsNormEps(),
        c.bosTokenId(),
        c.eosTokenIds(),
        embedding,
        "embed_tokens",
        new LmGraphFiles(
            pre, post, mid, "lm/tail.onnx", "lm/head.onnx", "lm/attention.onnx", fused));
  }
}
