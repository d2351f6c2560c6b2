package dev.tokenpress.runtime.media;

/**
 * Image container formats recognised from their leading bytes. The decoder trusts the bytes, never
 * a file name or a declared MIME type.
 */
public enum ImageFormat {
  PNG("png", true),
  JPEG("jpeg", true),
  GIF("gif", true),
  BMP("bmp", true),
  TIFF("tiff", true),
  WEBP("webp", false),
  HEIF("heif", false),
  AVIF("avif", false),
  JPEG2000("jpeg2000", false),
  PSD("psd", false),
  ICO("ico", false);

  private final String imageIoName;
  private final boolean supported;

  ImageFormat(String imageIoName, boolean supported) {
    this.imageIoName = imageIoName;
    this.supported = supported;
  }

  /** The ImageIO format name whose reader decodes this format. */
  String imageIoName() {
    return imageIoName;
  }

  /**
   * Whether the JDK's ImageIO decodes it (others are reported as UNSUPPORTED unless a plugin is
   * present).
   */
  public boolean jdkSupported() {
    return supported;
  }

  /** The format of {@code b} from its magic bytes, or {@code null} if none matches. */
  public static ImageFormat sniff(byte[] b) {
    if (startsWith(b, 0, 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A)) {
      return PNG;
    }
    if (startsWith(b, 0, 0xFF, 0xD8, 0xFF)) {
      return JPEG;
    }
    if (startsWith(b, 0, 'G', 'I', 'F', '8', '7', 'a')
        || startsWith(b, 0, 'G', 'I', 'F', '8', '9', 'a')) {
      return GIF;
    }
    if (startsWith(b, 0, 'B', 'M') && b.length >= 18) {
      return BMP;
    }
    if (startsWith(b, 0, 'I', 'I', 0x2A, 0x00) || startsWith(b, 0, 'M', 'M', 0x00, 0x2A)) {
      return TIFF;
    }
    if (startsWith(b, 0, 'R', 'I', 'F', 'F') && startsWith(b, 8, 'W', 'E', 'B', 'P')) {
      return WEBP;
    }
    if (startsWith(b, 4, 'f', 't', 'y', 'p')) {
      if (startsWith(b, 8, 'a', 'v', 'i', 'f') || startsWith(b, 8, 'a', 'v', 'i', 's')) {
        return AVIF;
      }
      if (startsWith(b, 8, 'h', 'e', 'i')
          || startsWith(b, 8, 'm', 'i', 'f', '1')
          || startsWith(b, 8, 'h', 'e', 'v')) {
        return HEIF;
      }
    }
    if (startsWith(b, 0, 0x00, 0x00, 0x00, 0x0C, 'j', 'P', ' ', ' ')
        || startsWith(b, 0, 0xFF, 0x4F, 0xFF, 0x51)) {
      return JPEG2000;
    }
    if (startsWith(b, 0, '8', 'B', 'P', 'S')) {
      return PSD;
    }
    if (startsWith(b, 0, 0x00, 0x00, 0x01, 0x00) && b.length >= 22) {
      return ICO;
    }
    return null;
  }

  private static boolean startsWith(byte[] b, int offset, int... magic) {
    if (b.length < offset + magic.length) {
      return false;
    }
    for (int i = 0; i < magic.length; i++) {
      if ((b[offset + i] & 0xFF) != magic[i]) {
        return false;
      }
    }
    return true;
  }
}
