package dev.tokenpress.runtime.media;

/** What the decoder does with an alpha channel (RGBA, grey+alpha, palette transparency). */
public enum AlphaMode {
  /**
   * Ignore alpha and keep the stored colour, exactly as Pillow's {@code Image.convert("RGB")} does.
   * The default, because the bundled model's training script uses {@code convert("RGB")}.
   */
  DROP,
  /**
   * Composite over opaque white: {@code round((c * a + 255 * (255 - a)) / 255)}. What a viewer
   * shows; use it for corpora of transparent logos/screenshots whose hidden colour is garbage.
   */
  COMPOSITE_WHITE
}
