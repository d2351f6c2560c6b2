package dev.tokenpress.spark;

import java.util.Arrays;
import java.util.Objects;

/**
 * One stored tensor: little-endian, C-order bytes with their shape, element type and a layout
 * string naming the axes (e.g. {@code "H_kv,T,D"}). This is the {@code struct<data: binary,
 * shape: array<int>, dtype: string, layout: string>} of the Parquet output and the storage layout
 * of Arrow's canonical variable-shape tensor. Immutable: the arrays are owned by the instance and
 * must not be changed by callers after construction.
 */
public final class TensorData {
  private final byte[] data;
  private final int[] shape;
  private final DType dtype;
  private final String layout;

  private TensorData(byte[] data, int[] shape, DType dtype, String layout) {
    this.data = data;
    this.shape = shape;
    this.dtype = dtype;
    this.layout = layout;
  }

  /**
   * Wraps {@code data} (taking ownership) after checking that its length equals the element count
   * of {@code shape} times the element size, and that {@code layout} names one axis per dimension.
   */
  public static TensorData wrap(byte[] data, int[] shape, DType dtype, String layout) {
    Objects.requireNonNull(data, "data");
    Objects.requireNonNull(shape, "shape");
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(layout, "layout");
    long expected = elementCount(shape) * dtype.bytes();
    if (expected != data.length) {
      throw new IllegalArgumentException(
          "tensor data has " + data.length + " bytes, shape " + Arrays.toString(shape) + " of "
              + dtype.wireName() + " needs " + expected);
    }
    int axes = layout.isEmpty() ? 0 : layout.split(",", -1).length;
    if (axes != shape.length) {
      throw new IllegalArgumentException(
          "layout '" + layout + "' names " + axes + " axes, shape " + Arrays.toString(shape)
              + " has " + shape.length);
    }
    return new TensorData(data, shape.clone(), dtype, layout);
  }

  /** Product of the dimensions; throws on a negative dimension. */
  public static long elementCount(int[] shape) {
    long n = 1;
    for (int d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
      }
      n *= d;
    }
    return n;
  }

  /** The stored bytes (not copied: do not modify). */
  public byte[] data() {
    return data;
  }

  /** A copy of the shape. */
  public int[] shape() {
    return shape.clone();
  }

  public int dim(int axis) {
    return shape[axis];
  }

  public int rank() {
    return shape.length;
  }

  public DType dtype() {
    return dtype;
  }

  public String layout() {
    return layout;
  }

  public long elementCount() {
    return elementCount(shape);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorData t
        && dtype == t.dtype
        && layout.equals(t.layout)
        && Arrays.equals(shape, t.shape)
        && Arrays.equals(data, t.data);
  }

  @Override
  public int hashCode() {
    return Objects.hash(dtype, layout, Arrays.hashCode(shape), Arrays.hashCode(data));
  }

  @Override
  public String toString() {
    return "TensorData(" + dtype.wireName() + Arrays.toString(shape) + " " + layout + ")";
  }
}
