package dev.tokenpress.datasets;

import java.awt.Shape;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The ShapesVQA generator: deterministic scenes of 1–4 coloured shapes on textured backgrounds,
 * each with a caption and six questions of five kinds (see {@code datasets/README.md}).
 *
 * <p>Every scene depends only on (seed, split, index): each split draws from its own seed stream,
 * so the content of a split never depends on the sizes of the others. Instances are immutable and
 * thread-safe.
 */
public final class ShapesVqa {

  /** The three fixed splits. */
  public static final List<String> SPLITS = List.of("train", "val", "test");

  private final long seed;
  private final int imageSize;

  /**
   * @param seed master seed
   * @param imageSize image side in pixels, at least 48
   */
  public ShapesVqa(long seed, int imageSize) {
    if (imageSize < 48 || imageSize > 4096) {
      throw new IllegalArgumentException("imageSize must be in [48, 4096], got " + imageSize);
    }
    this.seed = seed;
    this.imageSize = imageSize;
  }

  public long seed() {
    return seed;
  }

  public int imageSize() {
    return imageSize;
  }

  /** The scene {@code index} of {@code split}. */
  public Scene scene(String split, int index) {
    int splitId = SPLITS.indexOf(split);
    if (splitId < 0) {
      throw new IllegalArgumentException(
          "split must be one of " + SPLITS + ", got '" + split + "'");
    }
    if (index < 0) {
      throw new IllegalArgumentException("index must be >= 0, got " + index);
    }
    SplittableRandom rng = new SplittableRandom(mix(seed, splitId, index));
    String imageId = String.format("%s-%06d", split, index);
    List<SceneObject> objects = placeObjects(rng);
    byte[] mask = new byte[imageSize * imageSize];
    for (int k = 0; k < objects.size(); k++) {
      rasterize(outline(objects.get(k)), mask, (byte) (k + 1));
    }
    byte[] rgb = renderBackground(rng);
    paintObjects(objects, mask, rgb, rng);
    String caption = caption(objects);
    List<Question> questions = questions(imageId, objects, caption, rng);
    return new Scene(imageId, imageSize, objects, rgb, mask, caption, questions);
  }

  /** The caption of a list of objects in row-major order. */
  public static String caption(List<SceneObject> objects) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < objects.size(); i++) {
      sb.append(i == 0 ? "a " : ", a ").append(objects.get(i).phrase());
    }
    return sb.append('.').toString();
  }

  private static long mix(long seed, int splitId, int index) {
    long z =
        seed * 0x9E3779B97F4A7C15L
            + (splitId + 1) * 0xBF58476D1CE4E5B9L
            + index * 0x94D049BB133111EBL;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  private List<SceneObject> placeObjects(SplittableRandom rng) {
    int grid = Vocabulary.GRID;
    int count = 1 + rng.nextInt(Vocabulary.MAX_OBJECTS);
    int[] cells = new int[grid * grid];
    for (int i = 0; i < cells.length; i++) {
      cells[i] = i;
    }
    for (int i = cells.length - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      int t = cells[i];
      cells[i] = cells[j];
      cells[j] = t;
    }
    int[] chosen = java.util.Arrays.copyOf(cells, count);
    java.util.Arrays.sort(chosen);
    double cell = imageSize / (double) grid;
    List<SceneObject> objects = new ArrayList<>(count);
    for (int c : chosen) {
      int shape;
      int color;
      int size;
      do {
        shape = rng.nextInt(Vocabulary.SHAPES.size());
        color = rng.nextInt(Vocabulary.COLORS.size());
        size = rng.nextInt(Vocabulary.SIZES.size());
      } while (contains(objects, shape, color, size));
      int row = c / grid;
      int col = c % grid;
      double radius = Vocabulary.SIZE_RADIUS_FRACTION[size] * cell;
      // Triangles reach 1.15 r from the centre; keep one pixel clear of the cell border.
      double slack = Math.max(0.0, cell / 2 - radius * 1.15 - 1.0);
      double cx = (col + 0.5) * cell + (rng.nextDouble() * 2 - 1) * slack;
      double cy = (row + 0.5) * cell + (rng.nextDouble() * 2 - 1) * slack;
      objects.add(new SceneObject(shape, color, size, row, col, cx, cy, radius));
    }
    return objects;
  }

  private static boolean contains(List<SceneObject> objects, int shape, int color, int size) {
    for (SceneObject o : objects) {
      if (o.shape() == shape && o.color() == color && o.size() == size) {
        return true;
      }
    }
    return false;
  }

  private static Shape outline(SceneObject o) {
    double r = o.radius();
    double x = o.cx();
    double y = o.cy();
    switch (o.shapeName()) {
      case "circle":
        return new Ellipse2D.Double(x - r, y - r, 2 * r, 2 * r);
      case "square":
        double h = 0.9 * r;
        return new Rectangle2D.Double(x - h, y - h, 2 * h, 2 * h);
      case "triangle":
        double big = 1.15 * r;
        Path2D.Double p = new Path2D.Double();
        p.moveTo(x, y - big);
        p.lineTo(x + big * 0.866, y + big * 0.5);
        p.lineTo(x - big * 0.866, y + big * 0.5);
        p.closePath();
        return p;
      case "cross":
        double arm = 0.32 * r;
        java.awt.geom.Area a =
            new java.awt.geom.Area(new Rectangle2D.Double(x - r, y - arm, 2 * r, 2 * arm));
        a.add(new java.awt.geom.Area(new Rectangle2D.Double(x - arm, y - r, 2 * arm, 2 * r)));
        return a;
      default:
        throw new IllegalStateException("unknown shape " + o.shapeName());
    }
  }

  /** Sets {@code label} on every pixel whose centre lies inside {@code shape}. */
  private void rasterize(Shape shape, byte[] mask, byte label) {
    Rectangle2D b = shape.getBounds2D();
    int x0 = Math.max(0, (int) Math.floor(b.getMinX()));
    int x1 = Math.min(imageSize - 1, (int) Math.ceil(b.getMaxX()));
    int y0 = Math.max(0, (int) Math.floor(b.getMinY()));
    int y1 = Math.min(imageSize - 1, (int) Math.ceil(b.getMaxY()));
    for (int y = y0; y <= y1; y++) {
      for (int x = x0; x <= x1; x++) {
        if (shape.contains(x + 0.5, y + 0.5)) {
          mask[y * imageSize + x] = label;
        }
      }
    }
  }

  private byte[] renderBackground(SplittableRandom rng) {
    int n = imageSize;
    float[] px = new float[n * n * 3];
    double grey = 70 + rng.nextDouble() * 110;
    double[] base = new double[3];
    for (int ch = 0; ch < 3; ch++) {
      base[ch] = grey + (rng.nextDouble() * 2 - 1) * 15;
    }
    int texture = rng.nextInt(4);
    double amplitude = 8 + rng.nextDouble() * 14;
    double freq = 0.05 + rng.nextDouble() * 0.2;
    double angle = rng.nextDouble() * Math.PI;
    double phase = rng.nextDouble() * 2 * Math.PI;
    int checker = 6 + rng.nextInt(15);
    double noise = 6 + rng.nextDouble() * 10;
    double[] second = new double[3];
    for (int ch = 0; ch < 3; ch++) {
      second[ch] = 70 + rng.nextDouble() * 110;
    }
    double ca = Math.cos(angle);
    double sa = Math.sin(angle);
    for (int y = 0; y < n; y++) {
      for (int x = 0; x < n; x++) {
        int i = (y * n + x) * 3;
        for (int ch = 0; ch < 3; ch++) {
          double v = base[ch];
          switch (texture) {
            case 0: // per-pixel noise
              v += rng.nextGaussian() * noise;
              break;
            case 1: // sinusoidal stripes
              v += amplitude * Math.sin(2 * Math.PI * freq * (x * ca + y * sa) + phase);
              break;
            case 2: // low-contrast checkerboard
              v += ((x / checker + y / checker) % 2 == 0 ? 1 : -1) * amplitude * 0.6;
              break;
            default: // gradient towards a second muted colour
              double t = (x * ca + y * sa) / (n * 1.42) + 0.5;
              v = base[ch] * (1 - t) + second[ch] * t;
              break;
          }
          px[i + ch] = (float) (v + rng.nextGaussian() * 3);
        }
      }
    }
    byte[] rgb = new byte[px.length];
    for (int i = 0; i < px.length; i++) {
      rgb[i] = (byte) clamp(px[i]);
    }
    return rgb;
  }

  private void paintObjects(
      List<SceneObject> objects, byte[] mask, byte[] rgb, SplittableRandom rng) {
    for (int p = 0; p < mask.length; p++) {
      int label = mask[p];
      if (label == 0) {
        continue;
      }
      int[] c = Vocabulary.COLOR_RGB[objects.get(label - 1).color()];
      for (int ch = 0; ch < 3; ch++) {
        rgb[p * 3 + ch] = (byte) clamp(c[ch] + rng.nextGaussian() * 4);
      }
    }
  }

  private static int clamp(double v) {
    long r = Math.round(v);
    return (int) Math.max(0, Math.min(255, r));
  }

  private static List<Question> questions(
      String imageId, List<SceneObject> objects, String caption, SplittableRandom rng) {
    List<Question> out = new ArrayList<>(6);
    // exists: one present, one absent, in random order
    SceneObject present = objects.get(rng.nextInt(objects.size()));
    Question yes =
        new Question(
            null,
            "exists",
            "is there a " + present.colorName() + " " + present.shapeName() + "?",
            "yes");
    int[] absent = absentPair(objects, rng);
    Question no =
        new Question(
            null,
            "exists",
            "is there a "
                + Vocabulary.COLORS.get(absent[0])
                + " "
                + Vocabulary.SHAPES.get(absent[1])
                + "?",
            "no",
            absent[2] == 1 ? Question.ADVERSARIAL : Question.RANDOM);
    if (rng.nextBoolean()) {
      out.add(yes);
      out.add(no);
    } else {
      out.add(no);
      out.add(yes);
    }
    // color
    SceneObject target = objects.get(rng.nextInt(objects.size()));
    String colorQ;
    if (countShape(objects, target.shape()) == 1) {
      colorQ = "what color is the " + target.shapeName() + "?";
    } else if (countShapeSize(objects, target.shape(), target.size()) == 1) {
      colorQ = "what color is the " + target.sizeName() + " " + target.shapeName() + "?";
    } else {
      colorQ = "what color is the " + target.shapeName() + " at the " + target.positionName() + "?";
    }
    out.add(new Question(null, "color", colorQ, target.colorName()));
    // count
    if (rng.nextBoolean()) {
      out.add(
          new Question(
              null,
              "count",
              "how many objects are there?",
              Vocabulary.NUMBERS.get(objects.size())));
    } else {
      int shape =
          rng.nextBoolean()
              ? objects.get(rng.nextInt(objects.size())).shape()
              : rng.nextInt(Vocabulary.SHAPES.size());
      out.add(
          new Question(
              null,
              "count",
              "how many " + Vocabulary.SHAPE_PLURALS.get(shape) + " are there?",
              Vocabulary.NUMBERS.get(countShape(objects, shape))));
    }
    // position
    SceneObject where = objects.get(rng.nextInt(objects.size()));
    String posQ =
        countColorShape(objects, where.color(), where.shape()) == 1
            ? "where is the " + where.colorName() + " " + where.shapeName() + "?"
            : "where is the "
                + where.sizeName()
                + " "
                + where.colorName()
                + " "
                + where.shapeName()
                + "?";
    out.add(new Question(null, "position", posQ, where.positionName()));
    // caption
    out.add(new Question(null, "caption", "describe the image.", caption));
    List<Question> numbered = new ArrayList<>(out.size());
    for (int i = 0; i < out.size(); i++) {
      Question q = out.get(i);
      numbered.add(
          new Question(imageId + "-" + i, q.kind(), q.question(), q.answer(), q.sampling()));
    }
    return List.copyOf(numbered);
  }

  /**
   * An absent (colour, shape) pair: half the time adversarial (shares a shape or colour with the
   * scene). Returns {@code {colour, shape, 1}} when the adversarial draw produced it, {@code
   * {colour, shape, 0}} when the uniform one did (also after 32 adversarial attempts without an
   * absent pair); the label consumes no randomness, so the questions are those of earlier versions.
   */
  private static int[] absentPair(List<SceneObject> objects, SplittableRandom rng) {
    int nc = Vocabulary.COLORS.size();
    int ns = Vocabulary.SHAPES.size();
    if (rng.nextBoolean()) {
      SceneObject anchor = objects.get(rng.nextInt(objects.size()));
      boolean keepShape = rng.nextBoolean();
      for (int attempt = 0; attempt < 32; attempt++) {
        int color = keepShape ? rng.nextInt(nc) : anchor.color();
        int shape = keepShape ? anchor.shape() : rng.nextInt(ns);
        if (countColorShape(objects, color, shape) == 0) {
          return new int[] {color, shape, 1};
        }
      }
    }
    while (true) {
      int color = rng.nextInt(nc);
      int shape = rng.nextInt(ns);
      if (countColorShape(objects, color, shape) == 0) {
        return new int[] {color, shape, 0};
      }
    }
  }

  private static int countShape(List<SceneObject> objects, int shape) {
    int n = 0;
    for (SceneObject o : objects) {
      n += o.shape() == shape ? 1 : 0;
    }
    return n;
  }

  private static int countShapeSize(List<SceneObject> objects, int shape, int size) {
    int n = 0;
    for (SceneObject o : objects) {
      n += o.shape() == shape && o.size() == size ? 1 : 0;
    }
    return n;
  }

  private static int countColorShape(List<SceneObject> objects, int color, int shape) {
    int n = 0;
    for (SceneObject o : objects) {
      n += o.shape() == shape && o.color() == color ? 1 : 0;
    }
    return n;
  }
}
