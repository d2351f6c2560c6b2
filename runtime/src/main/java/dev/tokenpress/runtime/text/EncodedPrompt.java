package dev.tokenpress.runtime.text;

/**
 * A tokenized prompt with one image placeholder.
 *
 * @param text the rendered prompt (chat template applied)
 * @param ids token ids with exactly one image token (before expansion)
 * @param imageIndex index of the image token in {@code ids}
 * @param imageTokens visual tokens the placeholder expands to
 */
public record EncodedPrompt(String text, int[] ids, int imageIndex, int imageTokens) {
  public EncodedPrompt {
    ids = ids.clone();
    if (imageIndex < 0 || imageIndex >= ids.length) {
      throw new IllegalArgumentException(
          "imageIndex " + imageIndex + " is outside the " + ids.length + " ids");
    }
  }

  @Override
  public int[] ids() {
    return ids.clone();
  }

  /** Sequence length after the placeholder becomes {@code imageTokens} positions. */
  public int expandedLength() {
    return ids.length - 1 + imageTokens;
  }

  /** Text ids before the image. */
  public int[] prefix() {
    return java.util.Arrays.copyOfRange(ids, 0, imageIndex);
  }

  /** Text ids after the image. */
  public int[] suffix() {
    return java.util.Arrays.copyOfRange(ids, imageIndex + 1, ids.length);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof EncodedPrompt p
        && p.text.equals(text)
        && java.util.Arrays.equals(p.ids, ids)
        && p.imageIndex == imageIndex
        && p.imageTokens == imageTokens;
  }

  @Override
  public int hashCode() {
    return java.util.Objects.hash(text, java.util.Arrays.hashCode(ids), imageIndex, imageTokens);
  }

  @Override
  public String toString() {
    return "EncodedPrompt("
        + ids.length
        + " ids, image at "
        + imageIndex
        + " -> "
        + imageTokens
        + " tokens)";
  }
}
