package dev.tokenpress.operators.api;

import dev.tokenpress.operators.kv.KvCache;

/**
 * What an operator sees at {@link Hook#KV_FINALIZE}: the KV cache right after prefill, before the
 * first decode step, and the final prefill layout. The operator may change the cache in place
 * (per-layer keep sets with {@link dev.tokenpress.operators.kv.LayerKvCache#retain}, re-coding,
 * mixed precision); the cache is the record's own, the only input an operator may modify.
 *
 * @param shape the model
 * @param layout the rows of the last prefill layer
 * @param cache the record's KV cache (mutable)
 * @param seed the per-record seed
 */
public record KvFinalizeContext(ModelShape shape, SequenceLayout layout, KvCache cache, long seed) {

  /** Rejects nulls. */
  public KvFinalizeContext {
    if (shape == null || layout == null || cache == null) {
      throw new IllegalArgumentException("shape, layout and cache must not be null");
    }
  }
}
