package dev.tokenpress.runtime.media;

/**
 * Pillow's {@code Image.resize(size, filter)} for RGB images, bit-exact with Pillow 9–11 ({@code
 * libImaging/Resample.c}, 8 bits per channel, {@code reducing_gap=None}, whole-image box).
 *
 * <p>What that means, and what a "plain bilinear" resize would get wrong when downscaling:
 *
 * <ul>
 *   <li>The filter is stretched by the scale: for output pixel {@code i} the input window is
 *       centred at {@code (i + 0.5) * scale} with support {@code filter.support * max(scale, 1)},
 *       and every input pixel {@code j} in it weighs {@code filter((j - center + 0.5) / max(scale,
 *       1))}, normalised to sum 1. So a 4× bilinear downscale averages an 8-pixel triangle, not 2
 *       pixels (an antialiasing filter, unlike OpenCV/torch {@code interpolate}).
 *   <li>Window bounds: {@code xmin = (int)(center - support + 0.5)} clipped at 0, {@code xmax =
 *       (int)(center + support + 0.5)} clipped at the size.
 *   <li>Weights become fixed-point integers with 22 fractional bits ({@code PRECISION_BITS = 32 - 8
 *       - 2}), rounded half away from zero.
 *   <li>Separable, horizontal pass first, over only the input rows the vertical pass reads; the
 *       intermediate image is rounded and clipped to 8 bits (accumulator starts at {@code 1 << 21},
 *       result {@code acc >> 22} clipped to 0..255); then the vertical pass. A pass whose size does
 *       not change is skipped.
 *   <li>{@link Resample#NEAREST} is Pillow's affine nearest: source index {@code (int)(scale / 2 +
 *       i * scale)}, accumulated as Pillow does.
 * </ul>
 */
final class PilResize {
  private static final int PRECISION_BITS = 32 - 8 - 2;

  private PilResize() {}

  static RgbImage resize(RgbImage in, int outW, int outH, Resample filter) {
    if (outW <= 0 || outH <= 0) {
      throw new IllegalArgumentException(
          "resize target must be positive, found " + outW + "x" + outH);
    }
    if (outW == in.width() && outH == in.height()) {
      return in; // Pillow returns a copy; RgbImage is immutable.
    }
    if (filter == Resample.NEAREST) {
      return nearest(in, outW, outH);
    }
    Coeffs horiz = Coeffs.compute(in.width(), outW, filter);
    Coeffs vert = Coeffs.compute(in.height(), outH, filter);
    boolean needHorizontal = outW != in.width();
    boolean needVertical = outH != in.height();

    byte[] src = in.raw();
    int srcW = in.width();
    int srcH = in.height();
    if (needHorizontal) {
      int yFirst = vert.bounds[0];
      int yLast = vert.bounds[(outH - 1) * 2] + vert.bounds[(outH - 1) * 2 + 1];
      if (!needVertical) {
        yFirst = 0;
        yLast = srcH;
      } else {
        for (int i = 0; i < outH; i++) {
          vert.bounds[i * 2] -= yFirst;
        }
      }
      src = horizontal(src, srcW, yFirst, yLast - yFirst, outW, horiz);
      srcW = outW;
      srcH = yLast - yFirst;
    }
    if (needVertical) {
      src = vertical(src, srcW, outH, vert);
    }
    return RgbImage.wrap(outW, outH, src);
  }

  private static byte[] horizontal(byte[] in, int inW, int yOffset, int rows, int outW, Coeffs c) {
    byte[] out = new byte[outW * rows * 3];
    int[] k = c.kk;
    int ksize = c.ksize;
    for (int y = 0; y < rows; y++) {
      int rowBase = (y + yOffset) * inW * 3;
      int o = y * outW * 3;
      for (int xx = 0; xx < outW; xx++) {
        int xmin = c.bounds[xx * 2];
        int xmax = c.bounds[xx * 2 + 1];
        int kBase = xx * ksize;
        int s0 = 1 << (PRECISION_BITS - 1);
        int s1 = s0;
        int s2 = s0;
        int p = rowBase + xmin * 3;
        for (int x = 0; x < xmax; x++, p += 3) {
          int w = k[kBase + x];
          s0 += (in[p] & 0xFF) * w;
          s1 += (in[p + 1] & 0xFF) * w;
          s2 += (in[p + 2] & 0xFF) * w;
        }
        out[o++] = clip8(s0);
        out[o++] = clip8(s1);
        out[o++] = clip8(s2);
      }
    }
    return out;
  }

  private static byte[] vertical(byte[] in, int w, int outH, Coeffs c) {
    byte[] out = new byte[w * outH * 3];
    int[] k = c.kk;
    int ksize = c.ksize;
    int stride = w * 3;
    for (int yy = 0; yy < outH; yy++) {
      int ymin = c.bounds[yy * 2];
      int ymax = c.bounds[yy * 2 + 1];
      int kBase = yy * ksize;
      int o = yy * stride;
      for (int xx = 0; xx < stride; xx++) {
        int s = 1 << (PRECISION_BITS - 1);
        int p = ymin * stride + xx;
        for (int y = 0; y < ymax; y++, p += stride) {
          s += (in[p] & 0xFF) * k[kBase + y];
        }
        out[o + xx] = clip8(s);
      }
    }
    return out;
  }

  private static byte clip8(int in) {
    if (in >= (1 << PRECISION_BITS << 8)) {
      return (byte) 255;
    }
    if (in <= 0) {
      return 0;
    }
    return (byte) (in >> PRECISION_BITS);
  }

  /**
   * Pillow's {@code ImagingScaleAffine}: source coordinates accumulate {@code scale} per output
   * pixel from {@code scale / 2} (incrementally, as Pillow does), truncated to an index.
   */
  private static RgbImage nearest(RgbImage in, int outW, int outH) {
    byte[] src = in.raw();
    byte[] out = new byte[outW * outH * 3];
    double a0 = (double) in.width() / outW;
    double a4 = (double) in.height() / outH;
    int[] xin = new int[outW];
    double xo = a0 * 0.5;
    for (int x = 0; x < outW; x++) {
      xin[x] = Math.min(in.width() - 1, (int) xo);
      xo += a0;
    }
    double yo = a4 * 0.5;
    int o = 0;
    for (int y = 0; y < outH; y++) {
      int yi = Math.min(in.height() - 1, (int) yo);
      yo += a4;
      for (int x = 0; x < outW; x++) {
        int p = (yi * in.width() + xin[x]) * 3;
        out[o++] = src[p];
        out[o++] = src[p + 1];
        out[o++] = src[p + 2];
      }
    }
    return RgbImage.wrap(outW, outH, out);
  }

  /** Pillow's {@code precompute_coeffs} + {@code normalize_coeffs_8bpc} for one axis. */
  private static final class Coeffs {
    final int ksize;
    final int[] bounds;
    final int[] kk;

    private Coeffs(int ksize, int[] bounds, int[] kk) {
      this.ksize = ksize;
      this.bounds = bounds;
      this.kk = kk;
    }

    static Coeffs compute(int inSize, int outSize, Resample filter) {
      double scale = (double) inSize / outSize;
      double filterscale = Math.max(scale, 1.0);
      double support = filter.support() * filterscale;
      int ksize = (int) Math.ceil(support) * 2 + 1;
      int[] bounds = new int[outSize * 2];
      int[] kk = new int[outSize * ksize];
      double[] k = new double[ksize];
      for (int xx = 0; xx < outSize; xx++) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int) (center - support + 0.5);
        if (xmin < 0) {
          xmin = 0;
        }
        int xmax = (int) (center + support + 0.5);
        if (xmax > inSize) {
          xmax = inSize;
        }
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
          double w = filter.filter((x + xmin - center + 0.5) * ss);
          k[x] = w;
          ww += w;
        }
        for (int x = 0; x < xmax; x++) {
          if (ww != 0.0) {
            k[x] /= ww;
          }
        }
        for (int x = 0; x < ksize; x++) {
          double v = x < xmax ? k[x] : 0.0;
          kk[xx * ksize + x] =
              v < 0
                  ? (int) (-0.5 + v * (1 << PRECISION_BITS))
                  : (int) (0.5 + v * (1 << PRECISION_BITS));
        }
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
      }
      return new Coeffs(ksize, bounds, kk);
    }
  }
}
