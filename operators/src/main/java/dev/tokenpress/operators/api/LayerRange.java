package dev.tokenpress.operators.api;

import java.io.Serializable;

/**
 * An inclusive range of layers written relative to a tower's depth {@code L}, so that one plan fits
 * models of different depths: {@code "16..L-2"} is layers 16 to {@code L-2}, {@code "L-1"} is the
 * last layer alone, {@code "0..L"} is invalid (the last layer is {@code L-1}).
 *
 * <p>Grammar: {@code range := ref | ref ".." ref}, {@code ref := INT | "L" | "L-" INT} with
 * non-negative decimal {@code INT}s and no spaces. The canonical form ({@link #toString()}) is
 * {@code first..last}.
 *
 * @param first the first layer
 * @param last the last layer (inclusive)
 */
public record LayerRange(Ref first, Ref last) implements Serializable {

  /** Rejects nulls and ranges that are empty whatever the depth. */
  public LayerRange {
    if (first == null || last == null) {
      throw new IllegalArgumentException("layer range ends must not be null");
    }
    if (first.fromEnd() == last.fromEnd()
        && (first.fromEnd() ? first.offset() < last.offset() : first.offset() > last.offset())) {
      throw new IllegalArgumentException(
          "layer range \"" + first + ".." + last + "\" is empty: first must not come after last");
    }
  }

  /**
   * A layer written as an absolute index ({@code fromEnd == false}: layer {@code offset}) or
   * relative to the depth ({@code fromEnd == true}: layer {@code L - offset}).
   *
   * @param fromEnd whether the layer counts back from {@code L}
   * @param offset non-negative index or distance from {@code L}
   */
  public record Ref(boolean fromEnd, int offset) implements Serializable {
    /** {@code offset >= 0}. */
    public Ref {
      if (offset < 0) {
        throw new IllegalArgumentException("layer offset must be >= 0, got " + offset);
      }
    }

    /** Layer {@code index}. */
    public static Ref of(int index) {
      return new Ref(false, index);
    }

    /** Layer {@code L - offset}. */
    public static Ref fromEnd(int offset) {
      return new Ref(true, offset);
    }

    /** The layer index for a tower of {@code depth} layers (may be out of range). */
    public int resolve(int depth) {
      return fromEnd ? depth - offset : offset;
    }

    @Override
    public String toString() {
      return fromEnd ? (offset == 0 ? "L" : "L-" + offset) : Integer.toString(offset);
    }
  }

  /**
   * Parses the grammar in the class comment.
   *
   * @throws IllegalArgumentException naming the text and the grammar
   */
  public static LayerRange parse(String text) {
    if (text == null) {
      throw new IllegalArgumentException("layer range must not be null");
    }
    int dots = text.indexOf("..");
    if (dots < 0) {
      Ref r = parseRef(text, text);
      return new LayerRange(r, r);
    }
    return new LayerRange(
        parseRef(text.substring(0, dots), text), parseRef(text.substring(dots + 2), text));
  }

  private static Ref parseRef(String s, String whole) {
    if (s.equals("L")) {
      return Ref.fromEnd(0);
    }
    boolean fromEnd = s.startsWith("L-");
    String digits = fromEnd ? s.substring(2) : s;
    if (digits.isEmpty()
        || digits.length() > 9
        || !digits.chars().allMatch(c -> c >= '0' && c <= '9')) {
      throw new IllegalArgumentException(
          "invalid layer range \""
              + whole
              + "\"; expected FIRST..LAST or a single layer, each an integer, L or L-<integer>"
              + " (e.g. \"16..L-2\")");
    }
    return new Ref(fromEnd, Integer.parseInt(digits));
  }

  /**
   * The layer indices {@code first..last} for a tower of {@code depth} layers.
   *
   * @param field the config field, for the error message (e.g. {@code "vtc-cls.layers"})
   * @throws IllegalArgumentException unless {@code 0 <= first <= last <= depth-1}
   */
  public int[] resolve(int depth, String field) {
    int a = first.resolve(depth);
    int b = last.resolve(depth);
    if (a < 0 || a > b || b > depth - 1) {
      throw new IllegalArgumentException(
          field
              + " \""
              + this
              + "\" resolves to ["
              + a
              + ", "
              + b
              + "] for L="
              + depth
              + " layers; it must satisfy 0 <= first <= last <= L-1 = "
              + (depth - 1));
    }
    int[] layers = new int[b - a + 1];
    for (int i = 0; i < layers.length; i++) {
      layers[i] = a + i;
    }
    return layers;
  }

  @Override
  public String toString() {
    return first + ".." + last;
  }
}
