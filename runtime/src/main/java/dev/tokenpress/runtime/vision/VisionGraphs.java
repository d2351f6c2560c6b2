package dev.tokenpress.runtime.vision;

import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import dev.tokenpress.runtime.onnx.Attr;
import dev.tokenpress.runtime.onnx.GraphBuilder;
import dev.tokenpress.runtime.vision.VisionConfig.Activation;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds the ONNX graphs of a LLaVA-1.5 vision tower (CLIP ViT) and projector from checkpoint
 * weights (Hugging Face names), in Java. Every graph has a symbolic batch {@code B} and token count
 * {@code T}, so operators may drop or merge tokens between layers.
 *
 * <p>The split graphs (see {@link #splitGraphs()}):
 *
 * <ul>
 *   <li>{@code embed}: {@code pixel_values [B,3,S,S]} → {@code hidden [B,T,D]}: patch Conv, CLS,
 *       positions, {@code pre_layrnorm}.
 *   <li>{@code pre_i}: {@code hidden} → {@code q, k, v [B,H,T,Dh]}: {@code layer_norm1}, q/k/v
 *       projections (q not yet scaled).
 *   <li>{@code attention}: {@code q, k, v} → {@code attn [B,T,D]}: {@code softmax(q k^T / sqrt(Dh))
 *       v}, heads concatenated; {@code attention_bias} takes an extra additive bias {@code
 *       [B,H|1,T,T]}.
 *   <li>{@code post_i}: {@code hidden, attn} → {@code hidden}: {@code out_proj} + residual, {@code
 *       layer_norm2}, {@code fc1}, activation, {@code fc2} + residual.
 *   <li>{@code projector}: {@code hidden [B,T,D]} → {@code image_features [B,N,Dt]}: drops CLS
 *       (strategy {@code default}), {@code linear_1}, activation, {@code linear_2}.
 *   <li>Cut between attentions (half the calls): {@code embed_pre0} = embed + pre_0, {@code
 *       post_pre_i} = post_i + pre_{i+1}, {@code post_projector} = post of the last layer run +
 *       projector.
 * </ul>
 *
 * Layers after {@link VisionConfig#layersRun()} are never built ({@code vision_feature_layer = -2}
 * skips the last layer entirely). {@link #fused()} is the whole tower + projector in one graph, the
 * conventional export, for comparison.
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

  public GraphBuilder embed() {
    GraphBuilder g = new GraphBuilder("vision_embed");
    String h = embeddings(g, pixelInput(g));
    g.output(h, "hidden", DataType.FLOAT, "B", "T", (long) cfg.hiddenSize());
    return g;
  }

  public GraphBuilder embedPre0() {
    GraphBuilder g = new GraphBuilder("vision_embed_pre0");
    String h = embeddings(g, pixelInput(g));
    g.output(h, "hidden", DataType.FLOAT, "B", "T", (long) cfg.hiddenSize());
    qkvOutputs(g, pre(g, 0, "hidden"));
    return g;
  }

  public GraphBuilder pre(int layer) {
    checkLayer(layer);
    GraphBuilder g = new GraphBuilder("vision_pre_" + layer);
    qkvOutputs(g, pre(g, layer, hiddenInput(g, "hidden")));
    return g;
  }

  public GraphBuilder attention(boolean withBias) {
    GraphBuilder g = new GraphBuilder(withBias ? "vision_attention_bias" : "vision_attention");
    String q = g.input("q", DataType.FLOAT, "B", (long) cfg.numHeads(), "T", (long) cfg.headDim());
    String k = g.input("k", DataType.FLOAT, "B", (long) cfg.numHeads(), "T", (long) cfg.headDim());
    String v = g.input("v", DataType.FLOAT, "B", (long) cfg.numHeads(), "T", (long) cfg.headDim());
    String bias = withBias ? g.input("bias", DataType.FLOAT, "B", "Hb", "T", "T") : null;
    g.output(
        attention(g, q, k, v, bias), "attn", DataType.FLOAT, "B", "T", (long) cfg.hiddenSize());
    return g;
  }

  public GraphBuilder post(int layer) {
    checkLayer(layer);
    GraphBuilder g = new GraphBuilder("vision_post_" + layer);
    String h = post(g, layer, hiddenInput(g, "hidden"), hiddenInput(g, "attn"));
    g.output(h, "hidden_out", DataType.FLOAT, "B", "T", (long) cfg.hiddenSize());
    return g;
  }

  /** post of {@code layer} then pre of {@code layer + 1}, one call. */
  public GraphBuilder postPre(int layer) {
    checkLayer(layer + 1);
    GraphBuilder g = new GraphBuilder("vision_post_pre_" + layer);
    String h = post(g, layer, hiddenInput(g, "hidden"), hiddenInput(g, "attn"));
    g.output(h, "hidden_out", DataType.FLOAT, "B", "T", (long) cfg.hiddenSize());
    qkvOutputs(g, pre(g, layer + 1, "hidden_out"));
    return g;
  }

  public GraphBuilder projector() {
    GraphBuilder g = new GraphBuilder("vision_projector");
    g.output(
        projector(g, hiddenInput(g, "hidden")),
        "image_features",
        DataType.FLOAT,
        "B",
        "N",
        (long) cfg.textHiddenSize());
    return g;
  }

  /** post of the last layer run, then the projector, one call. */
  public GraphBuilder postProjector() {
    int last = cfg.layersRun() - 1;
    checkLayer(last);
    GraphBuilder g = new GraphBuilder("vision_post_projector");
    String h = post(g, last, hiddenInput(g, "hidden"), hiddenInput(g, "attn"));
    g.output(
        projector(g, h), "image_features", DataType.FLOAT, "B", "N", (long) cfg.textHiddenSize());
    return g;
  }

  /** The whole tower and projector: {@code pixel_values → image_features}. */
  public GraphBuilder fused() {
    GraphBuilder g = new GraphBuilder("vision_fused");
    String h = embeddings(g, pixelInput(g));
    for (int i = 0; i < cfg.layersRun(); i++) {
      String[] qkv = pre(g, i, h);
      h = post(g, i, h, attention(g, qkv[0], qkv[1], qkv[2], null));
    }
    g.output(
        projector(g, h), "image_features", DataType.FLOAT, "B", "N", (long) cfg.textHiddenSize());
    return g;
  }

  /**
   * Every graph the split encoder may use, by file stem: {@code embed}, {@code embed_pre0}, {@code
   * pre_i}, {@code post_i}, {@code post_pre_i}, {@code attention}, {@code attention_bias}, {@code
   * projector}, {@code post_projector}.
   */
  public Map<String, GraphBuilder> splitGraphs() {
    Map<String, GraphBuilder> m = new LinkedHashMap<>();
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

  // ---- subgraphs -----------------------------------------------------------------------------

  private String pixelInput(GraphBuilder g) {
    return g.input(
        "pixel_values",
        DataType.FLOAT,
        "B",
        (long) cfg.numChannels(),
        (long) cfg.imageSize(),
        (long) cfg.imageSize());
  }

  private String hiddenInput(GraphBuilder g, String name) {
    return g.input(name, DataType.FLOAT, "B", "T", (long) cfg.hiddenSize());
  }

  private void qkvOutputs(GraphBuilder g, String[] qkv) {
    Object[] dims = {"B", (long) cfg.numHeads(), "T", (long) cfg.headDim()};
    g.output(qkv[0], "q", DataType.FLOAT, dims);
    g.output(qkv[1], "k", DataType.FLOAT, dims);
    g.output(qkv[2], "v", DataType.FLOAT, dims);
  }

  /** Patch Conv → [B,N,D], CLS prepended, positions added, pre_layrnorm. */
  private String embeddings(GraphBuilder g, String pixels) {
    int d = cfg.hiddenSize();
    int p = cfg.patchSize();
    String e = TOWER + "embeddings.";
    String w =
        g.weight(
            e + "patch_embedding.weight",
            new long[] {d, cfg.numChannels(), p, p},
            () -> weights.floats(e + "patch_embedding.weight"));
    String conv =
        g.op(
            "Conv",
            List.of(pixels, w),
            Attr.ints("kernel_shape", p, p),
            Attr.ints("strides", p, p));
    String patches = g.transpose(g.reshape(conv, 0, d, -1), 0, 2, 1);
    String cls =
        g.weight(
            e + "class_embedding",
            new long[] {1, 1, d},
            () -> weights.floats(e + "class_embedding"));
    String batch = g.op("Shape", List.of(pixels), Attr.i("start", 0), Attr.i("end", 1));
    String clsB = g.op("Expand", List.of(cls, g.concat(0, batch, g.ints(1, d))));
    String seq = g.concat(1, clsB, patches);
    String pos =
        g.weight(
            e + "position_embedding.weight",
            new long[] {1, cfg.numPositions(), d},
            () -> weights.floats(e + "position_embedding.weight"));
    return layerNorm(g, g.add(seq, pos), TOWER + "pre_layrnorm");
  }

  /** layer_norm1 → one fused q|k|v MatMul → three [B,H,T,Dh] tensors. */
  private String[] pre(GraphBuilder g, int layer, String hidden) {
    int d = cfg.hiddenSize();
    String l = layerPrefix(layer);
    String x = layerNorm(g, hidden, l + "layer_norm1");
    String[] proj = {"q_proj", "k_proj", "v_proj"};
    String w =
        g.weight(
            l + "self_attn.qkv_proj.weight_t",
            new long[] {d, 3L * d},
            () -> {
              float[] wqkv = new float[d * 3 * d];
              for (int j = 0; j < 3; j++) {
                float[] wj =
                    weights.floats(l + "self_attn." + proj[j] + ".weight"); // [out=d, in=d]
                for (int o = 0; o < d; o++) {
                  for (int i = 0; i < d; i++) {
                    wqkv[i * 3 * d + j * d + o] = wj[o * d + i];
                  }
                }
              }
              return wqkv;
            });
    String b =
        g.weight(
            l + "self_attn.qkv_proj.bias",
            new long[] {3L * d},
            () -> {
              float[] bqkv = new float[3 * d];
              for (int j = 0; j < 3; j++) {
                System.arraycopy(
                    weights.floats(l + "self_attn." + proj[j] + ".bias"), 0, bqkv, j * d, d);
              }
              return bqkv;
            });
    String[] parts = g.split(g.linear(x, w, b), 2, d, d, d);
    String[] out = new String[3];
    for (int j = 0; j < 3; j++) {
      out[j] = g.transpose(g.reshape(parts[j], 0, 0, cfg.numHeads(), cfg.headDim()), 0, 2, 1, 3);
    }
    return out;
  }

  private String attention(GraphBuilder g, String q, String k, String v, String bias) {
    String scores =
        g.mul(
            g.matMul(q, g.transpose(k, 0, 1, 3, 2)),
            g.scalar((float) (1.0 / Math.sqrt(cfg.headDim()))));
    if (bias != null) {
      scores = g.add(scores, bias);
    }
    String o = g.matMul(g.softmax(scores, -1), v);
    return g.reshape(g.transpose(o, 0, 2, 1, 3), 0, 0, cfg.hiddenSize());
  }

  private String post(GraphBuilder g, int layer, String hidden, String attn) {
    String l = layerPrefix(layer);
    String h = g.add(hidden, linear(g, attn, l + "self_attn.out_proj"));
    String y = layerNorm(g, h, l + "layer_norm2");
    y = linear(g, activation(g, linear(g, y, l + "mlp.fc1"), cfg.hiddenAct()), l + "mlp.fc2");
    return g.add(h, y);
  }

  private String projector(GraphBuilder g, String hidden) {
    String x = hidden;
    if (cfg.selectStrategy() == VisionConfig.SelectStrategy.DEFAULT) {
      x = g.slice(hidden, new long[] {1}, new long[] {Long.MAX_VALUE}, new long[] {1});
    }
    x = activation(g, linear(g, x, PROJECTOR + "linear_1"), cfg.projectorAct());
    return linear(g, x, PROJECTOR + "linear_2");
  }

  private String layerNorm(GraphBuilder g, String x, String prefix) {
    long d = cfg.hiddenSize();
    String s =
        g.weight(prefix + ".weight", new long[] {d}, () -> weights.floats(prefix + ".weight"));
    String b = g.weight(prefix + ".bias", new long[] {d}, () -> weights.floats(prefix + ".bias"));
    return g.layerNorm(x, s, b, (float) cfg.layerNormEps());
  }

  /**
   * {@code x @ W^T + b} with W in Hugging Face {@code [out, in]} layout (transposed when written).
   */
  private String linear(GraphBuilder g, String x, String prefix) {
    long[] shape = weights.shape(prefix + ".weight");
    int out = (int) shape[0];
    int in = (int) shape[1];
    String wt =
        g.weight(
            prefix + ".weight_t",
            new long[] {in, out},
            () -> {
              float[] w = weights.floats(prefix + ".weight");
              float[] t = new float[w.length];
              for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                  t[i * out + o] = w[o * in + i];
                }
              }
              return t;
            });
    String b =
        weights.contains(prefix + ".bias")
            ? g.weight(prefix + ".bias", new long[] {out}, () -> weights.floats(prefix + ".bias"))
            : null;
    return g.linear(x, wt, b);
  }

  private static String activation(GraphBuilder g, String x, Activation act) {
    switch (act) {
      case QUICK_GELU:
        return g.mul(x, g.sigmoid(g.mul(x, g.scalar(1.702f))));
      case GELU:
        return g.gelu(x);
      case GELU_TANH:
        {
          String inner = g.add(x, g.mul(g.mul(g.mul(x, x), x), g.scalar(0.044715f)));
          String t = g.tanh(g.mul(inner, g.scalar((float) Math.sqrt(2 / Math.PI))));
          return g.mul(g.mul(x, g.scalar(0.5f)), g.add(t, g.scalar(1f)));
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
      throw new IllegalArgumentException(
          "ViT layer "
              + layer
              + " is not run (layers 0.."
              + (cfg.layersRun() - 1)
              + " for vision_feature_layer "
              + cfg.featureLayer()
              + ")");
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
      throw new IllegalArgumentException(
          "tensor "
              + name
              + " has shape "
              + java.util.Arrays.toString(actual)
              + ", config.json implies "
              + java.util.Arrays.toString(shape));
    }
  }
}
