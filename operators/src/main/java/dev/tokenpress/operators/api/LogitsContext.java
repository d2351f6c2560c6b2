package dev.tokenpress.operators.api;

import dev.tokenpress.operators.tensor.FloatTensor;

/**
 * What an operator sees at {@link Hook#LOGITS}: the logits the next token will be chosen from at
 * generation step {@link #step()} (step 0: after prefill), after the operators before it in the
 * plan. An operator returns replacement logits of the same length, or null to keep them.
 *
 * @param shape the model
 * @param step 0-based generation step
 * @param logits {@code [vocab]}, read-only
 * @param generated token ids chosen so far (copy)
 * @param seed the per-record seed
 * @param branchLogits {@code [vocab]} logits of the operator's own {@link Hook#BRANCH} sequence at
 *     the same step (it has seen the same generated tokens), or null when the operator has none
 */
public record LogitsContext(
    ModelShape shape,
    int step,
    FloatTensor logits,
    int[] generated,
    long seed,
    FloatTensor branchLogits) {

  /** Rejects nulls and a branch of another vocabulary size. */
  public LogitsContext {
    if (shape == null || logits == null || generated == null) {
      throw new IllegalArgumentException("shape, logits and generated must not be null");
    }
    if (branchLogits != null && branchLogits.size() != logits.size()) {
      throw new IllegalArgumentException(
          "branch logits have " + branchLogits.size() + " values, logits " + logits.size());
    }
    generated = generated.clone();
  }

  /** A context without a branch. */
  public LogitsContext(ModelShape shape, int step, FloatTensor logits, int[] generated, long seed) {
    this(shape, step, logits, generated, seed, null);
  }
}
