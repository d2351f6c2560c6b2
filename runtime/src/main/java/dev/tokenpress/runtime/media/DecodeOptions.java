package dev.tokenpress.runtime.media;

import java.io.Serializable;

/**
 * Limits and policies of {@link ImageDecoder}.
 *
 * @param maxPixels images with {@code width * height} above this are rejected from their header,
 *     before any pixel data is decoded ({@link MediaDecodeException.Reason#TOO_LARGE})
 * @param maxBytes encoded inputs longer than this are rejected before parsing
 * @param alphaMode what to do with transparency
 */
public record DecodeOptions(long maxPixels, long maxBytes, AlphaMode alphaMode)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /** 64 megapixels (a 8000×8000 photo), 256 MiB encoded, alpha dropped as Pillow does. */
  public static final DecodeOptions DEFAULT =
      new DecodeOptions(64L << 20, 256L << 20, AlphaMode.DROP);

  public DecodeOptions {
    if (maxPixels <= 0) {
      throw new IllegalArgumentException("maxPixels must be positive, found " + maxPixels);
    }
    if (maxBytes <= 0) {
      throw new IllegalArgumentException("maxBytes must be positive, found " + maxBytes);
    }
    if (alphaMode == null) {
      throw new IllegalArgumentException("alphaMode must not be null");
    }
  }

  public DecodeOptions withMaxPixels(long pixels) {
    return new DecodeOptions(pixels, maxBytes, alphaMode);
  }

  public DecodeOptions withAlphaMode(AlphaMode mode) {
    return new DecodeOptions(maxPixels, maxBytes, mode);
  }
}
