package dev.tokenpress.runtime.vision;

import dev.tokenpress.runtime.checkpoint.TensorStore;

/** Named float tensors of a checkpoint (row-major, Hugging Face names and shapes). */
public interface WeightSource {
  /** The tensor's values, converted to float. */
  float[] floats(String name);

  /** The tensor's shape. */
  long[] shape(String name);

  /** Whether the tensor exists. */
  boolean contains(String name);

  /** The tensors of a checkpoint directory (sharded or not). */
  static WeightSource of(TensorStore store) {
    return new WeightSource() {
      @Override
      public float[] floats(String name) {
        return store.floats(name);
      }

      @Override
      public long[] shape(String name) {
        return store.shape(name);
      }

      @Override
      public boolean contains(String name) {
        return store.contains(name);
      }
    };
  }
}
