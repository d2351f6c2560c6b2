package dev.tokenpress.runtime.convert;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.runtime.checkpoint.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Converts a llama2.c "legacy" checkpoint ({@code run.c}'s format: 7 int32 header fields, then
 * float32 weights) into a Hugging Face Llama checkpoint directory: {@code config.json} and {@code
 * model.safetensors}.
 *
 * <p>RoPE convention: llama2.c rotates adjacent pairs {@code (2j, 2j+1)} of each head, Hugging Face
 * rotates {@code (j, j + headDim/2)}. Both use frequency {@code theta^(-2j/headDim)} for pair
 * {@code j}, so permuting the rows of wq and wk within each head — {@code hf[h*hd + p*hd/2 + j] =
 * llama2c[h*hd + 2j + p]} — makes the HF model compute exactly the same attention scores (the
 * inverse of the permutation in HF's {@code convert_llama_weights_to_hf}). V and all other weights
 * are unchanged. A shared classifier (positive vocab size in the header) becomes {@code
 * tie_word_embeddings: true}.
 *
 * <p>Usage: {@code Llama2cConverter --checkpoint stories260K.bin --out DIR [--rope-theta 10000]
 * [--norm-eps 1e-5]}. Files up to 2 GB (every released llama2.c model).
 */
public final class Llama2cConverter {
  /** The checkpoint header. A negative vocab size in the file means an unshared classifier. */
  public record Header(
      int dim,
      int hiddenDim,
      int numLayers,
      int numHeads,
      int numKvHeads,
      int vocabSize,
      int seqLen,
      boolean sharedClassifier) {
    public int headDim() {
      return dim / numHeads;
    }

    public int kvDim() {
      return dim * numKvHeads / numHeads;
    }
  }

  private Llama2cConverter() {}

  public static void main(String[] args) {
    Path ckpt = null;
    Path out = null;
    double theta = 10000.0;
    double eps = 1e-5;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) {
        usage("missing value after " + a);
      }
      switch (a) {
        case "--checkpoint":
          ckpt = Path.of(args[++i]);
          break;
        case "--out":
          out = Path.of(args[++i]);
          break;
        case "--rope-theta":
          theta = Double.parseDouble(args[++i]);
          break;
        case "--norm-eps":
          eps = Double.parseDouble(args[++i]);
          break;
        default:
          usage("unknown option " + a);
      }
    }
    if (ckpt == null || out == null) {
      usage("--checkpoint and --out are required");
    }
    Header h = convert(ckpt, out, theta, eps);
    System.out.println("converted " + ckpt + " -> " + out + " " + h);
  }

  private static void usage(String problem) {
    System.err.println("error: " + problem);
    System.err.println(
        "usage: Llama2cConverter --checkpoint MODEL.bin --out DIR [--rope-theta 10000] [--norm-eps 1e-5]");
    System.exit(2);
  }

  /** Converts with llama2.c's fixed RoPE theta 10000 and RMSNorm eps 1e-5. */
  public static Header convert(Path checkpoint, Path outDir) {
    return convert(checkpoint, outDir, 10000.0, 1e-5);
  }

  public static Header convert(Path checkpoint, Path outDir, double ropeTheta, double normEps) {
    FloatBuffer f;
    Header h;
    try (FileChannel ch = FileChannel.open(checkpoint, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 28) {
        throw new IllegalArgumentException(
            checkpoint + " is too small for a llama2.c checkpoint (" + size + " bytes)");
      }
      if (size > Integer.MAX_VALUE) {
        throw new IllegalArgumentException(checkpoint + " is over 2 GB; not supported");
      }
      ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
      while (b.hasRemaining()) {
        if (ch.read(b) < 0) {
          break;
        }
      }
      b.flip();
      int vocab = b.getInt(20);
      h =
          new Header(
              b.getInt(0),
              b.getInt(4),
              b.getInt(8),
              b.getInt(12),
              b.getInt(16),
              Math.abs(vocab),
              b.getInt(24),
              vocab > 0);
      b.position(28);
      f = b.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + checkpoint, e);
    }
    validate(h, f.remaining(), checkpoint);

    int d = h.dim();
    int l = h.numLayers();
    int kv = h.kvDim();
    int hid = h.hiddenDim();
    float[] emb = take(f, h.vocabSize() * d);
    float[] rmsAtt = take(f, l * d);
    float[] wq = take(f, l * d * d);
    float[] wk = take(f, l * kv * d);
    float[] wv = take(f, l * kv * d);
    float[] wo = take(f, l * d * d);
    float[] rmsFfn = take(f, l * d);
    float[] w1 = take(f, l * hid * d);
    float[] w2 = take(f, l * d * hid);
    float[] w3 = take(f, l * hid * d);
    float[] rmsFinal = take(f, d);
    f.position(f.position() + h.seqLen() * h.headDim()); // legacy freq_cis_real + freq_cis_imag
    float[] wcls = h.sharedClassifier() ? null : take(f, h.vocabSize() * d);

    SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
    w.add("model.embed_tokens.weight", emb, h.vocabSize(), d);
    for (int i = 0; i < l; i++) {
      String p = "model.layers." + i + ".";
      w.add(p + "input_layernorm.weight", slice(rmsAtt, i, d), d);
      w.add(
          p + "self_attn.q_proj.weight",
          permuteRope(slice(wq, i, d * d), h.numHeads(), h.headDim(), d),
          d,
          d);
      w.add(
          p + "self_attn.k_proj.weight",
          permuteRope(slice(wk, i, kv * d), h.numKvHeads(), h.headDim(), d),
          kv,
          d);
      w.add(p + "self_attn.v_proj.weight", slice(wv, i, kv * d), kv, d);
      w.add(p + "self_attn.o_proj.weight", slice(wo, i, d * d), d, d);
      w.add(p + "post_attention_layernorm.weight", slice(rmsFfn, i, d), d);
      w.add(p + "mlp.gate_proj.weight", slice(w1, i, hid * d), hid, d);
      w.add(p + "mlp.down_proj.weight", slice(w2, i, d * hid), d, hid);
      w.add(p + "mlp.up_proj.weight", slice(w3, i, hid * d), hid, d);
    }
    w.add("model.norm.weight", rmsFinal, d);
    if (wcls != null) {
      w.add("lm_head.weight", wcls, h.vocabSize(), d);
    }
    try {
      Files.createDirectories(outDir);
      w.write(outDir.resolve("model.safetensors"));
      ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ObjectNode c = json.createObjectNode();
      c.putArray("architectures").add("LlamaForCausalLM");
      c.put("model_type", "llama");
      c.put("hidden_size", d);
      c.put("intermediate_size", hid);
      c.put("num_hidden_layers", l);
      c.put("num_attention_heads", h.numHeads());
      c.put("num_key_value_heads", h.numKvHeads());
      c.put("head_dim", h.headDim());
      c.put("vocab_size", h.vocabSize());
      c.put("max_position_embeddings", h.seqLen());
      c.put("rms_norm_eps", normEps);
      c.put("rope_theta", ropeTheta);
      c.put("hidden_act", "silu");
      c.put("tie_word_embeddings", h.sharedClassifier());
      c.put("bos_token_id", 1);
      c.put("eos_token_id", 2);
      c.put("torch_dtype", "float32");
      c.put("attention_bias", false);
      json.writeValue(outDir.resolve("config.json").toFile(), c);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write converted checkpoint to " + outDir, e);
    }
    return h;
  }

  private static void validate(Header h, long floats, Path path) {
    if (h.dim() <= 0
        || h.numLayers() <= 0
        || h.numHeads() <= 0
        || h.numKvHeads() <= 0
        || h.vocabSize() <= 0
        || h.seqLen() <= 0
        || h.hiddenDim() <= 0
        || h.dim() % h.numHeads() != 0
        || h.numHeads() % h.numKvHeads() != 0
        || h.headDim() % 2 != 0) {
      throw new IllegalArgumentException("not a llama2.c checkpoint (header " + h + "): " + path);
    }
    long d = h.dim();
    long need =
        h.vocabSize() * d
            + h.numLayers() * (2 * d + 2 * d * d + 2L * h.kvDim() * d + 3L * h.hiddenDim() * d)
            + d
            + (long) h.seqLen() * h.headDim()
            + (h.sharedClassifier() ? 0 : h.vocabSize() * d);
    if (floats < need) {
      throw new IllegalArgumentException(
          path
              + " holds "
              + floats
              + " floats after the header, the header "
              + h
              + " needs "
              + need
              + ": truncated file?");
    }
  }

  private static float[] take(FloatBuffer f, int n) {
    float[] a = new float[n];
    f.get(a);
    return a;
  }

  private static float[] slice(float[] all, int layer, int n) {
    float[] a = new float[n];
    System.arraycopy(all, layer * n, a, 0, n);
    return a;
  }

  /**
   * Rows of a q/k projection {@code [heads*hd, in]} from interleaved-pair to half-split RoPE order.
   */
  static float[] permuteRope(float[] w, int heads, int headDim, int in) {
    float[] out = new float[w.length];
    int half = headDim / 2;
    for (int h = 0; h < heads; h++) {
      for (int p = 0; p < 2; p++) {
        for (int j = 0; j < half; j++) {
          int dst = h * headDim + p * half + j;
          int src = h * headDim + 2 * j + p;
          System.arraycopy(w, src * in, out, dst * in, in);
        }
      }
    }
    return out;
  }
}
