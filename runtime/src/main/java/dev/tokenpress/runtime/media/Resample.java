package dev.tokenpress.runtime.media;

/**
 * Pillow's resampling filters, with Pillow's integer ids (the {@code resample} value of a Hugging
 * Face {@code preprocessor_config.json}). {@link PilResize} implements each exactly as Pillow 9–11
 * does for 8-bit images.
 */
public enum Resample {
  NEAREST(0, 0.0),
  LANCZOS(1, 3.0),
  BILINEAR(2, 1.0),
  BICUBIC(3, 2.0),
  BOX(4, 0.5),
  HAMMING(5, 1.0);

  private final int pilId;
  private final double support;

  Resample(int pilId, double support) {
    this.pilId = pilId;
    this.support = support;
  }

  public int pilId() {
    return pilId;
  }

  /** The filter's support (half-width) at scale 1, as in Pillow's {@code struct filter}. */
  double support() {
    return support;
  }

  /** The filter with Pillow id {@code id} (0..5). */
  public static Resample ofPilId(int id) {
    for (Resample r : values()) {
      if (r.pilId == id) {
        return r;
      }
    }
    throw new IllegalArgumentException("unknown Pillow resample id " + id + " (expected 0..5)");
  }

  /** The filter kernel, a direct transcription of Pillow's {@code Resample.c}. */
  double filter(double x) {
    switch (this) {
      case BOX:
        if (x > -0.5 && x <= 0.5) {
          return 1.0;
        }
        return 0.0;
      case BILINEAR:
        if (x < 0.0) {
          x = -x;
        }
        return x < 1.0 ? 1.0 - x : 0.0;
      case HAMMING:
        if (x < 0.0) {
          x = -x;
        }
        if (x == 0.0) {
          return 1.0;
        }
        if (x >= 1.0) {
          return 0.0;
        }
        x = x * Math.PI;
        // Pillow writes these constants as C floats (0.54f, 0.46f), widened to double.
        return Math.sin(x) / x * ((double) 0.54f + (double) 0.46f * Math.cos(x));
      case BICUBIC:
        {
          double a = -0.5;
          if (x < 0.0) {
            x = -x;
          }
          if (x < 1.0) {
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
          }
          if (x < 2.0) {
            return (((x - 5) * x + 8) * x - 4) * a;
          }
          return 0.0;
        }
      case LANCZOS:
        if (-3.0 <= x && x < 3.0) {
          return sinc(x) * sinc(x / 3);
        }
        return 0.0;
      default:
        throw new IllegalStateException("NEAREST has no convolution kernel");
    }
  }

  private static double sinc(double x) {
    if (x == 0.0) {
      return 1.0;
    }
    x = x * Math.PI;
    return Math.sin(x) / x;
  }
}
