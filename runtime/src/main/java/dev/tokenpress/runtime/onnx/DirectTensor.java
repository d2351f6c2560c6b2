package dev.tokenpress.runtime.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import dev.tokenpress.runtime.RunnerException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;

/**
 * A reusable ORT tensor over a direct, native-order buffer: ORT reads inputs from it and writes
 * pinned outputs into it without copies, and the same tensor serves every call with the same shape.
 * Float or int64. Not thread-safe; close when done.
 */
public final class DirectTensor implements AutoCloseable {
  private final long[] shape;
  private final FloatBuffer floats;
  private final LongBuffer longs;
  private final OnnxTensor tensor;

  private DirectTensor(long[] shape, FloatBuffer floats, LongBuffer longs) {
    this.shape = shape.clone();
    this.floats = floats;
    this.longs = longs;
    try {
      this.tensor =
          floats != null
              ? OnnxTensor.createTensor(GraphSession.environment(), floats, shape)
              : OnnxTensor.createTensor(GraphSession.environment(), longs, shape);
    } catch (OrtException e) {
      throw new RunnerException("cannot create tensor of shape " + Arrays.toString(shape), e);
    }
  }

  public static DirectTensor floats(long... shape) {
    int n = elements(shape);
    FloatBuffer b =
        ByteBuffer.allocateDirect(Math.max(n, 1) * 4)
            .order(ByteOrder.nativeOrder())
            .asFloatBuffer();
    b.limit(n);
    return new DirectTensor(shape, b, null);
  }

  public static DirectTensor longs(long... shape) {
    int n = elements(shape);
    LongBuffer b =
        ByteBuffer.allocateDirect(Math.max(n, 1) * 8).order(ByteOrder.nativeOrder()).asLongBuffer();
    b.limit(n);
    return new DirectTensor(shape, null, b);
  }

  /** The ORT tensor (valid until {@link #close()}). */
  public OnnxTensor tensor() {
    return tensor;
  }

  public long[] shape() {
    return shape.clone();
  }

  public int size() {
    return elements(shape);
  }

  /** Copies {@code n} floats from {@code src[off..]} into the tensor from element 0. */
  public DirectTensor put(float[] src, int off, int n) {
    FloatBuffer dup = floats.duplicate();
    dup.position(0);
    dup.put(src, off, n);
    return this;
  }

  /** Copies {@code n} floats from {@code src[off..]} into the tensor from element {@code at}. */
  public DirectTensor putAt(int at, float[] src, int off, int n) {
    FloatBuffer dup = floats.duplicate();
    dup.position(at);
    dup.put(src, off, n);
    return this;
  }

  /** Copies {@code n} floats from element {@code from} of the tensor into {@code dst[off..]}. */
  public void get(int from, float[] dst, int off, int n) {
    FloatBuffer dup = floats.duplicate();
    dup.position(from);
    dup.get(dst, off, n);
  }

  public float get(int i) {
    return floats.get(i);
  }

  public void set(int i, float v) {
    floats.put(i, v);
  }

  public void setLong(int i, long v) {
    longs.put(i, v);
  }

  /** The float buffer (direct); absolute get/put only. */
  public FloatBuffer floatBuffer() {
    return floats;
  }

  private static int elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dim in shape " + Arrays.toString(shape));
      }
      n *= d;
    }
    if (n > Integer.MAX_VALUE / 8) {
      throw new IllegalArgumentException(
          "tensor of shape " + Arrays.toString(shape) + " is too large");
    }
    return (int) n;
  }

  @Override
  public void close() {
    tensor.close();
  }
}
