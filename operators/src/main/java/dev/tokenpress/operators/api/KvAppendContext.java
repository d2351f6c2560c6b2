package dev.tokenpress.operators.api;

import dev.tokenpress.operators.kv.KvCache;

/**
 * What an operator sees at {@link Hook#KV_APPEND}: the record's KV cache after decode step {@link
 * #step()} appended the new token to every layer. The operator may re-compress the cache in place
 * (e.g. ZipVL every 100 tokens).
 *
 * @param shape the model
 * @param step 0-based decode step that just ran
 * @param cache the record's KV cache (mutable)
 * @param seed the per-record seed
 * @param queries per LM layer, the query of the step that just ran ({@code lmHeads * headDim}
 *     floats, RoPE applied), or null when the runtime did not keep them
 */
public record KvAppendContext(
    ModelShape shape, int step, KvCache cache, long seed, float[][] queries) {

  /** Rejects nulls. */
  public KvAppendContext {
    if (shape == null || cache == null) {
      throw new IllegalArgumentException("shape and cache must not be null");
    }
    if (queries != null && queries.length != cache.numLayers()) {
      throw new IllegalArgumentException(
          "queries has " + queries.length + " layers, the cache " + cache.numLayers());
    }
  }

  /** A context without the step's queries. */
  public KvAppendContext(ModelShape shape, int step, KvCache cache, long seed) {
    this(shape, step, cache, seed, null);
  }
}
