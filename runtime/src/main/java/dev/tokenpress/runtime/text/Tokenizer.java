package dev.tokenpress.runtime.text;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * A checkpoint's {@code tokenizer.json}, run by the Hugging Face tokenizers library (Rust, through
 * DJL's JNI binding; works offline). Special tokens are added exactly as the file's {@code
 * post_processor} says ({@code add_special_tokens=True}, the Hugging Face default); truncation and
 * padding are off, so a long prompt is never cut silently.
 *
 * <p>Thread-safe (the native tokenizer is immutable). Close once, when done.
 */
public final class Tokenizer implements AutoCloseable {
  private final HuggingFaceTokenizer hf;
  private final Map<String, Integer> vocab;
  private final Map<Integer, String> specials;

  private Tokenizer(
      HuggingFaceTokenizer hf, Map<String, Integer> vocab, Map<Integer, String> specials) {
    this.hf = hf;
    this.vocab = vocab;
    this.specials = specials;
  }

  /** Loads {@code tokenizer.json} (a file, or a checkpoint directory holding one). */
  public static Tokenizer load(Path path) {
    Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("tokenizer file " + file + " does not exist");
    }
    Map<String, Integer> vocab = new HashMap<>();
    Map<Integer, String> specials = new HashMap<>();
    try {
      JsonNode root = new ObjectMapper().readTree(file.toFile());
      JsonNode v = root.path("model").path("vocab");
      if (v.isObject()) {
        Iterator<Map.Entry<String, JsonNode>> it = v.fields();
        while (it.hasNext()) {
          Map.Entry<String, JsonNode> e = it.next();
          vocab.put(e.getKey(), e.getValue().asInt());
        }
      } else if (v.isArray()) { // Unigram: [[piece, score], ...]
        for (int i = 0; i < v.size(); i++) {
          vocab.put(v.get(i).get(0).asText(), i);
        }
      }
      for (JsonNode t : root.path("added_tokens")) {
        vocab.put(t.path("content").asText(), t.path("id").asInt());
        if (t.path("special").asBoolean(false)) {
          specials.put(t.path("id").asInt(), t.path("content").asText());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read tokenizer " + file, e);
    }
    try {
      HuggingFaceTokenizer hf =
          HuggingFaceTokenizer.newInstance(
              file, Map.of("addSpecialTokens", "true", "truncation", "false", "padding", "false"));
      return new Tokenizer(hf, Map.copyOf(vocab), Map.copyOf(specials));
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(
          "Cannot load tokenizer " + file + ": " + e.getMessage(), e);
    }
  }

  /** Token ids of {@code text}, with the special tokens the file's post-processor adds. */
  public int[] encode(String text) {
    return encode(text, true);
  }

  public int[] encode(String text, boolean addSpecialTokens) {
    Encoding e = hf.encode(text, addSpecialTokens, false);
    long[] ids = e.getIds();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = Math.toIntExact(ids[i]);
    }
    return out;
  }

  /** Text of {@code ids}, special tokens skipped, through the file's decoder. */
  public String decode(int[] ids) {
    return decode(ids, true);
  }

  public String decode(int[] ids, boolean skipSpecialTokens) {
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      l[i] = ids[i];
    }
    return hf.decode(l, skipSpecialTokens);
  }

  /** The id of a vocabulary or added token, or -1. */
  public int tokenId(String token) {
    Integer id = vocab.get(token);
    return id == null ? -1 : id;
  }

  /** Whether {@code id} is an added special token. */
  public boolean isSpecial(int id) {
    return specials.containsKey(id);
  }

  /** Vocabulary size including added tokens (max id + 1). */
  public int vocabSize() {
    int max = -1;
    for (int id : vocab.values()) {
      max = Math.max(max, id);
    }
    return max + 1;
  }

  @Override
  public void close() {
    hf.close();
  }
}
