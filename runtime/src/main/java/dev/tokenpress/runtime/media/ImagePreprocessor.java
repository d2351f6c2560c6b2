package dev.tokenpress.runtime.media;

/**
 * Turns an {@link RgbImage} into model input the way Hugging Face's {@code CLIPImageProcessor} does
 * with Pillow: resize (shortest edge, {@link PilResize}, bit-exact with Pillow), centre crop,
 * rescale, normalise, HWC → CHW. Pure Java, thread-safe.
 */
public final class ImagePreprocessor {
  private final PreprocessorConfig config;
  private final float[] mean = new float[3];
  private final float[] std = new float[3];

  public ImagePreprocessor(PreprocessorConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
    for (int c = 0; c < 3; c++) {
      mean[c] = config.imageMean().get(c).floatValue();
      std[c] = config.imageStd().get(c).floatValue();
    }
  }

  public PreprocessorConfig config() {
    return config;
  }

  /** Resize and centre crop only: the RGB image the normalisation step sees. */
  public RgbImage resizeAndCrop(RgbImage image) {
    RgbImage img = image;
    if (config.doResize()) {
      int[] hw = config.resizedSize(image.height(), image.width());
      img = PilResize.resize(img, hw[1], hw[0], config.resample());
    }
    if (config.doCenterCrop()) {
      img = centerCrop(img, config.cropHeight(), config.cropWidth());
    }
    return img;
  }

  public PixelValues preprocess(RgbImage image) {
    RgbImage img = resizeAndCrop(image);
    int h = img.height();
    int w = img.width();
    byte[] px = img.raw();
    float[] out = new float[3 * h * w];
    double scale = config.doRescale() ? config.rescaleFactor() : 1.0;
    boolean normalize = config.doNormalize();
    float[] lut = new float[256 * 3];
    for (int c = 0; c < 3; c++) {
      for (int v = 0; v < 256; v++) {
        float x;
        if (!config.doRescale()) {
          x = v;
        } else if (config.rescalePrecision() == PreprocessorConfig.RescalePrecision.FLOAT32) {
          x = (float) v * (float) scale;
        } else {
          x = (float) (v * scale);
        }
        lut[c * 256 + v] = normalize ? (x - mean[c]) / std[c] : x;
      }
    }
    int plane = h * w;
    for (int i = 0; i < plane; i++) {
      out[i] = lut[px[i * 3] & 0xFF];
      out[plane + i] = lut[256 + (px[i * 3 + 1] & 0xFF)];
      out[2 * plane + i] = lut[512 + (px[i * 3 + 2] & 0xFF)];
    }
    return PixelValues.wrap(h, w, out);
  }

  /**
   * Hugging Face {@code center_crop}: top = (h - ch) // 2, left = (w - cw) // 2; where the image is
   * smaller than the crop it is first padded with zeros, {@code ceil((ch - h) / 2)} rows on top and
   * {@code ceil((cw - w) / 2)} columns on the left, as Hugging Face does.
   */
  static RgbImage centerCrop(RgbImage img, int ch, int cw) {
    int h = img.height();
    int w = img.width();
    if (h == ch && w == cw) {
      return img;
    }
    byte[] src = img.raw();
    byte[] out = new byte[ch * cw * 3];
    // Offset of the source in the (possibly padded) canvas, then of the crop in that canvas.
    int padTop = Math.max(0, (ch - h + 1) / 2);
    int padLeft = Math.max(0, (cw - w + 1) / 2);
    int canvasH = Math.max(h, ch);
    int canvasW = Math.max(w, cw);
    int top = (canvasH - ch) / 2;
    int left = (canvasW - cw) / 2;
    for (int y = 0; y < ch; y++) {
      int sy = y + top - padTop;
      if (sy < 0 || sy >= h) {
        continue;
      }
      for (int x = 0; x < cw; x++) {
        int sx = x + left - padLeft;
        if (sx < 0 || sx >= w) {
          continue;
        }
        System.arraycopy(src, (sy * w + sx) * 3, out, (y * cw + x) * 3, 3);
      }
    }
    return RgbImage.wrap(cw, ch, out);
  }
}
