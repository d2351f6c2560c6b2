package dev.tokenpress.runtime.media;

/** What an image header says, read without decoding pixel data. */
public record ImageInfo(ImageFormat format, int width, int height) {
  public long pixels() {
    return (long) width * height;
  }
}
