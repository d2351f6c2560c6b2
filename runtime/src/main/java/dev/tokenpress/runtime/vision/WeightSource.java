package dev.tokenpress.runtime.vision;

/** Named float tensors of a checkpoint (row-major, Hugging Face names and shapes). */
public interface WeightSource {
  /** The tensor's values, converted to float. */
  float[] floats(String name);

  /** The tensor's shape. */
  long[] shape(String name);

  /** Whether the tensor exists. */
  boolean contains(String name);
}
