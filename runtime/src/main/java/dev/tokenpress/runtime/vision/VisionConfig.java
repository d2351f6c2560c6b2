package dev.tokenpress.runtime.vision;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.Serializable;
import java.util.Locale;

/**
 * The vision tower and projector of a LLaVA-1.5-family checkpoint: the {@code vision_config} (a
 * {@code clip_vision_model}) of its {@code config.json} plus the LLaVA fields that choose the
 * features and the projector.
 *
 * @param hiddenSize ViT width D
 * @param intermediateSize ViT MLP width
 * @param numLayers ViT layers in the checkpoint
 * @param numHeads attention heads (D must be a multiple)
 * @param imageSize input side (square)
 * @param patchSize patch side; {@code (imageSize / patchSize)^2} patches plus one CLS token
 * @param numChannels input channels (3)
 * @param layerNormEps epsilon of every ViT LayerNorm
 * @param hiddenAct ViT MLP activation
 * @param featureLayer {@code vision_feature_layer}: index into the hidden states (0 = embeddings
 *     after {@code pre_layrnorm}, i = after layer i, negative from the end: -1 = last layer)
 * @param selectStrategy {@code default} drops the CLS token, {@code full} keeps it
 * @param projectorAct activation between {@code linear_1} and {@code linear_2}
 * @param textHiddenSize LM width, the projector's output
 */
public record VisionConfig(
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int imageSize,
    int patchSize,
    int numChannels,
    double layerNormEps,
    Activation hiddenAct,
    int featureLayer,
    SelectStrategy selectStrategy,
    Activation projectorAct,
    int textHiddenSize)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Activations of CLIP/LLaVA checkpoints. */
  public enum Activation {
    /** {@code x * sigmoid(1.702 x)} (OpenAI CLIP). */
    QUICK_GELU,
    /** Exact GELU {@code 0.5 x (1 + erf(x / sqrt 2))} (torch {@code nn.GELU()}). */
    GELU,
    /** tanh-approximated GELU ({@code gelu_pytorch_tanh}, {@code gelu_new}). */
    GELU_TANH;

    static Activation parse(String hf) {
      switch (hf.toLowerCase(Locale.ROOT)) {
        case "quick_gelu":
          return QUICK_GELU;
        case "gelu":
          return GELU;
        case "gelu_new":
        case "gelu_pytorch_tanh":
        case "gelu_fast":
          return GELU_TANH;
        default:
          throw new IllegalArgumentException(
              "unsupported activation \"" + hf + "\" (quick_gelu, gelu, gelu_pytorch_tanh)");
      }
    }
  }

  /** {@code vision_feature_select_strategy}. */
  public enum SelectStrategy {
    DEFAULT,
    FULL
  }

  public VisionConfig {
    if (hiddenSize <= 0 || numHeads <= 0 || hiddenSize % numHeads != 0) {
      throw new IllegalArgumentException(
          "hiddenSize " + hiddenSize + " must be a positive multiple of numHeads " + numHeads);
    }
    if (patchSize <= 0 || imageSize % patchSize != 0) {
      throw new IllegalArgumentException(
          "imageSize " + imageSize + " must be a multiple of patchSize " + patchSize);
    }
    if (numLayers <= 0 || intermediateSize <= 0 || textHiddenSize <= 0 || numChannels <= 0) {
      throw new IllegalArgumentException(
          "sizes must be positive: layers="
              + numLayers
              + " intermediate="
              + intermediateSize
              + " text="
              + textHiddenSize
              + " channels="
              + numChannels);
    }
    int layersRun = featureLayer < 0 ? numLayers + 1 + featureLayer : featureLayer;
    if (layersRun < 0 || layersRun > numLayers) {
      throw new IllegalArgumentException(
          "vision_feature_layer " + featureLayer + " is out of range for " + numLayers + " layers");
    }
  }

  public int headDim() {
    return hiddenSize / numHeads;
  }

  /** Patches per side. */
  public int gridSize() {
    return imageSize / patchSize;
  }

  public int numPatches() {
    return gridSize() * gridSize();
  }

  /** Tokens entering the ViT: patches plus CLS. */
  public int numPositions() {
    return numPatches() + 1;
  }

  /** ViT layers that run: the feature layer's hidden state needs no later layer. */
  public int layersRun() {
    return featureLayer < 0 ? numLayers + 1 + featureLayer : featureLayer;
  }

  /** Visual tokens handed to the LM per image (before any compression). */
  public int numImageTokens() {
    return selectStrategy == SelectStrategy.DEFAULT ? numPatches() : numPositions();
  }

  /** Reads a Hugging Face LLaVA {@code config.json} tree. */
  public static VisionConfig fromLlavaConfig(JsonNode config) {
    JsonNode v = config.path("vision_config");
    JsonNode t = config.path("text_config");
    if (!v.isObject() || !t.isObject()) {
      throw new IllegalArgumentException(
          "config.json has no vision_config/text_config objects: not a LLaVA checkpoint");
    }
    String vType = v.path("model_type").asText("clip_vision_model");
    if (!vType.equals("clip_vision_model")) {
      throw new IllegalArgumentException(
          "vision_config.model_type " + vType + " is not supported (clip_vision_model only)");
    }
    JsonNode featureLayer = config.path("vision_feature_layer");
    if (featureLayer.isArray()) {
      throw new IllegalArgumentException(
          "a list of vision_feature_layer values is not supported: " + featureLayer);
    }
    return new VisionConfig(
        required(v, "hidden_size"),
        required(v, "intermediate_size"),
        required(v, "num_hidden_layers"),
        required(v, "num_attention_heads"),
        required(v, "image_size"),
        required(v, "patch_size"),
        v.path("num_channels").asInt(3),
        v.path("layer_norm_eps").asDouble(1e-5),
        Activation.parse(v.path("hidden_act").asText("quick_gelu")),
        featureLayer.asInt(-2),
        SelectStrategy.valueOf(
            config
                .path("vision_feature_select_strategy")
                .asText("default")
                .toUpperCase(Locale.ROOT)),
        Activation.parse(config.path("projector_hidden_act").asText("gelu")),
        required(t, "hidden_size"));
  }

  private static int required(JsonNode n, String field) {
    JsonNode f = n.get(field);
    if (f == null || !f.canConvertToInt()) {
      throw new IllegalArgumentException("config field " + field + " is missing or not an integer");
    }
    return f.asInt();
  }
}
