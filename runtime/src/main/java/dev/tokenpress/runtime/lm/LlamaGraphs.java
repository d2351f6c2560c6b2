package dev.tokenpress.runtime.lm;

import static dev.tokenpress.runtime.lm.LmGraphNames.ATTENTION_BIAS;
import static dev.tokenpress.runtime.lm.LmGraphNames.ATTN;
import static dev.tokenpress.runtime.lm.LmGraphNames.BIAS;
import static dev.tokenpress.runtime.lm.LmGraphNames.HIDDEN;
import static dev.tokenpress.runtime.lm.LmGraphNames.HIDDEN_OUT;
import static dev.tokenpress.runtime.lm.LmGraphNames.INPUTS_EMBEDS;
import static dev.tokenpress.runtime.lm.LmGraphNames.K;
import static dev.tokenpress.runtime.lm.LmGraphNames.LOGITS;
import static dev.tokenpress.runtime.lm.LmGraphNames.POSITION_IDS;
import static dev.tokenpress.runtime.lm.LmGraphNames.Q;
import static dev.tokenpress.runtime.lm.LmGraphNames.V;

import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import dev.tokenpress.operators.kernels.Rope;
import dev.tokenpress.runtime.checkpoint.LlamaConfig;
import dev.tokenpress.runtime.checkpoint.LmCheckpoint;
import dev.tokenpress.runtime.onnx.GraphBuilder;
import java.util.List;

/**
 * The ONNX graphs of a Llama-architecture decoder, split where the runtime needs access
 * (architecture §1), plus the conventional fused export for comparison.
 *
 * <p>All activations are {@code [batch, seq, width]} float32 with Q/K/V token-major ({@code width =
 * heads * headDim}); position ids are int64 {@code [batch, seq]}. Linear weights are stored
 * transposed ({@code [in, out]}) so every projection is one MatMul; q/k/v share one MatMul, as do
 * gate/up. RoPE follows the Hugging Face half-split convention with the inverse frequencies
 * computed in Java at build time.
 *
 * <p>Weight names are keys shared by all graphs of a bundle (see {@code ExternalWeights}).
 */
public final class LlamaGraphs {
  private final LlamaConfig c;
  private final LmCheckpoint ckpt;

  public LlamaGraphs(LmCheckpoint ckpt) {
    this.ckpt = ckpt;
    this.c = ckpt.config();
  }

  public LlamaConfig config() {
    return c;
  }

  // ---------------------------------------------------------------- graphs

  /**
   * Pre-attention of layer i: {@code hidden, position_ids -> q, k, v} (RMSNorm, projections, RoPE).
   */
  public GraphBuilder pre(int layer) {
    GraphBuilder g = new GraphBuilder("layer_" + layer + "_pre");
    String hidden = g.input(HIDDEN, DataType.FLOAT, "batch", "seq", c.hiddenSize());
    String pos = g.input(POSITION_IDS, DataType.INT64, "batch", "seq");
    String[] cs = ropeCosSin(g, pos);
    String[] qkv = preBlock(g, hidden, cs[0], cs[1], layer);
    outputQkv(g, qkv);
    return g;
  }

  /**
   * Post-attention of layer i: {@code attn, hidden -> hidden_out} (o_proj, residual, RMSNorm,
   * SwiGLU, residual).
   */
  public GraphBuilder post(int layer) {
    GraphBuilder g = new GraphBuilder("layer_" + layer + "_post");
    String attn = g.input(ATTN, DataType.FLOAT, "batch", "seq", c.qWidth());
    String hidden = g.input(HIDDEN, DataType.FLOAT, "batch", "seq", c.hiddenSize());
    g.output(
        postBlock(g, attn, hidden, layer),
        HIDDEN_OUT,
        DataType.FLOAT,
        "batch",
        "seq",
        c.hiddenSize());
    return g;
  }

  /**
   * Post of layer i fused with pre of layer i+1 (one call between two attentions): {@code attn,
   * hidden, position_ids -> hidden_out, q, k, v}.
   */
  public GraphBuilder mid(int layer) {
    if (layer + 1 >= c.numLayers()) {
      throw new IllegalArgumentException(
          "mid graph needs a next layer; layer " + layer + " of " + c.numLayers());
    }
    GraphBuilder g = new GraphBuilder("layer_" + layer + "_mid");
    String attn = g.input(ATTN, DataType.FLOAT, "batch", "seq", c.qWidth());
    String hidden = g.input(HIDDEN, DataType.FLOAT, "batch", "seq", c.hiddenSize());
    String pos = g.input(POSITION_IDS, DataType.INT64, "batch", "seq");
    String h = postBlock(g, attn, hidden, layer);
    String[] cs = ropeCosSin(g, pos);
    String[] qkv = preBlock(g, h, cs[0], cs[1], layer + 1);
    g.output(h, HIDDEN_OUT, DataType.FLOAT, "batch", "seq", c.hiddenSize());
    outputQkv(g, qkv);
    return g;
  }

  /** Final RMSNorm and LM head: {@code hidden -> logits}. */
  public GraphBuilder head() {
    GraphBuilder g = new GraphBuilder("head");
    String hidden = g.input(HIDDEN, DataType.FLOAT, "batch", "seq", c.hiddenSize());
    g.output(headBlock(g, hidden), LOGITS, DataType.FLOAT, "batch", "seq", c.vocabSize());
    return g;
  }

  /** Post of the last layer fused with the head: {@code attn, hidden -> logits}. */
  public GraphBuilder tail() {
    GraphBuilder g = new GraphBuilder("tail");
    String attn = g.input(ATTN, DataType.FLOAT, "batch", "seq", c.qWidth());
    String hidden = g.input(HIDDEN, DataType.FLOAT, "batch", "seq", c.hiddenSize());
    String h = postBlock(g, attn, hidden, c.numLayers() - 1);
    g.output(headBlock(g, h), LOGITS, DataType.FLOAT, "batch", "seq", c.vocabSize());
    return g;
  }

  /**
   * Generic prefill attention with GQA: {@code q [b,t,H*hd], k [b,s,kvH*hd], v [b,s,kvH*hd], bias
   * [b, 1 or H, t, s] -> attn [b,t,H*hd]}, softmax(q k^T / sqrt(hd) + bias) v. The bias carries the
   * causal mask and any operator's additive bias.
   */
  public GraphBuilder attention() {
    GraphBuilder g = new GraphBuilder("attention");
    String q = g.input(Q, DataType.FLOAT, "batch", "tq", c.qWidth());
    String k = g.input(K, DataType.FLOAT, "batch", "tk", c.kvWidth());
    String v = g.input(V, DataType.FLOAT, "batch", "tk", c.kvWidth());
    String bias = g.input(BIAS, DataType.FLOAT, "batch", "bias_heads", "tq", "tk");
    String out = attentionCore(g, q, toHeads(g, k), toHeads(g, v), bias);
    g.output(out, ATTN, DataType.FLOAT, "batch", "tq", c.qWidth());
    return g;
  }

  /**
   * The conventional single-graph decoder with KV-cache inputs and outputs (for comparison): {@code
   * inputs_embeds [b,t,D], position_ids [b,t], attention_bias [b,1,t,p+t], past_key.i /
   * past_value.i [b,kvH,p,hd] -> logits [b,t,V], present_key.i / present_value.i [b,kvH,p+t,hd]}.
   */
  public GraphBuilder fused() {
    GraphBuilder g = new GraphBuilder("decoder_fused");
    String x = g.input(INPUTS_EMBEDS, DataType.FLOAT, "batch", "seq", c.hiddenSize());
    String pos = g.input(POSITION_IDS, DataType.INT64, "batch", "seq");
    String bias = g.input(ATTENTION_BIAS, DataType.FLOAT, "batch", 1, "seq", "total");
    String[] cs = ropeCosSin(g, pos);
    String h = x;
    for (int l = 0; l < c.numLayers(); l++) {
      String pk =
          g.input(
              LmGraphNames.pastKey(l),
              DataType.FLOAT,
              "batch",
              c.numKvHeads(),
              "past",
              c.headDim());
      String pv =
          g.input(
              LmGraphNames.pastValue(l),
              DataType.FLOAT,
              "batch",
              c.numKvHeads(),
              "past",
              c.headDim());
      String[] qkv = preBlock(g, h, cs[0], cs[1], l);
      String kAll = g.concat(2, pk, toHeads(g, qkv[1]));
      String vAll = g.concat(2, pv, toHeads(g, qkv[2]));
      g.output(
          kAll,
          LmGraphNames.presentKey(l),
          DataType.FLOAT,
          "batch",
          c.numKvHeads(),
          "total",
          c.headDim());
      g.output(
          vAll,
          LmGraphNames.presentValue(l),
          DataType.FLOAT,
          "batch",
          c.numKvHeads(),
          "total",
          c.headDim());
      String attn = attentionCore(g, qkv[0], kAll, vAll, bias);
      h = postBlock(g, attn, h, l);
    }
    g.output(headBlock(g, h), LOGITS, DataType.FLOAT, "batch", "seq", c.vocabSize());
    return g;
  }

  // ---------------------------------------------------------------- blocks

  private void outputQkv(GraphBuilder g, String[] qkv) {
    g.output(qkv[0], Q, DataType.FLOAT, "batch", "seq", c.qWidth());
    g.output(qkv[1], K, DataType.FLOAT, "batch", "seq", c.kvWidth());
    g.output(qkv[2], V, DataType.FLOAT, "batch", "seq", c.kvWidth());
  }

  /**
   * cos and sin of {@code position * invFreq}, duplicated to the head dim: {@code [b, s, 1, hd]}
   * each.
   */
  private String[] ropeCosSin(GraphBuilder g, String positionIds) {
    int half = c.headDim() / 2;
    String inv =
        g.weight(
            "rope.inv_freq",
            new long[] {half},
            () -> Rope.inverseFrequencies(c.headDim(), c.ropeTheta()));
    String freqs = g.mul(g.unsqueeze(g.cast(positionIds, DataType.FLOAT), 2), inv);
    String emb = g.concat(-1, freqs, freqs);
    return new String[] {g.unsqueeze(g.cos(emb), 2), g.unsqueeze(g.sin(emb), 2)};
  }

  /** {@code [q, k, v]} of a layer, q and k rotated. */
  private String[] preBlock(GraphBuilder g, String hidden, String cos, String sin, int l) {
    int qW = c.qWidth();
    int kvW = c.kvWidth();
    int hd = c.headDim();
    String x =
        g.rmsNorm(hidden, norm(g, "layers." + l + ".input_layernorm.weight"), c.rmsNormEps());
    String qkv = g.linear(x, qkvWeight(g, l), qkvBias(g, l));
    String[] qkAndV = g.split(qkv, -1, qW + kvW, kvW);
    String heads = g.reshape(qkAndV[0], 0, 0, c.numHeads() + c.numKvHeads(), hd);
    String[] halves = g.split(heads, -1, hd / 2, hd / 2);
    String rotated = g.concat(-1, g.neg(halves[1]), halves[0]);
    String roped = g.add(g.mul(heads, cos), g.mul(rotated, sin));
    String[] qk = g.split(g.reshape(roped, 0, 0, qW + kvW), -1, qW, kvW);
    return new String[] {qk[0], qk[1], qkAndV[1]};
  }

  private String postBlock(GraphBuilder g, String attn, String hidden, int l) {
    String p = "layers." + l + ".";
    String o =
        g.linear(
            attn,
            transposed(g, p + "self_attn.o_proj.weight", c.hiddenSize(), c.qWidth()),
            optionalBias(g, p + "self_attn.o_proj.bias", c.hiddenSize()));
    String h = g.add(hidden, o);
    String x = g.rmsNorm(h, norm(g, p + "post_attention_layernorm.weight"), c.rmsNormEps());
    String gu = g.matMul(x, gateUpWeight(g, l));
    String[] parts = g.split(gu, -1, c.intermediateSize(), c.intermediateSize());
    String act = g.mul(g.silu(parts[0]), parts[1]);
    String down =
        g.matMul(
            act, transposed(g, p + "mlp.down_proj.weight", c.hiddenSize(), c.intermediateSize()));
    return g.add(h, down);
  }

  private String headBlock(GraphBuilder g, String hidden) {
    String x = g.rmsNorm(hidden, norm(g, "norm.weight"), c.rmsNormEps());
    String w =
        g.weight(
            "lm_head.weight_t",
            new long[] {c.hiddenSize(), c.vocabSize()},
            () -> transpose(ckpt.lmHead(), c.vocabSize(), c.hiddenSize()));
    return g.matMul(x, w);
  }

  /** {@code [b, s, kvH*hd] -> [b, kvH, s, hd]}. */
  private String toHeads(GraphBuilder g, String x) {
    return g.transpose(g.reshape(x, 0, 0, c.numKvHeads(), c.headDim()), 0, 2, 1, 3);
  }

  /**
   * softmax(q k^T * scale + bias) v with k, v as {@code [b, kvH, s, hd]}; returns {@code [b, t,
   * H*hd]}.
   */
  private String attentionCore(
      GraphBuilder g, String q, String kHeads, String vHeads, String bias) {
    int h = c.numHeads();
    int hd = c.headDim();
    int group = c.numHeads() / c.numKvHeads();
    String qh = g.transpose(g.reshape(q, 0, 0, h, hd), 0, 2, 1, 3);
    String k = kHeads;
    String v = vHeads;
    if (group > 1) {
      k = g.reshape(g.expand(g.unsqueeze(kHeads, 2), 1, 1, group, 1, 1), 0, h, -1, hd);
      v = g.reshape(g.expand(g.unsqueeze(vHeads, 2), 1, 1, group, 1, 1), 0, h, -1, hd);
    }
    String scores =
        g.mul(g.matMul(qh, g.transpose(k, 0, 1, 3, 2)), g.scalar((float) (1.0 / Math.sqrt(hd))));
    String probs = g.softmax(g.add(scores, bias), -1);
    String out = g.matMul(probs, v);
    return g.reshape(g.transpose(out, 0, 2, 1, 3), 0, 0, h * hd);
  }

  // ---------------------------------------------------------------- weights

  private String norm(GraphBuilder g, String name) {
    return g.weight(name, new long[] {c.hiddenSize()}, () -> ckpt.weight(name));
  }

  private String qkvWeight(GraphBuilder g, int l) {
    String p = "layers." + l + ".self_attn.";
    int out = c.qWidth() + 2 * c.kvWidth();
    return g.weight(
        "layers." + l + ".qkv.weight_t",
        new long[] {c.hiddenSize(), out},
        () ->
            transposeConcat(
                List.of(
                    ckpt.weight(p + "q_proj.weight"),
                    ckpt.weight(p + "k_proj.weight"),
                    ckpt.weight(p + "v_proj.weight")),
                new int[] {c.qWidth(), c.kvWidth(), c.kvWidth()},
                c.hiddenSize()));
  }

  private String qkvBias(GraphBuilder g, int l) {
    String p = "layers." + l + ".self_attn.";
    if (!ckpt.has(p + "q_proj.bias")) {
      return null;
    }
    int out = c.qWidth() + 2 * c.kvWidth();
    return g.weight(
        "layers." + l + ".qkv.bias",
        new long[] {out},
        () -> {
          float[] b = new float[out];
          System.arraycopy(ckpt.weight(p + "q_proj.bias"), 0, b, 0, c.qWidth());
          System.arraycopy(ckpt.weight(p + "k_proj.bias"), 0, b, c.qWidth(), c.kvWidth());
          System.arraycopy(
              ckpt.weight(p + "v_proj.bias"), 0, b, c.qWidth() + c.kvWidth(), c.kvWidth());
          return b;
        });
  }

  private String optionalBias(GraphBuilder g, String name, int n) {
    return ckpt.has(name) ? g.weight(name, new long[] {n}, () -> ckpt.weight(name)) : null;
  }

  private String gateUpWeight(GraphBuilder g, int l) {
    String p = "layers." + l + ".mlp.";
    int i = c.intermediateSize();
    return g.weight(
        "layers." + l + ".gate_up.weight_t",
        new long[] {c.hiddenSize(), 2L * i},
        () ->
            transposeConcat(
                List.of(ckpt.weight(p + "gate_proj.weight"), ckpt.weight(p + "up_proj.weight")),
                new int[] {i, i},
                c.hiddenSize()));
  }

  /** A Linear weight {@code [out, in]} stored as {@code [in, out]}. */
  private String transposed(GraphBuilder g, String name, int out, int in) {
    return g.weight(name + "_t", new long[] {in, out}, () -> transpose(ckpt.weight(name), out, in));
  }

  /** {@code [rows, cols] -> [cols, rows]}. */
  static float[] transpose(float[] w, int rows, int cols) {
    if (w.length != rows * cols) {
      throw new IllegalArgumentException(
          "weight has " + w.length + " values, expected " + rows + "x" + cols);
    }
    float[] t = new float[w.length];
    for (int r = 0; r < rows; r++) {
      int ro = r * cols;
      for (int col = 0; col < cols; col++) {
        t[col * rows + r] = w[ro + col];
      }
    }
    return t;
  }

  /** Stacks {@code [out_k, in]} matrices along out and transposes: {@code [in, sum out_k]}. */
  static float[] transposeConcat(List<float[]> ws, int[] outs, int in) {
    int total = 0;
    for (int o : outs) {
      total += o;
    }
    float[] t = new float[in * total];
    int colOff = 0;
    for (int m = 0; m < ws.size(); m++) {
      float[] w = ws.get(m);
      int out = outs[m];
      if (w.length != out * in) {
        throw new IllegalArgumentException(
            "projection " + m + " has " + w.length + " values, expected " + out + "x" + in);
      }
      for (int r = 0; r < out; r++) {
        int ro = r * in;
        for (int col = 0; col < in; col++) {
          t[col * total + colOff + r] = w[ro + col];
        }
      }
      colOff += out;
    }
    return t;
  }
}
