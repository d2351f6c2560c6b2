package dev.tokenpress.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The language-model half of a Hugging Face checkpoint: a plain Llama checkpoint ({@code
 * model_type: llama}) or the {@code text_config} of a LLaVA checkpoint, with the weight names
 * resolved for the layouts Hugging Face uses: {@code model.layers.*} / {@code lm_head.weight}
 * (Llama), {@code language_model.model.layers.*} / {@code language_model.lm_head.weight} (LLaVA
 * before transformers 4.52) and {@code model.language_model.layers.*} / {@code lm_head.weight}
 * (after).
 */
public final class LmCheckpoint implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final List<String> DECODER_PREFIXES =
      List.of("model.", "language_model.model.", "model.language_model.", "language_model.");
  private static final List<String> HEAD_NAMES =
      List.of("lm_head.weight", "language_model.lm_head.weight");

  private final Path dir;
  private final String family;
  private final JsonNode rawConfig;
  private final LlamaConfig config;
  private final TensorStore store;
  private final String decoderPrefix;
  private final String headName;

  private LmCheckpoint(
      Path dir,
      String family,
      JsonNode rawConfig,
      LlamaConfig config,
      TensorStore store,
      String decoderPrefix,
      String headName) {
    this.dir = dir;
    this.family = family;
    this.rawConfig = rawConfig;
    this.config = config;
    this.store = store;
    this.decoderPrefix = decoderPrefix;
    this.headName = headName;
  }

  public static LmCheckpoint open(Path dir) {
    Path cfgPath = dir.resolve("config.json");
    if (!Files.isRegularFile(cfgPath)) {
      throw new IllegalArgumentException("no config.json in checkpoint directory " + dir);
    }
    JsonNode raw;
    try {
      raw = JSON.readTree(cfgPath.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot parse " + cfgPath, e);
    }
    String type = raw.path("model_type").asText("");
    String family;
    JsonNode text;
    switch (type) {
      case "llama":
        family = "llama";
        text = raw;
        break;
      case "llava":
        family = "llava";
        text = raw.path("text_config");
        if (!text.isObject()) {
          text = JSON.createObjectNode();
        }
        if (!text.has("tie_word_embeddings") && raw.has("tie_word_embeddings")) {
          text =
              ((ObjectNode) text.deepCopy())
                  .set("tie_word_embeddings", raw.get("tie_word_embeddings"));
        }
        break;
      default:
        throw new IllegalArgumentException(
            "model_type '" + type + "' in " + cfgPath + " is not supported (llama, llava)");
    }
    LlamaConfig parsed = LlamaConfig.fromJson(text, raw.path("vocab_size").asInt(0));
    TensorStore store = TensorStore.open(dir);
    try {
      String prefix = null;
      for (String p : DECODER_PREFIXES) {
        if (store.contains(p + "embed_tokens.weight")
            && store.contains(p + "layers.0.self_attn.q_proj.weight")) {
          prefix = p;
          break;
        }
      }
      if (prefix == null) {
        throw new IllegalArgumentException(
            "no decoder weights found in "
                + dir
                + " (looked for "
                + DECODER_PREFIXES
                + " + embed_tokens.weight)");
      }
      String head = null;
      for (String h : HEAD_NAMES) {
        if (store.contains(h)) {
          head = h;
          break;
        }
      }
      if (head == null && !parsed.tieWordEmbeddings()) {
        throw new IllegalArgumentException(
            "no lm_head weight in " + dir + " and tie_word_embeddings is false");
      }
      long[] emb = store.shape(prefix + "embed_tokens.weight");
      if (emb.length != 2 || emb[1] != parsed.hiddenSize()) {
        throw new IllegalArgumentException(
            "embed_tokens.weight has shape "
                + java.util.Arrays.toString(emb)
                + ", expected [vocab, "
                + parsed.hiddenSize()
                + "]");
      }
      if (emb[0] != parsed.vocabSize()) {
        throw new IllegalArgumentException(
            "config vocab_size "
                + parsed.vocabSize()
                + " but embed_tokens.weight has "
                + emb[0]
                + " rows");
      }
      return new LmCheckpoint(dir, family, raw, parsed, store, prefix, head);
    } catch (RuntimeException e) {
      store.close();
      throw e;
    }
  }

  public Path directory() {
    return dir;
  }

  /** {@code llama} or {@code llava}. */
  public String family() {
    return family;
  }

  public JsonNode rawConfig() {
    return rawConfig;
  }

  public LlamaConfig config() {
    return config;
  }

  public TensorStore store() {
    return store;
  }

  /** Prefix of the decoder weights, e.g. {@code language_model.model.}. */
  public String decoderPrefix() {
    return decoderPrefix;
  }

  /** Whether the decoder has a weight with this name (relative to the decoder prefix). */
  public boolean has(String decoderName) {
    return store.contains(decoderPrefix + decoderName);
  }

  /**
   * A decoder weight by its name relative to the decoder prefix, e.g. {@code
   * layers.0.mlp.up_proj.weight}.
   */
  public float[] weight(String decoderName) {
    String full = decoderPrefix + decoderName;
    return store.floats(full);
  }

  public long[] shape(String decoderName) {
    return store.shape(decoderPrefix + decoderName);
  }

  /** The output projection [vocab, hidden]: {@code lm_head.weight}, or the embedding if tied. */
  public float[] lmHead() {
    return headName != null ? store.floats(headName) : weight("embed_tokens.weight");
  }

  @Override
  public void close() {
    store.close();
  }
}
