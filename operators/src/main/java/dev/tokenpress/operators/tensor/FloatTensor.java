package dev.tokenpress.operators.tensor;

import java.util.Arrays;

/**
 * An immutable, row-major view over a {@code float[]} with an explicit shape.
 *
 * <p>A final class rather than a record: a record holding an array would get identity {@code
 * equals} and would hand out the mutable array. {@link #wrap} takes ownership of the array (the
 * caller must not write to it afterwards); {@link #copyOf} copies. Nothing in this class writes to
 * the array, and no accessor exposes it, so a tensor can be shared between threads and handed to
 * any operator without defensive copies.
 *
 * <p>Rank 0 is not supported; a vector has rank 1.
 */
public final class FloatTensor {

  private final float[] data;
  private final int[] shape;

  private FloatTensor(float[] data, int[] shape) {
    this.data = data;
    this.shape = shape;
  }

  /**
   * Wraps {@code data} without copying. The caller hands over ownership and must not modify the
   * array afterwards.
   *
   * @throws IllegalArgumentException if the shape is empty, has a negative dimension, or its
   *     product differs from {@code data.length}
   */
  public static FloatTensor wrap(float[] data, int... shape) {
    if (data == null) {
      throw new IllegalArgumentException("data must not be null");
    }
    int[] s = checkShape(shape);
    long product = 1;
    for (int d : s) {
      product *= d;
    }
    if (product != data.length) {
      throw new IllegalArgumentException(
          "shape " + Arrays.toString(s) + " has " + product + " elements, data has " + data.length);
    }
    return new FloatTensor(data, s);
  }

  /** Like {@link #wrap} but copies {@code data} first. */
  public static FloatTensor copyOf(float[] data, int... shape) {
    if (data == null) {
      throw new IllegalArgumentException("data must not be null");
    }
    return wrap(data.clone(), shape);
  }

  /** A rank-1 tensor over a copy of {@code values}. */
  public static FloatTensor vector(float... values) {
    return copyOf(values, values.length);
  }

  private static int[] checkShape(int[] shape) {
    if (shape == null || shape.length == 0) {
      throw new IllegalArgumentException("shape must have at least one dimension");
    }
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        throw new IllegalArgumentException(
            "shape " + Arrays.toString(shape) + " has a negative dimension at " + i);
      }
    }
    return shape.clone();
  }

  /** Number of dimensions. */
  public int rank() {
    return shape.length;
  }

  /** Size of dimension {@code i}. */
  public int dim(int i) {
    if (i < 0 || i >= shape.length) {
      throw new IndexOutOfBoundsException(
          "dimension " + i + " of a rank-" + shape.length + " tensor");
    }
    return shape[i];
  }

  /** A copy of the shape. */
  public int[] shape() {
    return shape.clone();
  }

  /** Total number of elements. */
  public int size() {
    return data.length;
  }

  /** Element at flat (row-major) index {@code i}. */
  public float get(int i) {
    return data[i];
  }

  /** Element {@code [r, c]} of a rank-2 tensor. */
  public float get(int r, int c) {
    if (shape.length != 2) {
      throw new IllegalStateException(
          "get(r, c) needs a rank-2 tensor, shape is " + Arrays.toString(shape));
    }
    if (r < 0 || r >= shape[0] || c < 0 || c >= shape[1]) {
      throw new IndexOutOfBoundsException(
          "[" + r + ", " + c + "] outside shape " + Arrays.toString(shape));
    }
    return data[r * shape[1] + c];
  }

  /** Number of elements in one slice along dimension 0 (the product of the other dimensions). */
  public int rowSize() {
    return shape[0] == 0 ? product(1) : data.length / shape[0];
  }

  private int product(int from) {
    int p = 1;
    for (int i = from; i < shape.length; i++) {
      p *= shape[i];
    }
    return p;
  }

  /** A copy of slice {@code r} along dimension 0, flattened. */
  public float[] row(int r) {
    if (r < 0 || r >= shape[0]) {
      throw new IndexOutOfBoundsException("row " + r + " of " + shape[0]);
    }
    int n = rowSize();
    return Arrays.copyOfRange(data, r * n, r * n + n);
  }

  /** Copies {@code length} elements starting at flat index {@code from} into {@code dst}. */
  public void copyTo(int from, float[] dst, int dstOffset, int length) {
    System.arraycopy(data, from, dst, dstOffset, length);
  }

  /**
   * A new tensor made of the given slices along dimension 0, in the given order.
   *
   * @throws IndexOutOfBoundsException if a row index is outside {@code [0, dim(0))}
   */
  public FloatTensor selectRows(int[] rows) {
    int n = rowSize();
    float[] out = new float[rows.length * n];
    for (int i = 0; i < rows.length; i++) {
      int r = rows[i];
      if (r < 0 || r >= shape[0]) {
        throw new IndexOutOfBoundsException("row " + r + " of " + shape[0]);
      }
      System.arraycopy(data, r * n, out, i * n, n);
    }
    int[] s = shape.clone();
    s[0] = rows.length;
    return new FloatTensor(out, s);
  }

  /** A copy of all elements in row-major order. */
  public float[] toArray() {
    return data.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof FloatTensor t
        && Arrays.equals(shape, t.shape)
        && Arrays.equals(data, t.data);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("FloatTensor").append(Arrays.toString(shape)).append('[');
    int shown = Math.min(data.length, 8);
    for (int i = 0; i < shown; i++) {
      if (i > 0) {
        sb.append(", ");
      }
      sb.append(data[i]);
    }
    if (data.length > shown) {
      sb.append(", ...");
    }
    return sb.append(']').toString();
  }
}
