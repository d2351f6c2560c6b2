package dev.tokenpress.runtime.media;

import java.nio.FloatBuffer;

/**
 * A preprocessed image: float32, channels-first {@code [3, height, width]} (one image of the
 * model's {@code pixel_values}). Immutable.
 */
public final class PixelValues {
  private final int height;
  private final int width;
  private final float[] chw;

  /** Takes ownership of {@code chw}, {@code [3, height, width]} row-major. */
  public static PixelValues wrap(int height, int width, float[] chw) {
    return new PixelValues(height, width, chw);
  }

  private PixelValues(int height, int width, float[] chw) {
    if (chw.length != 3 * height * width) {
      throw new IllegalArgumentException(
          "chw has " + chw.length + " values, expected 3x" + height + "x" + width);
    }
    this.height = height;
    this.width = width;
    this.chw = chw;
  }

  public int channels() {
    return 3;
  }

  public int height() {
    return height;
  }

  public int width() {
    return width;
  }

  /** {@code {1, 3, height, width}}: the ONNX input shape of a batch of one. */
  public long[] batchShape() {
    return new long[] {1, 3, height, width};
  }

  public float get(int c, int y, int x) {
    return chw[(c * height + y) * width + x];
  }

  /** A copy of the CHW values. */
  public float[] toArray() {
    return chw.clone();
  }

  /** Copies the CHW values into {@code dst} at its position (which advances). */
  public void copyTo(FloatBuffer dst) {
    dst.put(chw);
  }

  /** Sum in float64, in CHW order (the {@code pixel_sum} of the bundled model's references). */
  public double sum() {
    double s = 0;
    for (float v : chw) {
      s += v;
    }
    return s;
  }

  @Override
  public String toString() {
    return "PixelValues(3x" + height + "x" + width + ")";
  }
}
