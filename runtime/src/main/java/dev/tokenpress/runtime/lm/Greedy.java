package dev.tokenpress.runtime.lm;

import dev.tokenpress.runtime.RunnerException;

/** Greedy choice: the first index of the maximum (as llama2.c's argmax). */
final class Greedy {
  private Greedy() {}

  static int argmax(float[] logits) {
    int best = 0;
    float max = logits[0];
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > max) {
        max = logits[i];
        best = i;
      }
    }
    if (!Float.isFinite(max)) {
      throw new RunnerException("non-finite logits (max " + max + ")");
    }
    return best;
  }
}
