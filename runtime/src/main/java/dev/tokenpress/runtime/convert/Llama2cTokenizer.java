package dev.tokenpress.runtime.convert;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c's BPE tokenizer ({@code tokenizer.bin} / {@code tok512.bin}: int32 max token length,
 * then per token a float32 score, an int32 byte length and the bytes), reproducing {@code run.c}'s
 * {@code encode} (BOS, dummy-prefix space, UTF-8 code points with byte fallback {@code byte + 3},
 * then greedy merging of the best-scoring adjacent pair) and {@code decode}. For the stories260K
 * checks and the LM-only CLI; VLM bundles use {@code tokenizer.json}.
 */
public final class Llama2cTokenizer {
  public static final int BOS = 1;
  public static final int EOS = 2;

  private final String[] vocab; // bytes as ISO-8859-1 chars
  private final float[] scores;
  private final Map<String, Integer> lookup = new HashMap<>();

  public Llama2cTokenizer(Path file) {
    byte[] all;
    try {
      all = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read tokenizer " + file, e);
    }
    ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
    if (b.remaining() < 4) {
      throw new IllegalArgumentException("tokenizer file " + file + " is too short");
    }
    b.getInt(); // max token length
    List<String> v = new ArrayList<>();
    List<Float> s = new ArrayList<>();
    while (b.remaining() > 0) {
      if (b.remaining() < 8) {
        throw new IllegalArgumentException("truncated tokenizer entry " + v.size() + " in " + file);
      }
      float score = b.getFloat();
      int len = b.getInt();
      if (len < 0 || len > b.remaining()) {
        throw new IllegalArgumentException(
            "corrupt tokenizer entry " + v.size() + " (length " + len + ") in " + file);
      }
      byte[] bytes = new byte[len];
      b.get(bytes);
      v.add(new String(bytes, StandardCharsets.ISO_8859_1));
      s.add(score);
    }
    vocab = v.toArray(new String[0]);
    scores = new float[s.size()];
    for (int i = 0; i < scores.length; i++) {
      scores[i] = s.get(i);
      lookup.putIfAbsent(vocab[i], i);
    }
  }

  public int vocabSize() {
    return vocab.length;
  }

  /** Token ids of {@code text}, with BOS first (as {@code run.c} with bos=1, eos=0). */
  public int[] encode(String text, boolean bos, boolean eos) {
    List<Integer> tokens = new ArrayList<>();
    if (bos) {
      tokens.add(BOS);
    }
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    if (bytes.length > 0) {
      tokens.add(id(" "));
    }
    int i = 0;
    while (i < bytes.length) {
      int start = i;
      i++;
      while (i < bytes.length && (bytes[i] & 0xC0) == 0x80 && i - start < 4) {
        i++;
      }
      String cp = new String(bytes, start, i - start, StandardCharsets.ISO_8859_1);
      Integer id = lookup.get(cp);
      if (id != null) {
        tokens.add(id);
      } else {
        for (int k = start; k < i; k++) {
          tokens.add((bytes[k] & 0xff) + 3);
        }
      }
    }
    while (true) {
      float best = -1e10f;
      int bestId = -1;
      int bestIdx = -1;
      for (int k = 0; k + 1 < tokens.size(); k++) {
        Integer id = lookup.get(vocab[tokens.get(k)] + vocab[tokens.get(k + 1)]);
        if (id != null && scores[id] > best) {
          best = scores[id];
          bestId = id;
          bestIdx = k;
        }
      }
      if (bestIdx == -1) {
        break;
      }
      tokens.set(bestIdx, bestId);
      tokens.remove(bestIdx + 1);
    }
    if (eos) {
      tokens.add(EOS);
    }
    int[] out = new int[tokens.size()];
    for (int k = 0; k < out.length; k++) {
      out[k] = tokens.get(k);
    }
    return out;
  }

  /**
   * Text of {@code ids} following {@code previous} (BOS strips a leading space; {@code <0xXX>}
   * pieces are raw bytes).
   */
  public String decode(int previous, int[] ids) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    int prev = previous;
    for (int id : ids) {
      if (id < 0 || id >= vocab.length) {
        throw new IllegalArgumentException(
            "token id " + id + " outside the vocabulary [0, " + vocab.length + ")");
      }
      String piece = vocab[id];
      if (prev == BOS && piece.startsWith(" ")) {
        piece = piece.substring(1);
      }
      if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
        out.write(Integer.parseInt(piece.substring(3, 5), 16));
      } else {
        byte[] pb = piece.getBytes(StandardCharsets.ISO_8859_1);
        out.write(pb, 0, pb.length);
      }
      prev = id;
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  private int id(String piece) {
    Integer id = lookup.get(piece);
    if (id == null) {
      throw new IllegalStateException("tokenizer has no token for " + piece);
    }
    return id;
  }
}
