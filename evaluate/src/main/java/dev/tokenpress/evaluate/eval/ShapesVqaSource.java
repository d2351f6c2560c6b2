package dev.tokenpress.evaluate.eval;

import dev.tokenpress.datasets.Scene;
import dev.tokenpress.datasets.ShapesVqa;
import dev.tokenpress.datasets.ShapesVqaWriter;
import dev.tokenpress.runtime.media.RgbImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import javax.imageio.ImageIO;

/**
 * ShapesVQA scenes for benchmarks and evaluation, generated (deterministically) rather than read
 * from disk: seed {@value #TEST_SEED} and 128-pixel images give exactly the test split the bundled
 * model was trained and evaluated against ({@code /work/data/shapesvqa/test}).
 */
public final class ShapesVqaSource {
  /** Seed of the dataset the bundled model was trained on. */
  public static final long TEST_SEED = 1234L;

  private final ShapesVqa generator;
  private final long seed;
  private final String split;

  public ShapesVqaSource(long seed, int imageSize, String split) {
    if (!ShapesVqa.SPLITS.contains(split)) {
      throw new IllegalArgumentException(
          "split must be one of " + ShapesVqa.SPLITS + ", found '" + split + "'");
    }
    this.generator = new ShapesVqa(seed, imageSize);
    this.seed = seed;
    this.split = split;
  }

  /** The bundled model's test split. */
  public static ShapesVqaSource test() {
    return new ShapesVqaSource(TEST_SEED, 128, "test");
  }

  /** The generator seed of the dataset. */
  public long seed() {
    return seed;
  }

  public String split() {
    return split;
  }

  public Scene scene(int index) {
    return generator.scene(split, index);
  }

  /** The scene's pixels as the runtime's RGB image (no encoding round trip). */
  public static RgbImage image(Scene scene) {
    return RgbImage.wrap(scene.size(), scene.size(), scene.rgb());
  }

  /** The scene as PNG bytes, as stored on disk by the dataset writer (lossless). */
  public static byte[] png(Scene scene) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      if (!ImageIO.write(ShapesVqaWriter.toImage(scene), "png", out)) {
        throw new IllegalStateException("no PNG writer available");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot encode scene " + scene.imageId() + " as PNG", e);
    }
    return out.toByteArray();
  }
}
