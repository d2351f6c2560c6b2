package dev.tokenpress.runtime.media;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * An 8-bit sRGB image, row-major, interleaved {@code R,G,B} per pixel (HWC, the layout of {@code
 * numpy.asarray(PIL.Image.convert("RGB"))}). Immutable: the pixel array is owned and never handed
 * out without a copy.
 */
public final class RgbImage {
  private final int width;
  private final int height;
  private final byte[] rgb;

  private RgbImage(int width, int height, byte[] rgb) {
    this.width = width;
    this.height = height;
    this.rgb = rgb;
  }

  /** Takes ownership of {@code rgb}; its length must be {@code width * height * 3}. */
  public static RgbImage wrap(int width, int height, byte[] rgb) {
    if (width <= 0 || height <= 0) {
      throw new IllegalArgumentException(
          "image size must be positive, found " + width + "x" + height);
    }
    if ((long) width * height * 3 != rgb.length) {
      throw new IllegalArgumentException(
          "rgb has "
              + rgb.length
              + " bytes, expected "
              + width
              + "x"
              + height
              + "x3 = "
              + (long) width * height * 3);
    }
    return new RgbImage(width, height, rgb);
  }

  public int width() {
    return width;
  }

  public int height() {
    return height;
  }

  /** The channel {@code c} (0 = R) of pixel (x, y), 0..255. */
  public int get(int x, int y, int c) {
    return rgb[(y * width + x) * 3 + c] & 0xFF;
  }

  /** A copy of the HWC RGB bytes. */
  public byte[] toByteArray() {
    return rgb.clone();
  }

  /** The backing array, read-only by contract; for package kernels that must not copy. */
  byte[] raw() {
    return rgb;
  }

  /**
   * Hex SHA-256 of the HWC RGB bytes (the {@code pixel_sha256} of the bundled model's references).
   */
  public String sha256() {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(rgb));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }

  @Override
  public String toString() {
    return "RgbImage(" + width + "x" + height + ")";
  }
}
