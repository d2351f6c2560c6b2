package dev.tokenpress.spark;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What the runtime produced for one record: the answer and its token ids, per-stage token counts
 * and token maps, FLOPs, timings, and the compressed KV cache as chunks (one or more per layer).
 * Plain Java values only: no native or ONNX objects escape the runtime.
 */
public final class RecordResult {
  private final String answer;
  private final int[] answerTokenIds;
  private final List<StageCount> stages;
  private final List<KeptTokens> keptMaps;
  private final Flops flops;
  private final Map<String, Double> timingsMs;
  private final List<KvChunk> kv;
  private final int nextPosition;

  /** Takes ownership of the arrays and lists. */
  public RecordResult(
      String answer,
      int[] answerTokenIds,
      List<StageCount> stages,
      List<KeptTokens> keptMaps,
      Flops flops,
      Map<String, Double> timingsMs,
      List<KvChunk> kv,
      int nextPosition) {
    this.answer = Objects.requireNonNull(answer, "answer");
    this.answerTokenIds = Objects.requireNonNull(answerTokenIds, "answerTokenIds");
    this.stages = List.copyOf(stages);
    this.keptMaps = List.copyOf(keptMaps);
    this.flops = Objects.requireNonNull(flops, "flops");
    this.timingsMs = Map.copyOf(timingsMs);
    this.kv = List.copyOf(kv);
    this.nextPosition = nextPosition;
  }

  public String answer() {
    return answer;
  }

  /** Not copied: do not modify. */
  public int[] answerTokenIds() {
    return answerTokenIds;
  }

  public List<StageCount> stages() {
    return stages;
  }

  /** Every selection the plan's operators applied, in order. */
  public List<KeptTokens> keptMaps() {
    return keptMaps;
  }

  public Flops flops() {
    return flops;
  }

  public Map<String, Double> timingsMs() {
    return timingsMs;
  }

  /** KV chunks ordered by (layer, chunk); empty when the plan keeps no cache. */
  public List<KvChunk> kv() {
    return kv;
  }

  /** Position id the next decoded token would get (for cache reuse). */
  public int nextPosition() {
    return nextPosition;
  }
}
