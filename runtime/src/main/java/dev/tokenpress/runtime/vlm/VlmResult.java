package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.OperatorStat;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.runtime.lm.StopReason;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The answer to one {@link VlmRequest}, with everything measured on the way: token counts per
 * stage, the kept maps of every operator, analytic FLOPs and wall time per stage, and the KV cache.
 */
public final class VlmResult {
  private final String answer;
  private final int[] tokenIds;
  private final StopReason stopReason;
  private final int[] promptIds;
  private final int visualTokensIn;
  private final int visualTokensKept;
  private final SequenceLayout prefillLayout;
  private final List<KeptMap> keptMaps;
  private final TokenProvenance provenance;
  private final Map<String, Long> flops;
  private final Map<String, Double> timingsMs;
  private final KvCache kvCache;
  private final List<float[]> stepLogits;
  private final long recordSeed;
  private List<OperatorStat> operatorStats = List.of();

  VlmResult(
      String answer,
      int[] tokenIds,
      StopReason stopReason,
      int[] promptIds,
      int visualTokensIn,
      int visualTokensKept,
      SequenceLayout prefillLayout,
      List<KeptMap> keptMaps,
      TokenProvenance provenance,
      Map<String, Long> flops,
      Map<String, Double> timingsMs,
      KvCache kvCache,
      List<float[]> stepLogits,
      long recordSeed) {
    this.recordSeed = recordSeed;
    this.answer = answer;
    this.tokenIds = tokenIds.clone();
    this.stopReason = stopReason;
    this.promptIds = promptIds.clone();
    this.visualTokensIn = visualTokensIn;
    this.visualTokensKept = visualTokensKept;
    this.prefillLayout = prefillLayout;
    this.keptMaps = List.copyOf(keptMaps);
    this.provenance = provenance;
    this.flops = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(flops));
    this.timingsMs = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(timingsMs));
    this.kvCache = kvCache;
    this.stepLogits = stepLogits;
  }

  /**
   * The per-record seed every seeded operator of the plan derived its randomness from ({@code
   * Seeds.recordSeed(id, jobSeed)}; e.g. DAMRO's sampling, RandomDrop), stored so a row can be
   * reproduced.
   */
  public long recordSeed() {
    return recordSeed;
  }

  /** Decoded answer (special tokens skipped). */
  public String answer() {
    return answer;
  }

  /** Generated token ids, the stop token excluded. */
  public int[] tokenIds() {
    return tokenIds.clone();
  }

  public StopReason stopReason() {
    return stopReason;
  }

  /** Prompt token ids with the single image placeholder (before expansion). */
  public int[] promptIds() {
    return promptIds.clone();
  }

  /** Visual tokens out of the projector. */
  public int visualTokensIn() {
    return visualTokensIn;
  }

  /** Visual tokens that entered the LM (after {@code VISUAL_TOKENS} operators). */
  public int visualTokensKept() {
    return visualTokensKept;
  }

  /** Rows of the LM prefill sequence: original index, position id and visual index of each. */
  public SequenceLayout prefillLayout() {
    return prefillLayout;
  }

  /** Every selection an operator applied, in order. */
  public List<KeptMap> keptMaps() {
    return keptMaps;
  }

  /**
   * For every visual token that entered the LM (in prefill-layout order), the original patches
   * (visual indices of the uncompressed projector output) it stands for and their weights; one
   * patch of weight 1 per token unless an operator merged tokens.
   */
  public TokenProvenance provenance() {
    return provenance;
  }

  /** Analytic FLOPs: {@code vision}, {@code prefill}, {@code decode}, {@code total}. */
  public Map<String, Long> flops() {
    return flops;
  }

  /**
   * Wall time in ms: {@code image_decode}, {@code preprocess}, {@code vision}, {@code operators},
   * {@code prefill}, {@code decode}, {@code total}.
   */
  public Map<String, Double> timingsMs() {
    return timingsMs;
  }

  /** The KV cache (null for the fused runner). */
  public KvCache kvCache() {
    return kvCache;
  }

  /**
   * Sets what the operators report ({@code HookRunner.stats()}); once, by the runtime, before
   * returning.
   */
  VlmResult withOperatorStats(List<OperatorStat> stats) {
    this.operatorStats = List.copyOf(stats);
    return this;
  }

  /**
   * What the plan's operators report they did (e.g. VAR's sinks per layer, CMAI's inhibited pairs);
   * empty for operators that report nothing.
   */
  public List<OperatorStat> operatorStats() {
    return operatorStats;
  }

  /** Logits before each choice (step 0 = after prefill), or null unless requested. Copies. */
  public List<float[]> stepLogits() {
    if (stepLogits == null) {
      return null;
    }
    List<float[]> out = new ArrayList<>();
    for (float[] l : stepLogits) {
      out.add(l.clone());
    }
    return out;
  }
}
