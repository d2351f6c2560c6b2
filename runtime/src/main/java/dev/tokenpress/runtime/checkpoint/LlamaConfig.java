package dev.tokenpress.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * Dimensions of a Llama-architecture decoder (RMSNorm, RoPE, GQA, SwiGLU), read from a Hugging Face
 * {@code config.json} (or a LLaVA config's {@code text_config}) with the Hugging Face defaults for
 * absent keys.
 */
public record LlamaConfig(
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    int vocabSize,
    int maxPositionEmbeddings,
    double ropeTheta,
    double rmsNormEps,
    boolean tieWordEmbeddings,
    int bosTokenId,
    List<Integer> eosTokenIds) {

  public LlamaConfig {
    positive("hidden_size", hiddenSize);
    positive("intermediate_size", intermediateSize);
    positive("num_hidden_layers", numLayers);
    positive("num_attention_heads", numHeads);
    positive("num_key_value_heads", numKvHeads);
    positive("head_dim", headDim);
    positive("vocab_size", vocabSize);
    if (numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "num_attention_heads "
              + numHeads
              + " is not a multiple of num_key_value_heads "
              + numKvHeads);
    }
    if (headDim % 2 != 0) {
      throw new IllegalArgumentException("head_dim must be even for RoPE, found " + headDim);
    }
    if (!(ropeTheta > 0)) {
      throw new IllegalArgumentException("rope_theta must be > 0, found " + ropeTheta);
    }
    if (!(rmsNormEps > 0)) {
      throw new IllegalArgumentException("rms_norm_eps must be > 0, found " + rmsNormEps);
    }
    eosTokenIds = List.copyOf(eosTokenIds);
  }

  private static void positive(String field, int v) {
    if (v < 1) {
      throw new IllegalArgumentException(field + " must be >= 1, found " + v);
    }
  }

  /** Width of Q (all heads). */
  public int qWidth() {
    return numHeads * headDim;
  }

  /** Width of K and of V (all KV heads). */
  public int kvWidth() {
    return numKvHeads * headDim;
  }

  /**
   * Parses a Llama text config object. {@code fallbackVocab} is used when the object has no {@code
   * vocab_size} (older LLaVA configs keep it at the top level); pass 0 for none.
   */
  public static LlamaConfig fromJson(JsonNode c, int fallbackVocab) {
    String type = c.path("model_type").asText("llama");
    if (!type.equals("llama")) {
      throw new IllegalArgumentException(
          "text model_type " + type + " is not supported (llama only)");
    }
    String act = c.path("hidden_act").asText("silu");
    if (!act.equals("silu")) {
      throw new IllegalArgumentException("hidden_act " + act + " is not supported (silu only)");
    }
    JsonNode scaling = c.path("rope_scaling");
    if (!scaling.isMissingNode() && !scaling.isNull()) {
      String rt = scaling.path("rope_type").asText(scaling.path("type").asText("default"));
      if (!rt.equals("default")) {
        throw new IllegalArgumentException("rope_scaling type " + rt + " is not supported yet");
      }
    }
    int hidden = c.path("hidden_size").asInt(4096);
    int heads = c.path("num_attention_heads").asInt(32);
    int kvHeads =
        c.hasNonNull("num_key_value_heads") ? c.get("num_key_value_heads").asInt() : heads;
    int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
    int vocab =
        c.hasNonNull("vocab_size")
            ? c.get("vocab_size").asInt()
            : (fallbackVocab > 0 ? fallbackVocab : 32000);
    List<Integer> eos = new ArrayList<>();
    JsonNode eosNode = c.path("eos_token_id");
    if (eosNode.isArray()) {
      eosNode.forEach(n -> eos.add(n.asInt()));
    } else if (eosNode.isNumber()) {
      eos.add(eosNode.asInt());
    } else if (eosNode.isMissingNode()) {
      eos.add(2);
    }
    return new LlamaConfig(
        hidden,
        c.path("intermediate_size").asInt(11008),
        c.path("num_hidden_layers").asInt(32),
        heads,
        kvHeads,
        headDim,
        vocab,
        c.path("max_position_embeddings").asInt(2048),
        c.path("rope_theta").asDouble(10000.0),
        c.path("rms_norm_eps").asDouble(1e-6),
        c.path("tie_word_embeddings").asBoolean(false),
        c.hasNonNull("bos_token_id")
            ? c.get("bos_token_id").asInt()
            : (c.has("bos_token_id") ? -1 : 1),
        eos);
  }
}
