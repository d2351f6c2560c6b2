package dev.tokenpress.spark;

import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.kv.KvCache;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What the runtime produced for one record: the answer and its token ids, per-stage token counts
 * and kept-token maps, FLOPs, timings, and the compressed KV cache (the operators' {@link KvCache},
 * written as {@link KvCache#layer(int)}{@code .chunks()}). Plain Java values only: no native or
 * ONNX objects escape the runtime.
 */
public final class RecordResult {
  private final String answer;
  private final int[] answerTokenIds;
  private final List<StageCount> stages;
  private final List<KeptTokens> keptMaps;
  private final Flops flops;
  private final Map<String, Double> timingsMs;
  private final KvCache kvCache;
  private final TokenProvenance visualTokens;
  private final Long recordSeed;
  private final List<dev.tokenpress.operators.api.OperatorStat> operatorStats;

  /** Takes ownership of the arrays and lists. */
  public RecordResult(
      String answer,
      int[] answerTokenIds,
      List<StageCount> stages,
      List<KeptTokens> keptMaps,
      Flops flops,
      Map<String, Double> timingsMs,
      KvCache kvCache) {
    this(answer, answerTokenIds, stages, keptMaps, flops, timingsMs, kvCache, null);
  }

  /** With the provenance of the visual tokens that entered the LM (null when unknown). */
  public RecordResult(
      String answer,
      int[] answerTokenIds,
      List<StageCount> stages,
      List<KeptTokens> keptMaps,
      Flops flops,
      Map<String, Double> timingsMs,
      KvCache kvCache,
      TokenProvenance visualTokens) {
    this(
        answer,
        answerTokenIds,
        stages,
        keptMaps,
        flops,
        timingsMs,
        kvCache,
        visualTokens,
        null,
        List.of());
  }

  /**
   * With the per-record seed the plan's seeded operators used (null when unknown) and what the
   * plan's operators report they did (column {@code operator_stats}).
   */
  public RecordResult(
      String answer,
      int[] answerTokenIds,
      List<StageCount> stages,
      List<KeptTokens> keptMaps,
      Flops flops,
      Map<String, Double> timingsMs,
      KvCache kvCache,
      TokenProvenance visualTokens,
      Long recordSeed,
      List<dev.tokenpress.operators.api.OperatorStat> operatorStats) {
    this.recordSeed = recordSeed;
    this.operatorStats = List.copyOf(operatorStats);
    this.visualTokens = visualTokens;
    this.answer = Objects.requireNonNull(answer, "answer");
    this.answerTokenIds = Objects.requireNonNull(answerTokenIds, "answerTokenIds");
    this.stages = List.copyOf(stages);
    this.keptMaps = List.copyOf(keptMaps);
    this.flops = Objects.requireNonNull(flops, "flops");
    this.timingsMs = Map.copyOf(timingsMs);
    this.kvCache = kvCache;
  }

  /** The per-record seed of the plan's seeded operators, or null when unknown. */
  public Long recordSeed() {
    return recordSeed;
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

  /** What the plan's operators report they did (e.g. VAR's sinks per layer); empty if nothing. */
  public List<dev.tokenpress.operators.api.OperatorStat> operatorStats() {
    return operatorStats;
  }

  /** Every selection the plan's operators applied, in order. */
  public List<KeptTokens> keptMaps() {
    return keptMaps;
  }

  /**
   * For every visual token that entered the LM, in sequence order, the original patches it stands
   * for and their weights; null when the runner does not report it.
   */
  public TokenProvenance visualTokens() {
    return visualTokens;
  }

  public Flops flops() {
    return flops;
  }

  public Map<String, Double> timingsMs() {
    return timingsMs;
  }

  /** The KV cache, or null when the runner keeps none (e.g. the fused baseline). */
  public KvCache kvCache() {
    return kvCache;
  }
}
