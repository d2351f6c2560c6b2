package dev.tokenpress.runtime.media;

import dev.tokenpress.runtime.media.MediaDecodeException.Reason;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.event.IIOReadWarningListener;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Decodes encoded image bytes (PNG, JPEG, GIF, BMP, TIFF) into an 8-bit {@link RgbImage}, with the
 * pixel values Pillow's {@code Image.open(f).convert("RGB")} gives, which is what the bundled
 * model's training script feeds the model.
 *
 * <p>Rules, per colour model (stored sample values are used as they are: no ICC profile, gamma
 * chunk or EXIF orientation is applied, exactly like Pillow's {@code convert}):
 *
 * <ul>
 *   <li>RGB 8-bit: as stored. RGB 16-bit: the high byte of every sample (Pillow's {@code RGB;16B}
 *       unpacker does the same).
 *   <li>Grey 1/2/4/8-bit: {@code v * 255 / (2^bits - 1)}, replicated to R, G, B. Grey 16-bit: the
 *       high byte (Pillow 9 opens it as mode {@code I} and clips to 255, nearly white; we do not
 *       copy that).
 *   <li>Palette (PNG, GIF, BMP): the palette colour of every index.
 *   <li>CMYK JPEG (Adobe, as the JDK reader returns it): Pillow's naive conversion {@code R = (255
 *       - C) * (255 - K) / 255} in its integer form.
 *   <li>Alpha (RGBA, grey+alpha, palette transparency): {@link AlphaMode#DROP} (Pillow) keeps the
 *       stored colour, {@link AlphaMode#COMPOSITE_WHITE} composites over white.
 *   <li>GIF and TIFF: the first frame / page. JPEG: the JDK's libjpeg 6b IDCT; values can differ
 *       from Pillow's libjpeg-turbo by a few levels on some pixels.
 * </ul>
 *
 * <p>Errors are typed ({@link MediaDecodeException} with a {@link Reason}), never a crash: zero
 * bytes, bytes of no known format, truncated or corrupt data (including JPEGs the JDK would
 * silently complete with grey), and images over {@link DecodeOptions#maxPixels()}, which are
 * rejected after reading only the header.
 *
 * <p>Thread-safe: no state besides the immutable options.
 */
public final class ImageDecoder {
  static {
    // Load the ImageIO registry and the readers once, not inside the first record's timing.
    for (ImageFormat f : ImageFormat.values()) {
      if (f.jdkSupported()) {
        ImageIO.getImageReadersByFormatName(f.imageIoName());
      }
    }
  }

  private final DecodeOptions options;

  public ImageDecoder(DecodeOptions options) {
    if (options == null) {
      throw new IllegalArgumentException("options must not be null");
    }
    this.options = options;
  }

  public ImageDecoder() {
    this(DecodeOptions.DEFAULT);
  }

  public DecodeOptions options() {
    return options;
  }

  /** Reads and decodes a file; its size is checked against {@code maxBytes} before reading. */
  public RgbImage decode(Path file) {
    return decode(readBounded(file));
  }

  /** Decodes {@code bytes}; see the class comment for the colour rules and errors. */
  public RgbImage decode(byte[] bytes) {
    ImageFormat format = checkAndSniff(bytes);
    ImageReader reader = readerFor(format);
    try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes))) {
      reader.setInput(in, true, true);
      ImageInfo info = header(reader, format);
      checkPixels(info);
      List<String> warnings = new ArrayList<>();
      IIOReadWarningListener listener = (source, warning) -> warnings.add(warning);
      reader.addIIOReadWarningListener(listener);
      ImageReadParam param = reader.getDefaultReadParam();
      BufferedImage image = reader.read(0, param);
      for (String w : warnings) {
        String lw = w.toLowerCase(Locale.ROOT);
        if (lw.contains("premature") || lw.contains("end of") || lw.contains("truncat")) {
          throw new MediaDecodeException(Reason.TRUNCATED, format + " data ends early (" + w + ")");
        }
        if (lw.contains("corrupt")) {
          throw new MediaDecodeException(Reason.CORRUPT, format + " data is corrupt (" + w + ")");
        }
      }
      if (image.getWidth() != info.width() || image.getHeight() != info.height()) {
        throw new MediaDecodeException(
            Reason.CORRUPT,
            format
                + " header says "
                + info.width()
                + "x"
                + info.height()
                + " but the decoded image is "
                + image.getWidth()
                + "x"
                + image.getHeight());
      }
      return toRgb(image, options.alphaMode());
    } catch (MediaDecodeException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      throw classify(format, "decoding", e);
    } catch (OutOfMemoryError e) {
      // Only after the pixel limit passed, so the heap is smaller than the configured limit needs.
      throw new MediaDecodeException(
          Reason.TOO_LARGE,
          format
              + " image does not fit in the heap "
              + "(maxPixels="
              + options.maxPixels()
              + " is too high for this JVM)",
          e);
    } finally {
      reader.dispose();
    }
  }

  /** Format and size from the header only; applies the byte limit, not the pixel limit. */
  public ImageInfo probe(byte[] bytes) {
    ImageFormat format = checkAndSniff(bytes);
    ImageReader reader = readerFor(format);
    try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes))) {
      reader.setInput(in, true, true);
      return header(reader, format);
    } catch (IOException e) {
      throw classify(format, "reading the header of", e);
    } finally {
      reader.dispose();
    }
  }

  private byte[] readBounded(Path file) {
    try {
      long size = Files.size(file);
      if (size > options.maxBytes()) {
        throw new MediaDecodeException(
            Reason.TOO_LARGE,
            file + " has " + size + " bytes, above maxBytes=" + options.maxBytes());
      }
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read image file " + file, e);
    }
  }

  private ImageFormat checkAndSniff(byte[] bytes) {
    if (bytes == null || bytes.length == 0) {
      throw new MediaDecodeException(Reason.EMPTY, "image has zero bytes");
    }
    if (bytes.length > options.maxBytes()) {
      throw new MediaDecodeException(
          Reason.TOO_LARGE,
          "image has " + bytes.length + " bytes, above maxBytes=" + options.maxBytes());
    }
    ImageFormat format = ImageFormat.sniff(bytes);
    if (format == null) {
      throw new MediaDecodeException(
          Reason.NOT_AN_IMAGE,
          "no image format recognises the first bytes "
              + hexPrefix(bytes)
              + " ("
              + bytes.length
              + " bytes)");
    }
    return format;
  }

  private static ImageReader readerFor(ImageFormat format) {
    Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format.imageIoName());
    if (!readers.hasNext()) {
      throw new MediaDecodeException(
          Reason.UNSUPPORTED,
          format
              + " images are not supported "
              + "(supported: PNG, JPEG, GIF, BMP, TIFF); convert them first");
    }
    return readers.next();
  }

  private static ImageInfo header(ImageReader reader, ImageFormat format) throws IOException {
    if (reader.getNumImages(false) == 0) {
      throw new MediaDecodeException(Reason.CORRUPT, format + " file holds no image");
    }
    int width = reader.getWidth(0);
    int height = reader.getHeight(0);
    if (width <= 0 || height <= 0) {
      throw new MediaDecodeException(
          Reason.CORRUPT, format + " header has size " + width + "x" + height);
    }
    return new ImageInfo(format, width, height);
  }

  private void checkPixels(ImageInfo info) {
    if (info.pixels() > options.maxPixels()) {
      throw new MediaDecodeException(
          Reason.TOO_LARGE,
          info.format()
              + " image is "
              + info.width()
              + "x"
              + info.height()
              + " = "
              + info.pixels()
              + " pixels, above maxPixels="
              + options.maxPixels());
    }
  }

  private static MediaDecodeException classify(ImageFormat format, String doing, Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof EOFException
          || String.valueOf(t.getMessage()).toLowerCase(Locale.ROOT).contains("end of")) {
        return new MediaDecodeException(
            Reason.TRUNCATED, format + " data ends early while " + doing + " it: " + e, e);
      }
    }
    return new MediaDecodeException(
        Reason.CORRUPT, format + " data is invalid while " + doing + " it: " + e, e);
  }

  private static String hexPrefix(byte[] b) {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < Math.min(8, b.length); i++) {
      s.append(String.format(Locale.ROOT, "%02x", b[i] & 0xFF));
    }
    return s.toString();
  }

  // ---- colour conversion -------------------------------------------------------------------

  static RgbImage toRgb(BufferedImage image, AlphaMode alphaMode) {
    int w = image.getWidth();
    int h = image.getHeight();
    Raster raster = image.getRaster();
    ColorModel cm = image.getColorModel();
    byte[] out = new byte[w * h * 3];
    boolean composite = alphaMode == AlphaMode.COMPOSITE_WHITE && cm.hasAlpha();
    if (cm instanceof IndexColorModel icm) {
      fromPalette(raster, icm, composite, out, w, h);
      return RgbImage.wrap(w, h, out);
    }
    int type = cm.getColorSpace().getType();
    int colours = cm.getNumColorComponents();
    if (type == ColorSpace.TYPE_GRAY && colours == 1) {
      fromComponents(raster, cm, new int[] {0, 0, 0}, composite ? 1 : -1, out, w, h);
    } else if (type == ColorSpace.TYPE_RGB && colours == 3) {
      fromComponents(raster, cm, new int[] {0, 1, 2}, composite ? 3 : -1, out, w, h);
    } else if (type == ColorSpace.TYPE_CMYK && colours == 4 && !cm.hasAlpha()) {
      fromCmyk(raster, cm, out, w, h);
    } else {
      // Any other colour space (YCbCr TIFF, custom ICC spaces): let Java2D convert to sRGB.
      fromJava2d(image, composite, out, w, h);
    }
    return RgbImage.wrap(w, h, out);
  }

  private static void fromPalette(
      Raster raster, IndexColorModel icm, boolean composite, byte[] out, int w, int h) {
    int n = icm.getMapSize();
    int[] r = new int[n];
    int[] g = new int[n];
    int[] b = new int[n];
    for (int i = 0; i < n; i++) {
      int a = icm.getAlpha(i);
      r[i] = composite ? over(icm.getRed(i), a) : icm.getRed(i);
      g[i] = composite ? over(icm.getGreen(i), a) : icm.getGreen(i);
      b[i] = composite ? over(icm.getBlue(i), a) : icm.getBlue(i);
    }
    int[] row = new int[w];
    int o = 0;
    for (int y = 0; y < h; y++) {
      raster.getSamples(0, y, w, 1, 0, row);
      for (int x = 0; x < w; x++) {
        int idx = row[x] < n ? row[x] : 0;
        out[o++] = (byte) r[idx];
        out[o++] = (byte) g[idx];
        out[o++] = (byte) b[idx];
      }
    }
  }

  /**
   * Copies colour bands {@code bands[c]} (with alpha band {@code alphaBand} for compositing, or -1)
   * into R, G, B, scaling each band from its bit depth to 8 bits.
   */
  private static void fromComponents(
      Raster raster, ColorModel cm, int[] bands, int alphaBand, byte[] out, int w, int h) {
    int dataType = raster.getDataBuffer().getDataType();
    boolean floating = dataType == DataBuffer.TYPE_FLOAT || dataType == DataBuffer.TYPE_DOUBLE;
    int[][] rows = new int[3][];
    int[] alpha = alphaBand >= 0 ? new int[w] : null;
    int alphaBits = alphaBand >= 0 ? cm.getComponentSize(alphaBand) : 8;
    float[] frow = floating ? new float[w] : null;
    for (int c = 0; c < 3; c++) {
      rows[c] = (c > 0 && bands[c] == bands[c - 1]) ? rows[c - 1] : new int[w];
    }
    int o = 0;
    for (int y = 0; y < h; y++) {
      for (int c = 0; c < 3; c++) {
        if (c > 0 && bands[c] == bands[c - 1]) {
          continue;
        }
        if (floating) {
          raster.getSamples(0, y, w, 1, bands[c], frow);
          for (int x = 0; x < w; x++) {
            rows[c][x] = Math.max(0, Math.min(255, Math.round(frow[x] * 255f)));
          }
        } else {
          raster.getSamples(0, y, w, 1, bands[c], rows[c]);
          to8Bit(rows[c], cm.getComponentSize(bands[c]));
        }
      }
      if (alpha != null) {
        raster.getSamples(0, y, w, 1, alphaBand, alpha);
        to8Bit(alpha, alphaBits);
      }
      for (int x = 0; x < w; x++) {
        if (alpha == null) {
          out[o++] = (byte) rows[0][x];
          out[o++] = (byte) rows[1][x];
          out[o++] = (byte) rows[2][x];
        } else {
          out[o++] = (byte) over(rows[0][x], alpha[x]);
          out[o++] = (byte) over(rows[1][x], alpha[x]);
          out[o++] = (byte) over(rows[2][x], alpha[x]);
        }
      }
    }
  }

  /**
   * Scales samples of {@code bits} bits to 0..255 in place: high byte above 8 bits, exact below.
   */
  private static void to8Bit(int[] v, int bits) {
    if (bits == 8) {
      return;
    }
    if (bits > 8) {
      int shift = bits - 8;
      for (int i = 0; i < v.length; i++) {
        v[i] = v[i] >>> shift;
      }
    } else {
      int max = (1 << bits) - 1;
      for (int i = 0; i < v.length; i++) {
        v[i] = v[i] * 255 / max;
      }
    }
  }

  /** Pillow's {@code cmyk2rgb}: {@code nk - MULDIV255(c, nk)} with {@code nk = 255 - k}. */
  private static void fromCmyk(Raster raster, ColorModel cm, byte[] out, int w, int h) {
    int[][] rows = new int[4][w];
    int o = 0;
    for (int y = 0; y < h; y++) {
      for (int c = 0; c < 4; c++) {
        raster.getSamples(0, y, w, 1, c, rows[c]);
        to8Bit(rows[c], cm.getComponentSize(c));
      }
      for (int x = 0; x < w; x++) {
        int nk = 255 - rows[3][x];
        for (int c = 0; c < 3; c++) {
          int v = nk - muldiv255(rows[c][x], nk);
          out[o++] = (byte) Math.max(0, Math.min(255, v));
        }
      }
    }
  }

  private static void fromJava2d(BufferedImage image, boolean composite, byte[] out, int w, int h) {
    int[] row = new int[w];
    int o = 0;
    for (int y = 0; y < h; y++) {
      image.getRGB(0, y, w, 1, row, 0, w);
      for (int x = 0; x < w; x++) {
        int argb = row[x];
        int a = argb >>> 24;
        int r = (argb >> 16) & 0xFF;
        int g = (argb >> 8) & 0xFF;
        int b = argb & 0xFF;
        out[o++] = (byte) (composite ? over(r, a) : r);
        out[o++] = (byte) (composite ? over(g, a) : g);
        out[o++] = (byte) (composite ? over(b, a) : b);
      }
    }
  }

  /**
   * Colour {@code c} with alpha {@code a} over white, rounded: {@code (c*a + 255*(255-a)) / 255}.
   */
  static int over(int c, int a) {
    return (c * a + 255 * (255 - a) + 127) / 255;
  }

  /** Pillow's MULDIV255: {@code round(a * b / 255)} in integer arithmetic. */
  private static int muldiv255(int a, int b) {
    int tmp = a * b + 128;
    return (tmp + (tmp >> 8)) >> 8;
  }
}
