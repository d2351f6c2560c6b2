package dev.tokenpress.runtime.media;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/**
 * CLIP-style image preprocessing, the fields of a Hugging Face {@code preprocessor_config.json}
 * ({@code CLIPImageProcessor}).
 *
 * @param doResize resize first
 * @param shortestEdge if positive, resize so the shorter side is this long, the longer side {@code
 *     (int)(shortestEdge * long / short)} (Hugging Face {@code size.shortest_edge})
 * @param resizeHeight with {@code shortestEdge == 0}, resize to exactly this height ({@code
 *     size.height})
 * @param resizeWidth with {@code shortestEdge == 0}, resize to exactly this width ({@code
 *     size.width})
 * @param resample Pillow filter used by the resize
 * @param doCenterCrop crop the centre {@code cropHeight × cropWidth}, top-left at {@code ((h -
 *     cropHeight) / 2, (w - cropWidth) / 2)} floored, padding with 0 where the image is smaller
 * @param doRescale multiply by {@code rescaleFactor}, with {@code rescalePrecision}
 * @param doNormalize then {@code (x - mean[c]) / std[c]} in float arithmetic
 * @param rescalePrecision how the rescale multiply rounds (Hugging Face: {@link
 *     RescalePrecision#FLOAT64})
 */
public record PreprocessorConfig(
    boolean doResize,
    int shortestEdge,
    int resizeHeight,
    int resizeWidth,
    Resample resample,
    boolean doCenterCrop,
    int cropHeight,
    int cropWidth,
    boolean doRescale,
    double rescaleFactor,
    boolean doNormalize,
    List<Double> imageMean,
    List<Double> imageStd,
    RescalePrecision rescalePrecision)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /**
   * The arithmetic of the rescale step. The two differ by one float32 ulp on about half of the 256
   * byte values (never more), so a model trained one way runs fine the other way; pick the one its
   * training used when bit-exact pixels matter.
   */
  public enum RescalePrecision {
    /**
     * {@code (float)(v * factor)} with the product in double: Hugging Face {@code
     * CLIPImageProcessor.rescale} (float64 multiply, then {@code astype(float32)}); for {@code
     * 1/255} equal to the correctly rounded {@code v / 255}.
     */
    FLOAT64,
    /**
     * {@code (float) v * (float) factor} in float32: numpy/torch scripts that cast the uint8 image
     * to float32 first (the bundled tiny-llava-shapes training script, {@code
     * normalize_pixels_np}).
     */
    FLOAT32
  }

  public PreprocessorConfig {
    if (rescalePrecision == null) {
      throw new IllegalArgumentException("rescalePrecision must not be null");
    }
    if (resample == null) {
      throw new IllegalArgumentException("resample must not be null");
    }
    if (doResize && shortestEdge <= 0 && (resizeHeight <= 0 || resizeWidth <= 0)) {
      throw new IllegalArgumentException(
          "resize needs shortestEdge > 0 or resizeHeight/resizeWidth > 0, found "
              + shortestEdge
              + ", "
              + resizeHeight
              + "x"
              + resizeWidth);
    }
    if (doCenterCrop && (cropHeight <= 0 || cropWidth <= 0)) {
      throw new IllegalArgumentException(
          "crop size must be positive, found " + cropHeight + "x" + cropWidth);
    }
    if (doRescale && !(rescaleFactor > 0)) {
      throw new IllegalArgumentException("rescaleFactor must be positive, found " + rescaleFactor);
    }
    imageMean = List.copyOf(imageMean);
    imageStd = List.copyOf(imageStd);
    if (imageMean.size() != 3 || imageStd.size() != 3) {
      throw new IllegalArgumentException(
          "imageMean and imageStd need 3 values, found " + imageMean + ", " + imageStd);
    }
    for (double s : imageStd) {
      if (!(s > 0)) {
        throw new IllegalArgumentException("imageStd must be positive, found " + imageStd);
      }
    }
  }

  /**
   * LLaVA-1.5 / CLIP defaults at {@code size}: shortest edge {@code size}, bicubic, centre crop,
   * CLIP mean/std.
   */
  public static PreprocessorConfig clip(int size, Resample resample) {
    return new PreprocessorConfig(
        true,
        size,
        0,
        0,
        resample,
        true,
        size,
        size,
        true,
        1.0 / 255,
        true,
        List.of(0.48145466, 0.4578275, 0.40821073),
        List.of(0.26862954, 0.26130258, 0.27577711),
        RescalePrecision.FLOAT64);
  }

  /** The same config with another rescale precision. */
  public PreprocessorConfig withRescalePrecision(RescalePrecision p) {
    return new PreprocessorConfig(
        doResize,
        shortestEdge,
        resizeHeight,
        resizeWidth,
        resample,
        doCenterCrop,
        cropHeight,
        cropWidth,
        doRescale,
        rescaleFactor,
        doNormalize,
        imageMean,
        imageStd,
        p);
  }

  /** Output height of {@link ImagePreprocessor#preprocess}. */
  public int outputHeight(int imageHeight, int imageWidth) {
    return doCenterCrop ? cropHeight : resizedSize(imageHeight, imageWidth)[0];
  }

  /** Output width of {@link ImagePreprocessor#preprocess}. */
  public int outputWidth(int imageHeight, int imageWidth) {
    return doCenterCrop ? cropWidth : resizedSize(imageHeight, imageWidth)[1];
  }

  /**
   * {@code {height, width}} after the resize step (Hugging Face {@code
   * get_resize_output_image_size}).
   */
  int[] resizedSize(int h, int w) {
    if (!doResize) {
      return new int[] {h, w};
    }
    if (shortestEdge <= 0) {
      return new int[] {resizeHeight, resizeWidth};
    }
    int shortSide = Math.min(h, w);
    int longSide = Math.max(h, w);
    int newLong = (int) ((double) shortestEdge * longSide / shortSide);
    return w <= h ? new int[] {newLong, shortestEdge} : new int[] {shortestEdge, newLong};
  }

  /** Reads a Hugging Face {@code preprocessor_config.json}. */
  public static PreprocessorConfig fromJson(Path file) {
    try {
      return fromJson(new ObjectMapper().readTree(file.toFile()));
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read preprocessor config " + file, e);
    }
  }

  /**
   * Parses a Hugging Face {@code preprocessor_config.json} tree; absent fields take CLIP defaults.
   * One tokenpress extension: {@code "rescale_precision": "float32" | "float64"} (default {@code
   * float64}, as Hugging Face computes it).
   */
  public static PreprocessorConfig fromJson(JsonNode n) {
    PreprocessorConfig d = clip(224, Resample.BICUBIC);
    int shortest = 0;
    int rh = 0;
    int rw = 0;
    JsonNode size = n.path("size");
    if (size.isInt()) {
      shortest = size.asInt();
    } else if (size.has("shortest_edge")) {
      shortest = size.get("shortest_edge").asInt();
    } else if (size.has("height")) {
      rh = size.get("height").asInt();
      rw = size.path("width").asInt();
    } else {
      shortest = d.shortestEdge();
    }
    int ch = d.cropHeight();
    int cw = d.cropWidth();
    JsonNode crop = n.path("crop_size");
    if (crop.isInt()) {
      ch = cw = crop.asInt();
    } else if (crop.has("height")) {
      ch = crop.get("height").asInt();
      cw = crop.path("width").asInt();
    }
    String type = n.path("image_processor_type").asText("CLIPImageProcessor");
    if (!type.equals("CLIPImageProcessor")) {
      throw new IllegalArgumentException(
          "image_processor_type " + type + " is not supported (CLIPImageProcessor only)");
    }
    return new PreprocessorConfig(
        n.path("do_resize").asBoolean(true),
        shortest,
        rh,
        rw,
        Resample.ofPilId(n.path("resample").asInt(d.resample().pilId())),
        n.path("do_center_crop").asBoolean(true),
        ch,
        cw,
        n.path("do_rescale").asBoolean(true),
        n.path("rescale_factor").asDouble(d.rescaleFactor()),
        n.path("do_normalize").asBoolean(true),
        doubles(n.path("image_mean"), d.imageMean()),
        doubles(n.path("image_std"), d.imageStd()),
        RescalePrecision.valueOf(
            n.path("rescale_precision").asText("float64").toUpperCase(java.util.Locale.ROOT)));
  }

  private static List<Double> doubles(JsonNode arr, List<Double> dflt) {
    if (!arr.isArray()) {
      return dflt;
    }
    Double[] v = new Double[arr.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = arr.get(i).asDouble();
    }
    return List.of(v);
  }
}
