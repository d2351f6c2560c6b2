package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.kv.KvCache;
import java.util.ArrayList;
import java.util.List;

/**
 * Result of one generation: generated token ids (stop token excluded), why it stopped, FLOPs,
 * timings, the KV cache and, if requested, the logits of every step.
 *
 * <p>The KV cache holds the prompt and every generated token that went back through the decoder:
 * all of them when a stop token ended generation (the stop token itself is never fed), all but the
 * last when {@link StopReason#MAX_NEW_TOKENS} or {@link StopReason#CONTEXT_LIMIT} did. {@code
 * kvCache().nextPosition()} is the position of the next token to feed. Null for runners that do not
 * own a cache (the fused variant).
 */
public final class GenerationResult {
  private final int[] tokenIds;
  private final StopReason stopReason;
  private final int promptRows;
  private final LmFlops flops;
  private final StageTimings timings;
  private final KvCache kvCache;
  private final List<float[]> stepLogits;

  GenerationResult(
      int[] tokenIds,
      StopReason stopReason,
      int promptRows,
      LmFlops flops,
      StageTimings timings,
      KvCache kvCache,
      List<float[]> stepLogits) {
    this.tokenIds = tokenIds.clone();
    this.stopReason = stopReason;
    this.promptRows = promptRows;
    this.flops = flops;
    this.timings = timings;
    this.kvCache = kvCache;
    this.stepLogits = stepLogits == null ? null : List.copyOf(stepLogits);
  }

  public int[] tokenIds() {
    return tokenIds.clone();
  }

  public StopReason stopReason() {
    return stopReason;
  }

  public int promptRows() {
    return promptRows;
  }

  public LmFlops flops() {
    return flops;
  }

  public StageTimings timings() {
    return timings;
  }

  public KvCache kvCache() {
    return kvCache;
  }

  /** Logits before each choice (step 0 = after prefill), or null if not recorded. Copies. */
  public List<float[]> stepLogits() {
    if (stepLogits == null) {
      return null;
    }
    List<float[]> out = new ArrayList<>(stepLogits.size());
    for (float[] l : stepLogits) {
      out.add(l.clone());
    }
    return out;
  }
}
