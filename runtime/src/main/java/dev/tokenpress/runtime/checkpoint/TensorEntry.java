package dev.tokenpress.runtime.checkpoint;

import java.util.Arrays;

/** One tensor in a safetensors file: dtype, shape and the absolute byte range of its data. */
public final class TensorEntry {
  private final String name;
  private final DType dtype;
  private final long[] shape;
  private final long begin;
  private final long end;

  TensorEntry(String name, DType dtype, long[] shape, long begin, long end) {
    this.name = name;
    this.dtype = dtype;
    this.shape = shape.clone();
    this.begin = begin;
    this.end = end;
    long expected = elementCount() * dtype.bytes();
    if (end - begin != expected) {
      throw new IllegalArgumentException(
          "tensor "
              + name
              + " has "
              + (end - begin)
              + " bytes, its shape "
              + Arrays.toString(shape)
              + " of "
              + dtype
              + " needs "
              + expected);
    }
  }

  public String name() {
    return name;
  }

  public DType dtype() {
    return dtype;
  }

  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  public long dim(int i) {
    return shape[i];
  }

  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** Absolute file offset of the first data byte. */
  long begin() {
    return begin;
  }

  @Override
  public String toString() {
    return name + ":" + dtype + Arrays.toString(shape);
  }
}
