package dev.tokenpress.runtime.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Prompt text → token ids with one image placeholder, the way the checkpoint's processor does it:
 * the user text goes into a one-turn conversation (one image part, then the text), the {@code
 * chat_template} renders it with {@code add_generation_prompt=True}, and the tokenizer encodes the
 * result with its special tokens (skipped when the rendered text already starts with the BOS token,
 * so BOS is never doubled).
 *
 * <p>Without a {@code chat_template} the LLaVA-1.5 format {@code "USER: <image>\n{prompt}
 * ASSISTANT:"} is used. Thread-safe.
 */
public final class PromptEncoder implements AutoCloseable {
  /** The LLaVA-1.5 conversation format, used when the checkpoint has no chat template. */
  public static final String LLAVA_15_FORMAT = "USER: <image>\n{prompt} ASSISTANT:";

  private final Tokenizer tokenizer;
  private final ChatTemplate template;
  private final String imageToken;
  private final int imageTokenId;
  private final int context;
  private final int eosTokenId;
  private final String bosToken;
  private final Map<String, Object> templateVars;

  public PromptEncoder(
      Tokenizer tokenizer,
      ChatTemplate template,
      String imageToken,
      int imageTokenId,
      int context,
      int eosTokenId,
      String bosToken,
      String eosToken) {
    if (tokenizer.tokenId(imageToken) != imageTokenId) {
      throw new IllegalArgumentException(
          "image token "
              + imageToken
              + " has id "
              + tokenizer.tokenId(imageToken)
              + " in the tokenizer but config.json says image_token_index="
              + imageTokenId);
    }
    if (context <= 0) {
      throw new IllegalArgumentException("context must be positive, found " + context);
    }
    this.tokenizer = tokenizer;
    this.template = template;
    this.imageToken = imageToken;
    this.imageTokenId = imageTokenId;
    this.context = context;
    this.eosTokenId = eosTokenId;
    this.bosToken = bosToken == null ? "" : bosToken;
    Map<String, Object> vars = new LinkedHashMap<>();
    vars.put("bos_token", this.bosToken);
    vars.put("eos_token", eosToken == null ? "" : eosToken);
    this.templateVars = Map.copyOf(vars);
  }

  /**
   * Reads {@code config.json} ({@code image_token_index}, {@code
   * text_config.max_position_embeddings}, {@code eos_token_id}), {@code tokenizer_config.json}
   * ({@code chat_template}, special tokens) and {@code tokenizer.json} from a checkpoint directory.
   */
  public static PromptEncoder load(Path dir) {
    return load(
        dir.resolve("config.json"),
        dir.resolve("tokenizer.json"),
        dir.resolve("tokenizer_config.json"));
  }

  /** As {@link #load(Path)}, with each file named ({@code tokenizerConfigJson} may be absent). */
  public static PromptEncoder load(Path configJson, Path tokenizerJson, Path tokenizerConfigJson) {
    ObjectMapper json = new ObjectMapper();
    JsonNode config;
    JsonNode tokConfig;
    try {
      config = json.readTree(configJson.toFile());
      tokConfig =
          Files.isRegularFile(tokenizerConfigJson)
              ? json.readTree(tokenizerConfigJson.toFile())
              : json.createObjectNode();
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read " + configJson + " / " + tokenizerConfigJson, e);
    }
    Tokenizer tok = Tokenizer.load(tokenizerJson);
    try {
      JsonNode text = config.path("text_config");
      String imageToken = tokenString(tokConfig.path("image_token"), "<image>");
      int imageId = config.path("image_token_index").asInt(tok.tokenId(imageToken));
      int ctx =
          text.path("max_position_embeddings").asInt(tokConfig.path("model_max_length").asInt(0));
      String eos = tokenString(tokConfig.path("eos_token"), null);
      int eosId =
          text.has("eos_token_id")
              ? text.get("eos_token_id").asInt()
              : eos != null ? tok.tokenId(eos) : -1;
      String tmpl = tokConfig.path("chat_template").asText(null);
      ChatTemplate template = tmpl == null ? null : ChatTemplate.parse(tmpl);
      return new PromptEncoder(
          tok,
          template,
          imageToken,
          imageId,
          ctx,
          eosId,
          tokenString(tokConfig.path("bos_token"), null),
          eos);
    } catch (RuntimeException e) {
      tok.close();
      throw e;
    }
  }

  private static String tokenString(JsonNode n, String dflt) {
    if (n.isTextual()) {
      return n.asText();
    }
    if (n.isObject() && n.has("content")) { // AddedToken serialisation
      return n.get("content").asText();
    }
    return dflt;
  }

  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /** Positions the LM supports ({@code max_position_embeddings}). */
  public int context() {
    return context;
  }

  public int imageTokenId() {
    return imageTokenId;
  }

  public int eosTokenId() {
    return eosTokenId;
  }

  /** The prompt text for a user question, chat template applied. */
  public String render(String userText) {
    if (userText == null) {
      throw new IllegalArgumentException("prompt must not be null");
    }
    if (userText.contains(imageToken)) {
      throw new IllegalArgumentException(
          "prompt contains the image placeholder "
              + imageToken
              + "; pass the question only, the image is placed by the chat template");
    }
    if (template == null) {
      return LLAVA_15_FORMAT.replace("{prompt}", userText);
    }
    return template.render(
        List.of(ChatTemplate.Message.userWithImage(userText)), true, templateVars);
  }

  /** Renders and tokenizes a user question for an image of {@code imageTokens} visual tokens. */
  public EncodedPrompt encode(String userText, int imageTokens) {
    return encodeRendered(render(userText), imageTokens);
  }

  /** Tokenizes an already formatted prompt holding exactly one image placeholder. */
  public EncodedPrompt encodeRendered(String text, int imageTokens) {
    if (imageTokens < 0) {
      throw new IllegalArgumentException("imageTokens must be >= 0, found " + imageTokens);
    }
    boolean hasBos = !bosToken.isEmpty() && text.startsWith(bosToken);
    int[] ids = tokenizer.encode(text, !hasBos);
    int at = -1;
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] == imageTokenId) {
        if (at >= 0) {
          throw new IllegalArgumentException(
              "prompt has more than one image placeholder "
                  + imageToken
                  + " (at token "
                  + at
                  + " and "
                  + i
                  + "); one image per prompt is supported");
        }
        at = i;
      }
    }
    if (at < 0) {
      throw new IllegalArgumentException(
          "prompt has no image placeholder " + imageToken + ": " + text);
    }
    int expanded = ids.length - 1 + imageTokens;
    if (expanded >= context) {
      throw new PromptTooLongException(expanded, ids.length - 1, imageTokens, context);
    }
    return new EncodedPrompt(text, ids, at, imageTokens);
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
