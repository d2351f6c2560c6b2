package dev.tokenpress.datasets;

/**
 * One object of a scene.
 *
 * @param shape index into {@link Vocabulary#SHAPES}
 * @param color index into {@link Vocabulary#COLORS}
 * @param size index into {@link Vocabulary#SIZES}
 * @param row grid row, 0 = top
 * @param col grid column, 0 = left
 * @param cx centre x in pixels
 * @param cy centre y in pixels
 * @param radius nominal radius in pixels
 */
public record SceneObject(
    int shape, int color, int size, int row, int col, double cx, double cy, double radius) {

  public String shapeName() {
    return Vocabulary.SHAPES.get(shape);
  }

  public String colorName() {
    return Vocabulary.COLORS.get(color);
  }

  public String sizeName() {
    return Vocabulary.SIZES.get(size);
  }

  public String positionName() {
    return Vocabulary.position(row, col);
  }

  /** "large red circle at the top left". */
  public String phrase() {
    return sizeName() + " " + colorName() + " " + shapeName() + " at the " + positionName();
  }
}
