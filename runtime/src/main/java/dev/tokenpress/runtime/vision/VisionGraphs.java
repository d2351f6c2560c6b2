package dev.tokenpress.runtime.vision;

import ai.onnx.proto.OnnxMl.ModelProto;
import dev.tokenpress.runtime.vision.VisionConfig.Activation;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Builds the ONNX graphs of a LLaVA-1.5 vision tower (CLIP ViT) and projector from checkpoint
 * weights (Hugging Face names), in Java. Every graph has a symbolic batch {@code B} and token
 * count {@code T}, so operators may drop or merge tokens between layers.
 *
 * <p>The split graphs (see {@link #splitGraphs()}):
 *
 * <ul>
 *   <li>{@code embed}: {@code pixel_values [B,3,S,S]} → {@code hidden [B,T,D]}: patch Conv, CLS,
 *       positions, {@code pre_layrnorm}.
 *   <li>{@code pre_i}: {@code hidden} → {@code q, k, v [B,H,T,Dh]}: {@code layer_norm1}, q/k/v
 *       projections (q not yet scaled).
 *   <li>{@code attention}: {@code q, k, v} → {@code attn [B,T,D]}: {@code softmax(q k^T / sqrt(Dh)) v},
 *       heads concatenated; {@code attention_bias} takes an extra additive bias {@code [B,H|1,T,T]}.
 *   <li>{@code post_i}: {@code hidden, attn} → {@code hidden}: {@code out_proj} + residual,
 *       {@code layer_norm2}, {@code fc1}, activation, {@code fc2} + residual.
 *   <li>{@code projector}: {@code hidden [B,T,D]} → {@code image_features [B,N,Dt]}: drops CLS
 *       (strategy {@code default}), {@code linear_1}, activation, {@code linear_2}.
 *   <li>Cut between attentions (half the calls): {@code embed_pre0} = embed + pre_0,
 *       {@code post_pre_i} = post_i + pre_{i+1}, {@code post_projector} = post of the last layer
 *       run + projector.
 * </ul>
 *
 * Layers after {@link VisionConfig#layersRun()} are never built ({@code vision_feature_layer = -2}
 * skips the last layer entirely). {@link #fused()} is the whole tower + projector in one graph,
 * the conventional export, for comparison.
 */
public final class VisionGraphs {
  static final String TOWER = "vision_tower.vision_model.";
  static final String PROJECTOR = "multi_modal_projector.";

  private final VisionConfig cfg;
  private final WeightSource weights;

  public VisionGraphs(VisionConfig cfg, WeightSource weights) {
    this.cfg = cfg;
    this.weights = weights;
    checkShapes();
  }

  public VisionConfig config() {
    return cfg;
  }

  // ---- whole graphs ------------------------------------------------------------------------

  public ModelProto embed() {
    MiniGraph g = new MiniGraph("vision_embed");
    String h = embeddings(g, pixelInput(g));
    g.output(h, "hidden", "B", "T", (long) cfg.hiddenSize());
    return g.model();
  }

  public ModelProto embedPre0() {
    MiniGraph g = new MiniGraph("vision_embed_pre0");
    String h = embeddings(g, pixelInput(g));
    g.output(h, "hidden", "B", "T", (long) cfg.hiddenSize());
    qkvOutputs(g, pre(g, 0, "hidden"));
    return g.model();
  }

  public ModelProto pre(int layer) {
    checkLayer(layer);
    MiniGraph g = new MiniGraph("vision_pre_" + layer);
    qkvOutputs(g, pre(g, layer, hiddenInput(g, "hidden")));
    return g.model();
  }

  public ModelProto attention(boolean withBias) {
    MiniGraph g = new MiniGraph(withBias ? "vision_attention_bias" : "vision_attention");
    String q = g.input("q", "B", (long) cfg.numHeads(), "T", (long) cfg.headDim());
    String k = g.input("k", "B", (long) cfg.numHeads(), "T", (long) cfg.headDim());
    String v = g.input("v", "B", (long) cfg.numHeads(), "T", (long) cfg.headDim());
    String bias = withBias ? g.input("bias", "B", "Hb", "T", "T") : null;
    g.output(attention(g, q, k, v, bias), "attn", "B", "T", (long) cfg.hiddenSize());
    return g.model();
  }

  public ModelProto post(int layer) {
    checkLayer(layer);
    MiniGraph g = new MiniGraph("vision_post_" + layer);
    String h = post(g, layer, hiddenInput(g, "hidden"), hiddenInput(g, "attn"));
    g.output(h, "hidden_out", "B", "T", (long) cfg.hiddenSize());
    return g.model();
  }

  /** post of {@code layer} then pre of {@code layer + 1}, one call. */
  public ModelProto postPre(int layer) {
    checkLayer(layer + 1);
    MiniGraph g = new MiniGraph("vision_post_pre_" + layer);
    String h = post(g, layer, hiddenInput(g, "hidden"), hiddenInput(g, "attn"));
    g.output(h, "hidden_out", "B", "T", (long) cfg.hiddenSize());
    qkvOutputs(g, pre(g, layer + 1, "hidden_out"));
    return g.model();
  }

  public ModelProto projector() {
    MiniGraph g = new MiniGraph("vision_projector");
    g.output(projector(g, hiddenInput(g, "hidden")), "image_features", "B", "N", (long) cfg.textHiddenSize());
    return g.model();
  }

  /** post of the last layer run, then the projector, one call. */
  public ModelProto postProjector() {
    int last = cfg.layersRun() - 1;
    checkLayer(last);
    MiniGraph g = new MiniGraph("vision_post_projector");
    String h = post(g, last, hiddenInput(g, "hidden"), hiddenInput(g, "attn"));
    g.output(projector(g, h), "image_features", "B", "N", (long) cfg.textHiddenSize());
    return g.model();
  }

  /** The whole tower and projector: {@code pixel_values → image_features}. */
  public ModelProto fused() {
    MiniGraph g = new MiniGraph("vision_fused");
    String h = embeddings(g, pixelInput(g));
    for (int i = 0; i < cfg.layersRun(); i++) {
      String[] qkv = pre(g, i, h);
      h = post(g, i, h, attention(g, qkv[0], qkv[1], qkv[2], null));
    }
    g.output(projector(g, h), "image_features", "B", "N", (long) cfg.textHiddenSize());
    return g.model();
  }

  /**
   * Every graph the split encoder may use, by file stem: {@code embed}, {@code embed_pre0},
   * {@code pre_i}, {@code post_i}, {@code post_pre_i}, {@code attention}, {@code attention_bias},
   * {@code projector}, {@code post_projector}.
   */
  public Map<String, ModelProto> splitGraphs() {
    Map<String, ModelProto> m = new LinkedHashMap<>();
    int n = cfg.layersRun();
    m.put("embed", embed());
    m.put("attention", attention(false));
    m.put("attention_bias", attention(true));
    m.put("projector", projector());
    if (n > 0) {
      m.put("embed_pre0", embedPre0());
      m.put("post_projector", postProjector());
    }
    for (int i = 0; i < n; i++) {
      m.put("pre_" + i, pre(i));
      m.put("post_" + i, post(i));
      if (i + 1 < n) {
        m.put("post_pre_" + i, postPre(i));
      }
    }
    return m;
  }

  /** Writes {@link #splitGraphs()} and {@code fused} as {@code <stem>.onnx} into {@code dir}. */
  public void writeTo(Path dir) {
    try {
      Files.createDirectories(dir);
      Map<String, ModelProto> all = new LinkedHashMap<>(splitGraphs());
      all.put("fused", fused());
      for (Map.Entry<String, ModelProto> e : all.entrySet()) {
        Files.write(dir.resolve(e.getKey() + ".onnx"), e.getValue().toByteArray());
      }
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot write vision graphs to " + dir, e);
    }
  }

  // ---- subgraphs -----------------------------------------------------------------------------

  private String pixelInput(MiniGraph g) {
    return g.input("pixel_values", "B", (long) cfg.numChannels(), (long) cfg.imageSize(), (long) cfg.imageSize());
  }

  private String hiddenInput(MiniGraph g, String name) {
    return g.input(name, "B", "T", (long) cfg.hiddenSize());
  }

  private void qkvOutputs(MiniGraph g, String[] qkv) {
    Object[] dims = {"B", (long) cfg.numHeads(), "T", (long) cfg.headDim()};
    g.output(qkv[0], "q", dims);
    g.output(qkv[1], "k", dims);
    g.output(qkv[2], "v", dims);
  }

  /** Patch Conv → [B,N,D], CLS prepended, positions added, pre_layrnorm. */
  private String embeddings(MiniGraph g, String pixels) {
    int d = cfg.hiddenSize();
    int p = cfg.patchSize();
    String e = TOWER + "embeddings.";
    String w = g.init(e + "patch_embedding.weight", weights.floats(e + "patch_embedding.weight"), d, cfg.numChannels(), p, p);
    String conv = g.op("Conv", new String[] {pixels, w}, "kernel_shape", new long[] {p, p}, "strides", new long[] {p, p});
    String flat = g.op("Reshape", new String[] {conv, g.longs(0, d, -1)});
    String patches = g.op("Transpose", new String[] {flat}, "perm", new long[] {0, 2, 1});
    String cls = g.init(e + "class_embedding", weights.floats(e + "class_embedding"), 1, 1, d);
    String batch = g.op("Shape", new String[] {pixels}, "start", 0L, "end", 1L);
    String clsShape = g.op("Concat", new String[] {batch, g.longs(1, d)}, "axis", 0L);
    String clsB = g.op("Expand", new String[] {cls, clsShape});
    String seq = g.op("Concat", new String[] {clsB, patches}, "axis", 1L);
    String pos = g.init(e + "position_embedding.weight", weights.floats(e + "position_embedding.weight"),
        1, cfg.numPositions(), d);
    String x = g.op("Add", new String[] {seq, pos});
    return layerNorm(g, x, TOWER + "pre_layrnorm");
  }

  /** layer_norm1 → one fused q|k|v MatMul → three [B,H,T,Dh] tensors. */
  private String[] pre(MiniGraph g, int layer, String hidden) {
    int d = cfg.hiddenSize();
    String l = layerPrefix(layer);
    String x = layerNorm(g, hidden, l + "layer_norm1");
    float[] wqkv = new float[d * 3 * d];
    float[] bqkv = new float[3 * d];
    String[] proj = {"q_proj", "k_proj", "v_proj"};
    for (int j = 0; j < 3; j++) {
      float[] w = weights.floats(l + "self_attn." + proj[j] + ".weight"); // [out=d, in=d]
      for (int o = 0; o < d; o++) {
        for (int i = 0; i < d; i++) {
          wqkv[i * 3 * d + j * d + o] = w[o * d + i];
        }
      }
      System.arraycopy(weights.floats(l + "self_attn." + proj[j] + ".bias"), 0, bqkv, j * d, d);
    }
    String mm = g.op("MatMul", new String[] {x, g.init(l + "self_attn.qkv.weight_t", wqkv, d, 3L * d)});
    String qkv = g.op("Add", new String[] {mm, g.init(l + "self_attn.qkv.bias", bqkv, 3L * d)});
    String[] parts = g.ops("Split", 3, new String[] {qkv, g.longs(d, d, d)}, "axis", 2L);
    String[] out = new String[3];
    String shape = g.longs(0, 0, cfg.numHeads(), cfg.headDim());
    for (int j = 0; j < 3; j++) {
      String r = g.op("Reshape", new String[] {parts[j], shape});
      out[j] = g.op("Transpose", new String[] {r}, "perm", new long[] {0, 2, 1, 3});
    }
    return out;
  }

  private String attention(MiniGraph g, String q, String k, String v, String bias) {
    String kt = g.op("Transpose", new String[] {k}, "perm", new long[] {0, 1, 3, 2});
    String scores = g.op("MatMul", new String[] {q, kt});
    scores = g.op("Mul", new String[] {scores, g.scalar((float) (1.0 / Math.sqrt(cfg.headDim())))});
    if (bias != null) {
      scores = g.op("Add", new String[] {scores, bias});
    }
    String probs = g.op("Softmax", new String[] {scores}, "axis", -1L);
    String o = g.op("MatMul", new String[] {probs, v});
    String t = g.op("Transpose", new String[] {o}, "perm", new long[] {0, 2, 1, 3});
    return g.op("Reshape", new String[] {t, g.longs(0, 0, cfg.hiddenSize())});
  }

  private String post(MiniGraph g, int layer, String hidden, String attn) {
    String l = layerPrefix(layer);
    String o = linear(g, attn, l + "self_attn.out_proj");
    String h = g.op("Add", new String[] {hidden, o});
    String y = layerNorm(g, h, l + "layer_norm2");
    y = linear(g, y, l + "mlp.fc1");
    y = activation(g, y, cfg.hiddenAct());
    y = linear(g, y, l + "mlp.fc2");
    return g.op("Add", new String[] {h, y});
  }

  private String projector(MiniGraph g, String hidden) {
    String x = hidden;
    if (cfg.selectStrategy() == VisionConfig.SelectStrategy.DEFAULT) {
      x = g.op("Slice", new String[] {hidden, g.longs(1), g.longs(Long.MAX_VALUE), g.longs(1)});
    }
    x = linear(g, x, PROJECTOR + "linear_1");
    x = activation(g, x, cfg.projectorAct());
    return linear(g, x, PROJECTOR + "linear_2");
  }

  private String layerNorm(MiniGraph g, String x, String prefix) {
    int d = cfg.hiddenSize();
    String s = g.init(prefix + ".weight", weights.floats(prefix + ".weight"), d);
    String b = g.init(prefix + ".bias", weights.floats(prefix + ".bias"), d);
    return g.op("LayerNormalization", new String[] {x, s, b}, "axis", -1L, "epsilon", (float) cfg.layerNormEps());
  }

  /** {@code x @ W^T + b} with W in Hugging Face {@code [out, in]} layout (transposed here). */
  private String linear(MiniGraph g, String x, String prefix) {
    long[] shape = weights.shape(prefix + ".weight");
    int out = (int) shape[0];
    int in = (int) shape[1];
    float[] w = weights.floats(prefix + ".weight");
    float[] wt = new float[w.length];
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        wt[i * out + o] = w[o * in + i];
      }
    }
    String mm = g.op("MatMul", new String[] {x, g.init(prefix + ".weight_t", wt, in, out)});
    if (!weights.contains(prefix + ".bias")) {
      return mm;
    }
    return g.op("Add", new String[] {mm, g.init(prefix + ".bias", weights.floats(prefix + ".bias"), out)});
  }

  private static String activation(MiniGraph g, String x, Activation act) {
    switch (act) {
      case QUICK_GELU: {
        String s = g.op("Sigmoid", new String[] {g.op("Mul", new String[] {x, g.scalar(1.702f)})});
        return g.op("Mul", new String[] {x, s});
      }
      case GELU: {
        String erf = g.op("Erf", new String[] {g.op("Mul", new String[] {x, g.scalar((float) (1 / Math.sqrt(2)))})});
        String onePlus = g.op("Add", new String[] {erf, g.scalar(1f)});
        return g.op("Mul", new String[] {g.op("Mul", new String[] {x, g.scalar(0.5f)}), onePlus});
      }
      case GELU_TANH: {
        String x3 = g.op("Mul", new String[] {g.op("Mul", new String[] {x, x}), x});
        String inner = g.op("Add", new String[] {x, g.op("Mul", new String[] {x3, g.scalar(0.044715f)})});
        String t = g.op("Tanh", new String[] {g.op("Mul", new String[] {inner, g.scalar((float) Math.sqrt(2 / Math.PI))})});
        return g.op("Mul", new String[] {g.op("Mul", new String[] {x, g.scalar(0.5f)}), g.op("Add", new String[] {t, g.scalar(1f)})});
      }
      default:
        throw new IllegalStateException("unknown activation " + act);
    }
  }

  private static String layerPrefix(int layer) {
    return TOWER + "encoder.layers." + layer + ".";
  }

  private void checkLayer(int layer) {
    if (layer < 0 || layer >= cfg.layersRun()) {
      throw new IllegalArgumentException("ViT layer " + layer + " is not run (layers 0.." + (cfg.layersRun() - 1)
          + " for vision_feature_layer " + cfg.featureLayer() + ")");
    }
  }

  /** Fails early, naming the tensor, when a checkpoint does not match the config. */
  private void checkShapes() {
    int d = cfg.hiddenSize();
    String e = TOWER + "embeddings.";
    expect(e + "patch_embedding.weight", d, cfg.numChannels(), cfg.patchSize(), cfg.patchSize());
    expect(e + "class_embedding", d);
    expect(e + "position_embedding.weight", cfg.numPositions(), d);
    for (int i = 0; i < cfg.layersRun(); i++) {
      String l = layerPrefix(i);
      for (String p : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        expect(l + "self_attn." + p + ".weight", d, d);
      }
      expect(l + "mlp.fc1.weight", cfg.intermediateSize(), d);
      expect(l + "mlp.fc2.weight", d, cfg.intermediateSize());
    }
    long[] l1 = weights.shape(PROJECTOR + "linear_1.weight");
    expect(PROJECTOR + "linear_1.weight", l1[0], d);
    expect(PROJECTOR + "linear_2.weight", cfg.textHiddenSize(), l1[0]);
  }

  private void expect(String name, long... shape) {
    if (!weights.contains(name)) {
      throw new IllegalArgumentException("checkpoint has no tensor " + name);
    }
    long[] actual = weights.shape(name);
    if (!java.util.Arrays.equals(actual, shape)) {
      throw new IllegalArgumentException("tensor " + name + " has shape " + java.util.Arrays.toString(actual)
          + ", config.json implies " + java.util.Arrays.toString(shape));
    }
  }
}
