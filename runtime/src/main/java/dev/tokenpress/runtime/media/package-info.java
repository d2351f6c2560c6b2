/**
 * Image decoding and preprocessing, pure Java.
 *
 * <p>{@link dev.tokenpress.runtime.media.ImageDecoder}: bytes → {@link
 * dev.tokenpress.runtime.media.RgbImage} (RGB8, HWC), format sniffed from magic bytes (PNG, JPEG
 * incl. grey and Adobe CMYK, GIF first frame, BMP, TIFF first page; WebP/HEIF/AVIF/JPEG
 * 2000/PSD/ICO are recognised and reported as UNSUPPORTED). The header is read first and images
 * above {@code maxPixels} are rejected before any pixel data is decoded. Pixel values equal
 * Pillow's {@code Image.open(f).convert("RGB")} for lossless formats (tested byte for byte on
 * generated images of every colour model); documented exceptions: 16-bit grey takes the high byte
 * (Pillow clips mode I to 255), JPEG goes through the JDK's libjpeg (max 4 levels from
 * libjpeg-turbo on the fixtures), alpha is dropped like Pillow unless {@link
 * dev.tokenpress.runtime.media.AlphaMode#COMPOSITE_WHITE} is chosen. Every failure is a {@link
 * dev.tokenpress.runtime.media.MediaDecodeException} with a reason (EMPTY, TRUNCATED, CORRUPT,
 * NOT_AN_IMAGE, TOO_LARGE, UNSUPPORTED), including truncated JPEGs that the JDK would silently
 * complete with grey.
 *
 * <p>{@link dev.tokenpress.runtime.media.ImagePreprocessor}: Hugging Face {@code
 * CLIPImageProcessor} semantics — shortest-edge resize with Pillow's resampling reproduced bit for
 * bit ({@code PilResize}: support-scaled filters when downscaling, 22-bit fixed-point weights,
 * horizontal then vertical pass with 8-bit rounding in between; every Pillow filter), centre crop
 * (floor offsets, zero padding as Hugging Face), rescale (float64 as Hugging Face, or float32 as
 * numpy/torch scripts), normalise in float32, CHW.
 */
package dev.tokenpress.runtime.media;
