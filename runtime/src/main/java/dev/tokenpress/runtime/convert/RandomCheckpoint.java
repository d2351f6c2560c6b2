package dev.tokenpress.runtime.convert;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.runtime.checkpoint.DType;
import dev.tokenpress.runtime.checkpoint.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Writes a random-weight Hugging Face checkpoint of a given architecture, as the public
 * "tiny-random" test checkpoints are made: a Llama decoder alone, or a LLaVA-1.5 model (CLIP ViT,
 * 2-layer GELU projector, Llama) with the real model's dimensions and as few LM layers as wanted.
 * Timings of such a checkpoint are those of the real model (same shapes, same graphs); its answers
 * are noise. Deterministic: every tensor draws from its own generator seeded by the seed and the
 * tensor's name, so the same spec and seed give the same bytes.
 *
 * <p>Weights: matrices and embeddings {@code N(0, std)}, biases 0, norm weights {@code 1 +
 * normJitter·N(0, 1)}.
 */
public final class RandomCheckpoint {
  /** Tokenizer side files copied from {@code tokenizerDir} when present. */
  static final List<String> TOKENIZER_FILES =
      List.of(
          "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model");

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The CLIP vision tower of a LLaVA checkpoint.
   *
   * @param hidden ViT width
   * @param intermediate ViT MLP width
   * @param layers ViT layers (all written; LLaVA runs them up to {@code vision_feature_layer} -2)
   * @param heads attention heads
   * @param imageSize input side in pixels
   * @param patchSize patch side in pixels
   */
  public record Vision(
      int hidden, int intermediate, int layers, int heads, int imageSize, int patchSize) {
    public Vision {
      if (hidden < 1 || intermediate < 1 || layers < 2 || heads < 1 || hidden % heads != 0) {
        throw new IllegalArgumentException(
            "vision dims: hidden "
                + hidden
                + " (a multiple of heads "
                + heads
                + "), intermediate "
                + intermediate
                + ", layers "
                + layers
                + " (>= 2) must be positive");
      }
      if (patchSize < 1 || imageSize % patchSize != 0) {
        throw new IllegalArgumentException(
            "vision image_size " + imageSize + " must be a multiple of patch_size " + patchSize);
      }
    }

    int numPositions() {
      int g = imageSize / patchSize;
      return g * g + 1;
    }
  }

  /**
   * What to write.
   *
   * @param vision the vision tower (LLaVA layout), or null for a Llama decoder alone
   * @param llavaLayout LLaVA config ({@code text_config}) and {@code language_model.} weight names;
   *     implied by a vision tower
   * @param hidden LM width
   * @param intermediate LM MLP width
   * @param layers LM layers
   * @param heads LM query heads
   * @param kvHeads LM KV heads
   * @param vocab vocabulary size
   * @param maxPositions {@code max_position_embeddings}
   * @param tied {@code tie_word_embeddings} (no {@code lm_head} tensor)
   * @param imageTokenIndex {@code image_token_index} of a LLaVA config
   * @param std standard deviation of matrices and embeddings
   * @param normJitter standard deviation of norm weights around 1
   */
  public record Spec(
      Vision vision,
      boolean llavaLayout,
      int hidden,
      int intermediate,
      int layers,
      int heads,
      int kvHeads,
      int vocab,
      int maxPositions,
      boolean tied,
      int imageTokenIndex,
      double std,
      double normJitter) {
    public Spec {
      if (hidden < 1
          || intermediate < 1
          || layers < 1
          || heads < 1
          || kvHeads < 1
          || vocab < 1
          || maxPositions < 1) {
        throw new IllegalArgumentException(
            "LM dims must be positive: hidden "
                + hidden
                + ", intermediate "
                + intermediate
                + ", layers "
                + layers
                + ", heads "
                + heads
                + ", kv heads "
                + kvHeads
                + ", vocab "
                + vocab
                + ", max positions "
                + maxPositions);
      }
      if (hidden % heads != 0 || heads % kvHeads != 0 || (hidden / heads) % 2 != 0) {
        throw new IllegalArgumentException(
            "LM hidden "
                + hidden
                + " must be a multiple of heads "
                + heads
                + " with an even head dim, and heads a multiple of kv heads "
                + kvHeads);
      }
      if (!(std > 0) || !(normJitter >= 0)) {
        throw new IllegalArgumentException(
            "std must be > 0 (found " + std + ") and normJitter >= 0 (found " + normJitter + ")");
      }
      if (vision != null) {
        llavaLayout = true;
        if (imageTokenIndex < 0 || imageTokenIndex >= vocab) {
          throw new IllegalArgumentException(
              "image_token_index " + imageTokenIndex + " must be in [0, " + vocab + ")");
        }
      }
    }

    /** The same model with {@code n} LM layers. */
    public Spec withLayers(int n) {
      return new Spec(
          vision,
          llavaLayout,
          hidden,
          intermediate,
          n,
          heads,
          kvHeads,
          vocab,
          maxPositions,
          tied,
          imageTokenIndex,
          std,
          normJitter);
    }

    public Spec withImageTokenIndex(int id) {
      return new Spec(
          vision,
          llavaLayout,
          hidden,
          intermediate,
          layers,
          heads,
          kvHeads,
          vocab,
          maxPositions,
          tied,
          id,
          std,
          normJitter);
    }

    /** Parameters written (every tensor of the checkpoint). */
    public long parameters() {
      long d = hidden;
      long hd = hidden / heads;
      long kv = kvHeads * hd;
      long layer = 2 * d + d * d * 2 + 2 * d * kv + 3 * d * intermediate;
      long p = (long) vocab * d * (tied ? 1 : 2) + layers * layer + d;
      if (vision != null) {
        long v = vision.hidden();
        long vl =
            4 * (v * v + v) + 2 * v * vision.intermediate() + vision.intermediate() + v + 4 * v;
        p +=
            3L * vision.patchSize() * vision.patchSize() * v
                + v
                + (long) vision.numPositions() * v
                + 4 * v
                + vision.layers() * vl;
        p += v * d + d + d * d + d;
      }
      return p;
    }
  }

  /** Named presets of {@code tokenpress model random --preset}. */
  public enum Preset {
    /**
     * LLaVA-1.5-7B ({@code llava-hf/llava-1.5-7b-hf}): CLIP ViT-L/14 at 336 px (24 layers, width
     * 1024, 16 heads, MLP 4096, 577 tokens), projector 1024→4096→4096, Llama width 4096, 32 heads,
     * MLP 11008, vocabulary 32000; 4 LM layers unless changed (the real model has 32).
     */
    LLAVA_1_5_7B(
        "llava-1.5-7b",
        new Spec(
            new Vision(1024, 4096, 24, 16, 336, 14),
            true,
            4096,
            11008,
            4,
            32,
            32,
            32000,
            4096,
            false,
            32000 - 1,
            0.02,
            0)),
    /**
     * The same architecture in miniature (ViT 32 wide, 3 layers, 4×4 patches; LM 64 wide), for
     * tests.
     */
    TINY(
        "tiny",
        new Spec(
            new Vision(32, 64, 3, 2, 56, 14), true, 64, 96, 2, 4, 2, 64, 256, false, 63, 0.02, 0));

    private final String id;
    private final Spec spec;

    Preset(String id, Spec spec) {
      this.id = id;
      this.spec = spec;
    }

    public String id() {
      return id;
    }

    public Spec spec() {
      return spec;
    }

    /** The preset named {@code id}; the error lists the names. */
    public static Preset of(String id) {
      for (Preset p : values()) {
        if (p.id.equals(id)) {
          return p;
        }
      }
      StringBuilder names = new StringBuilder();
      for (Preset p : values()) {
        names.append(names.length() == 0 ? "" : ", ").append(p.id);
      }
      throw new IllegalArgumentException("--preset " + id + " is unknown; presets: " + names);
    }
  }

  private RandomCheckpoint() {}

  /**
   * Writes {@code config.json} and {@code model.safetensors} (and, for a vision model, {@code
   * preprocessor_config.json}: CLIP at the ViT's size, bicubic) into {@code dir}; copies the
   * tokenizer files of {@code tokenizerDir} when it is not null, and then takes {@code
   * image_token_index} from its {@code <image>} token.
   *
   * @return the spec written (with the tokenizer's image token)
   */
  public static Spec write(Spec spec, Path dir, long seed, DType dtype, Path tokenizerDir) {
    try {
      Files.createDirectories(dir);
      if (tokenizerDir != null) {
        Path tj = tokenizerDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(tj)) {
          throw new IllegalArgumentException(
              "--tokenizer " + tokenizerDir + " has no tokenizer.json");
        }
        for (String f : TOKENIZER_FILES) {
          Path p = tokenizerDir.resolve(f);
          if (Files.isRegularFile(p)) {
            Files.copy(p, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
          }
        }
        if (spec.vision() != null) {
          spec = spec.withImageTokenIndex(imageToken(tj, spec.vocab()));
        }
      }
      weights(spec, seed, dtype).write(dir.resolve("model.safetensors"));
      JSON.writerWithDefaultPrettyPrinter()
          .writeValue(dir.resolve("config.json").toFile(), config(spec, dtype));
      if (spec.vision() != null) {
        JSON.writerWithDefaultPrettyPrinter()
            .writeValue(
                dir.resolve("preprocessor_config.json").toFile(), preprocessor(spec.vision()));
      }
      return spec;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the checkpoint into " + dir, e);
    }
  }

  /**
   * The id of {@code <image>} among the tokenizer's added tokens, checked against the vocabulary.
   */
  static int imageToken(Path tokenizerJson, int vocab) throws IOException {
    JsonNode root = JSON.readTree(Files.readString(tokenizerJson, StandardCharsets.UTF_8));
    for (JsonNode t : root.path("added_tokens")) {
      if ("<image>".equals(t.path("content").asText())) {
        int id = t.path("id").asInt(-1);
        if (id < 0 || id >= vocab) {
          throw new IllegalArgumentException(
              "the tokenizer's <image> id " + id + " is outside the vocabulary [0, " + vocab + ")");
        }
        return id;
      }
    }
    throw new IllegalArgumentException(
        tokenizerJson + " has no <image> added token; a LLaVA checkpoint needs one");
  }

  /** The tensors of {@code spec}, each computed when written. */
  static SafetensorsWriter weights(Spec s, long seed, DType dtype) {
    SafetensorsWriter w = new SafetensorsWriter(dtype);
    String dec = s.llavaLayout() ? "language_model.model." : "model.";
    int d = s.hidden();
    int kv = s.kvHeads() * (d / s.heads());
    matrix(w, seed, dec + "embed_tokens.weight", s.std(), s.vocab(), d);
    for (int l = 0; l < s.layers(); l++) {
      String p = dec + "layers." + l + ".";
      norm(w, seed, p + "input_layernorm.weight", s.normJitter(), d);
      matrix(w, seed, p + "self_attn.q_proj.weight", s.std(), d, d);
      matrix(w, seed, p + "self_attn.k_proj.weight", s.std(), kv, d);
      matrix(w, seed, p + "self_attn.v_proj.weight", s.std(), kv, d);
      matrix(w, seed, p + "self_attn.o_proj.weight", s.std(), d, d);
      norm(w, seed, p + "post_attention_layernorm.weight", s.normJitter(), d);
      matrix(w, seed, p + "mlp.gate_proj.weight", s.std(), s.intermediate(), d);
      matrix(w, seed, p + "mlp.up_proj.weight", s.std(), s.intermediate(), d);
      matrix(w, seed, p + "mlp.down_proj.weight", s.std(), d, s.intermediate());
    }
    norm(w, seed, dec + "norm.weight", s.normJitter(), d);
    if (!s.tied()) {
      matrix(
          w,
          seed,
          (s.llavaLayout() ? "language_model." : "") + "lm_head.weight",
          s.std(),
          s.vocab(),
          d);
    }
    Vision v = s.vision();
    if (v != null) {
      String vm = "vision_tower.vision_model.";
      int vd = v.hidden();
      matrix(w, seed, vm + "embeddings.class_embedding", s.std(), vd);
      matrix(
          w,
          seed,
          vm + "embeddings.patch_embedding.weight",
          s.std(),
          vd,
          3,
          v.patchSize(),
          v.patchSize());
      matrix(w, seed, vm + "embeddings.position_embedding.weight", s.std(), v.numPositions(), vd);
      layerNorm(w, seed, vm + "pre_layrnorm", s.normJitter(), vd);
      for (int l = 0; l < v.layers(); l++) {
        String p = vm + "encoder.layers." + l + ".";
        layerNorm(w, seed, p + "layer_norm1", s.normJitter(), vd);
        for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
          linear(w, seed, p + "self_attn." + proj, s.std(), vd, vd);
        }
        layerNorm(w, seed, p + "layer_norm2", s.normJitter(), vd);
        linear(w, seed, p + "mlp.fc1", s.std(), v.intermediate(), vd);
        linear(w, seed, p + "mlp.fc2", s.std(), vd, v.intermediate());
      }
      layerNorm(w, seed, vm + "post_layernorm", s.normJitter(), vd);
      linear(w, seed, "multi_modal_projector.linear_1", s.std(), d, vd);
      linear(w, seed, "multi_modal_projector.linear_2", s.std(), d, d);
    }
    return w;
  }

  /** The Hugging Face {@code config.json} of {@code s}. */
  static ObjectNode config(Spec s, DType dtype) {
    String torchDtype =
        dtype == DType.F32 ? "float32" : dtype == DType.F16 ? "float16" : "bfloat16";
    ObjectNode text = JSON.createObjectNode();
    text.put("model_type", "llama");
    text.putArray("architectures").add("LlamaForCausalLM");
    text.put("hidden_size", s.hidden());
    text.put("intermediate_size", s.intermediate());
    text.put("num_hidden_layers", s.layers());
    text.put("num_attention_heads", s.heads());
    text.put("num_key_value_heads", s.kvHeads());
    text.put("head_dim", s.hidden() / s.heads());
    text.put("vocab_size", s.vocab());
    text.put("max_position_embeddings", s.maxPositions());
    text.put("rms_norm_eps", 1e-5);
    text.put("rope_theta", 10000.0);
    text.putNull("rope_scaling");
    text.put("hidden_act", "silu");
    text.put("attention_bias", false);
    text.put("mlp_bias", false);
    text.put("tie_word_embeddings", s.tied());
    text.put("bos_token_id", 1);
    text.put("eos_token_id", 2);
    text.put("torch_dtype", torchDtype);
    if (!s.llavaLayout()) {
      return text;
    }
    ObjectNode cfg = JSON.createObjectNode();
    cfg.putArray("architectures").add("LlavaForConditionalGeneration");
    cfg.put("model_type", "llava");
    cfg.put("tie_word_embeddings", s.tied());
    cfg.put("torch_dtype", torchDtype);
    if (s.imageTokenIndex() >= 0 && s.imageTokenIndex() < s.vocab()) {
      cfg.put("image_token_index", s.imageTokenIndex());
    }
    Vision v = s.vision();
    if (v != null) {
      cfg.put("image_seq_length", v.numPositions() - 1);
      cfg.put("projector_hidden_act", "gelu");
      cfg.put("multimodal_projector_bias", true);
      cfg.put("vision_feature_layer", -2);
      cfg.put("vision_feature_select_strategy", "default");
      ObjectNode vc = cfg.putObject("vision_config");
      vc.put("model_type", "clip_vision_model");
      vc.put("hidden_size", v.hidden());
      vc.put("intermediate_size", v.intermediate());
      vc.put("num_hidden_layers", v.layers());
      vc.put("num_attention_heads", v.heads());
      vc.put("image_size", v.imageSize());
      vc.put("patch_size", v.patchSize());
      vc.put("num_channels", 3);
      vc.put("hidden_act", "quick_gelu");
      vc.put("layer_norm_eps", 1e-5);
      vc.put("attention_dropout", 0.0);
    }
    cfg.set("text_config", text);
    return cfg;
  }

  /** CLIPImageProcessor at the ViT's size: shortest edge, centre crop, bicubic, CLIP mean/std. */
  static ObjectNode preprocessor(Vision v) {
    ObjectNode p = JSON.createObjectNode();
    p.put("image_processor_type", "CLIPImageProcessor");
    p.put("processor_class", "LlavaProcessor");
    p.put("do_resize", true);
    p.putObject("size").put("shortest_edge", v.imageSize());
    p.put("resample", 3);
    p.put("do_center_crop", true);
    p.putObject("crop_size").put("height", v.imageSize()).put("width", v.imageSize());
    p.put("do_rescale", true);
    p.put("rescale_factor", 1 / 255.0);
    p.put("do_normalize", true);
    p.putArray("image_mean").add(0.48145466).add(0.4578275).add(0.40821073);
    p.putArray("image_std").add(0.26862954).add(0.26130258).add(0.27577711);
    p.put("do_convert_rgb", true);
    p.put("patch_size", v.patchSize());
    p.put("vision_feature_select_strategy", "default");
    return p;
  }

  private static void matrix(
      SafetensorsWriter w, long seed, String name, double std, long... shape) {
    w.add(name, () -> gaussian(rng(seed, name), count(shape), 0, std), shape);
  }

  private static void norm(SafetensorsWriter w, long seed, String name, double jitter, int n) {
    w.add(name, () -> gaussian(rng(seed, name), n, 1, jitter), n);
  }

  private static void layerNorm(
      SafetensorsWriter w, long seed, String prefix, double jitter, int n) {
    norm(w, seed, prefix + ".weight", jitter, n);
    w.add(prefix + ".bias", () -> new float[n], n);
  }

  private static void linear(
      SafetensorsWriter w, long seed, String prefix, double std, int out, int in) {
    matrix(w, seed, prefix + ".weight", std, out, in);
    w.add(prefix + ".bias", () -> new float[out], out);
  }

  private static int count(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return Math.toIntExact(n);
  }

  /** One generator per tensor, from the seed and the tensor's name only. */
  private static SplittableRandom rng(long seed, String name) {
    long h = 1125899906842597L;
    for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
      h = 31 * h + b;
    }
    return new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ h);
  }

  /** {@code n} values {@code mean + std·N(0, 1)} (Box–Muller, both outputs used). */
  static float[] gaussian(SplittableRandom rnd, int n, double mean, double std) {
    float[] a = new float[n];
    if (std == 0) {
      java.util.Arrays.fill(a, (float) mean);
      return a;
    }
    for (int i = 0; i < n; i += 2) {
      double u = 1 - rnd.nextDouble();
      double r = Math.sqrt(-2 * Math.log(u)) * std;
      double t = 2 * Math.PI * rnd.nextDouble();
      a[i] = (float) (mean + r * Math.cos(t));
      if (i + 1 < n) {
        a[i + 1] = (float) (mean + r * Math.sin(t));
      }
    }
    return a;
  }

  /** Parses {@code f16}, {@code bf16} or {@code f32}. */
  public static DType dtype(String s) {
    switch (s.toLowerCase(Locale.ROOT)) {
      case "f16":
      case "fp16":
        return DType.F16;
      case "bf16":
        return DType.BF16;
      case "f32":
      case "fp32":
        return DType.F32;
      default:
        throw new IllegalArgumentException("--dtype " + s + " is unknown; use f16, bf16 or f32");
    }
  }
}
