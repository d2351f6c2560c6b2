package dev.tokenpress.datasets;

import java.util.List;

/**
 * The closed attribute vocabulary of ShapesVQA: shapes, colours, sizes, grid positions, numbers.
 */
public final class Vocabulary {
  private Vocabulary() {}

  /** Object shapes, in a fixed order (the index is the shape id). */
  public static final List<String> SHAPES = List.of("circle", "square", "triangle", "cross");

  /** Plural forms, index-aligned with {@link #SHAPES}. */
  public static final List<String> SHAPE_PLURALS =
      List.of("circles", "squares", "triangles", "crosses");

  /** Colour names, in a fixed order (the index is the colour id). */
  public static final List<String> COLORS =
      List.of("red", "green", "blue", "yellow", "purple", "cyan");

  /**
   * sRGB of each colour, index-aligned with {@link #COLORS}; chosen to stay distinct when
   * down-scaled.
   */
  public static final int[][] COLOR_RGB = {
    {220, 30, 30}, {30, 160, 50}, {30, 70, 230}, {240, 220, 30}, {140, 50, 200}, {30, 200, 220}
  };

  /** Object sizes, in a fixed order. */
  public static final List<String> SIZES = List.of("small", "large");

  /** Radius of each size as a fraction of a grid cell's side, index-aligned with {@link #SIZES}. */
  public static final double[] SIZE_RADIUS_FRACTION = {0.16, 0.36};

  /** Grid side: the image is a GRID × GRID board of cells, one object per cell at most. */
  public static final int GRID = 3;

  /** Position names of the 3×3 cells in row-major order. */
  public static final List<String> POSITIONS =
      List.of(
          "top left",
          "top",
          "top right",
          "left",
          "center",
          "right",
          "bottom left",
          "bottom",
          "bottom right");

  /** Number words for counts 0..4. */
  public static final List<String> NUMBERS = List.of("zero", "one", "two", "three", "four");

  /** Most objects a scene holds. */
  public static final int MAX_OBJECTS = 4;

  /** The position name of a grid cell. */
  public static String position(int row, int col) {
    return POSITIONS.get(row * GRID + col);
  }
}
