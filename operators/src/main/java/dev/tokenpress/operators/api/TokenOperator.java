package dev.tokenpress.operators.api;

import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.List;
import java.util.Set;

/**
 * A token compression algorithm, as the generation loop sees it.
 *
 * <p>Implementations are immutable and thread-safe (one instance serves every record and task
 * thread of an executor), never modify their inputs (the KV cache at {@link Hook#KV_FINALIZE} and
 * {@link Hook#KV_APPEND} excepted), and take all randomness from the context's per-record seed. One
 * class per algorithm, built from its {@link OperatorConfig}.
 *
 * <p><b>Runtime protocol</b> ({@link HookRunner} implements it; the runtime only computes signals
 * and applies results). At plan start: {@link #validate} against the model, then collect {@link
 * #signals} (deduplicated across operators) and compute only those. Per record, at each hook in
 * generation order, every operator that lists the hook in {@link #hooks()} is called, in plan
 * order, with a context reflecting all earlier results; there is one callback per hook and no hook
 * is special:
 *
 * <ul>
 *   <li>{@link Hook#VISION_LAYER}: {@link #reduceVisionLayer} at every ViT layer run, at the
 *       operator's {@link #visionPoint()};
 *   <li>{@link Hook#BRANCH}: {@link #branch} once per image, on the visual tokens before the {@link
 *       Hook#VISUAL_TOKENS} operators;
 *   <li>{@link Hook#VISUAL_TOKENS}: {@link #reduceVisualTokens} once per image;
 *   <li>{@link Hook#PREFILL}: {@link #prefillBias} before each LM layer's attention (biases add),
 *       then {@link #prefillSparse} (sparse sets intersect); then, for operators that {@link
 *       #rewritesAttention()}, {@link #rewriteAttention} on the probabilities of the rows they name
 *       in {@link #attentionRows}, after the softmax;
 *   <li>{@link Hook#PREFILL_AFTER}: {@link #afterPrefillLayer} after each LM layer but the last;
 *   <li>{@link Hook#KV_FINALIZE}: {@link #finalizeKv} once after prefill;
 *   <li>{@link Hook#DECODE}: {@link #decodePosition} and {@link #decodeBias} per decode step and
 *       layer (positions chain, biases add), and {@link #rewriteAttention} after the softmax;
 *   <li>{@link Hook#LOGITS}: {@link #logits} per generation step, each on the previous result;
 *   <li>{@link Hook#KV_APPEND}: {@link #kvAppended} after each decode step.
 * </ul>
 *
 * Before prefill, operators with a {@link #probeDepth} get {@link #probeLayer} calls from a plain
 * probe prefill. Each applied selection or reduction is recorded as a {@link KeptMap}; what an
 * operator reports of a record ({@link #stats()}) as {@link OperatorStat}s.
 */
public interface TokenOperator {

  /** The operator's name in plans, e.g. {@code "fastv"}. */
  default String name() {
    return config().name();
  }

  /**
   * The validated configuration this operator was built from (operators written outside a plan,
   * e.g. in tests, override {@link #name()} and may return null).
   */
  OperatorConfig config();

  /** The hooks this operator acts at; the runtime calls it only there. */
  Set<Hook> hooks();

  /**
   * Checks the configuration against a model, at plan start.
   *
   * @throws IllegalArgumentException naming the config field, the bad value and the allowed range
   *     for this model (e.g. {@code fastv.layer must be in [1, numLayers-1] = [1, 3] for this
   *     model, got 4})
   */
  void validate(ModelShape shape);

  /**
   * The signals this operator needs on {@code shape}; the runtime computes exactly the union of
   * these over the plan. Call {@link #validate} first.
   */
  List<Signal> signals(ModelShape shape);

  /**
   * Whether the ViT adds {@code log(size)} of each key to its attention logits once tokens were
   * merged (ToMe's proportional attention); the runtime does so if any operator of the plan asks.
   */
  default boolean proportionalAttention() {
    return false;
  }

  /**
   * The operator that serves one record: {@code this} for stateless operators (the default). An
   * operator whose later hooks depend on what it decided at earlier hooks of the same record
   * (MustDrop: the key set from the ViT protects tokens in the LM, the rows of every pruning point
   * shape the KV cache) returns a fresh instance carrying that state; {@link HookRunner} calls this
   * once per record, so the plan's operators themselves stay immutable and shared.
   */
  default TokenOperator forRecord() {
    return this;
  }

  /**
   * Whether this operator's decisions may depend on the per-record seed of its contexts. True by
   * default, the safe answer; an operator that never reads the seed returns false, which lets a
   * runtime give one record's {@link Hook#VISION_LAYER} results to the other records of the same
   * image ({@link HookRunner#adoptVision}) instead of running the ViT for each.
   */
  default boolean usesRecordSeed() {
    return true;
  }

  /** Where in each ViT layer {@link #reduceVisionLayer} runs; ToMe's point by default. */
  default VisionPoint visionPoint() {
    return VisionPoint.AFTER_ATTENTION;
  }

  /**
   * {@link Hook#VISION_LAYER}: merge or drop ViT tokens inside layer {@code context.layer()}, at
   * {@link #visionPoint()}. Return {@link TokenReduction#keepAll} at layers where the operator does
   * nothing.
   *
   * @return a reduction over {@code context.tokens()} rows that keeps row 0 (CLS) alone in front
   */
  default TokenReduction reduceVisionLayer(VisionLayerContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook VISION_LAYER");
  }

  /**
   * {@link Hook#VISUAL_TOKENS}: choose which projected visual tokens go into the LM sequence.
   * Operators that only drop implement this; see {@link #reduceVisualTokens} for merges.
   *
   * @return a selection over {@code context.count()} tokens
   */
  default TokenSelection selectVisualTokens(VisualTokensContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook VISUAL_TOKENS");
  }

  /**
   * {@link Hook#VISUAL_TOKENS}: keep and merge projected visual tokens; the runtime calls this one.
   * The default wraps {@link #selectVisualTokens}.
   *
   * @return a reduction over {@code context.count()} tokens
   */
  default TokenReduction reduceVisualTokens(VisualTokensContext context) {
    return TokenReduction.of(selectVisualTokens(context));
  }

  /**
   * {@link Hook#BRANCH}: the visual part of a second LM sequence run beside the main one, or null
   * for none. {@code context} holds the visual tokens as the projector (and the {@link
   * Hook#VISION_LAYER} operators) left them, before any {@link Hook#VISUAL_TOKENS} operator, with
   * the signals delivered at {@link Hook#VISUAL_TOKENS}. The branch's logits come back at {@link
   * Hook#LOGITS} in {@link LogitsContext#branchLogits()}.
   */
  default BranchInput branch(VisualTokensContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook BRANCH");
  }

  /**
   * {@link Hook#PREFILL}: an additive attention bias for layer {@code context.layer()}, {@code
   * [layout.length(), cacheLength]}, or null for none.
   */
  default FloatTensor prefillBias(PrefillContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook PREFILL");
  }

  /**
   * {@link Hook#PREFILL}: a sparse attention set for layer {@code context.layer()} (attention
   * computed among the set's rows only, see {@link SparseAttention}), or null for dense attention.
   * Called after {@link #prefillBias} of every operator; several sets intersect. The default
   * returns null.
   */
  default SparseAttention prefillSparse(PrefillContext context) {
    return null;
  }

  /**
   * Whether this operator quantises the KV cache (ZipVL): a plan may hold at most one such
   * operator, and none when the job already stores the cache in an integer {@code kv.dtype} ({@link
   * CompressionPlan#bind} and the runtime reject both at plan start).
   */
  default boolean quantizesKv() {
    return false;
  }

  /**
   * {@link Hook#PREFILL_AFTER}: after LM layer {@code context.layer()} in prefill, choose which
   * rows go on to the next layer. Return {@link TokenSelection#keepAll} at layers where the
   * operator does nothing. The last row must be kept.
   *
   * @return a selection over {@code context.layout().length()} rows
   */
  default TokenSelection afterPrefillLayer(PrefillLayerContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook PREFILL_AFTER");
  }

  /** {@link Hook#KV_FINALIZE}: change the KV cache after prefill. */
  default void finalizeKv(KvFinalizeContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook KV_FINALIZE");
  }

  /**
   * {@link Hook#DECODE}: an additive bias over {@code context.cache().length()} entries, or null.
   */
  default float[] decodeBias(DecodeContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook DECODE");
  }

  /**
   * {@link Hook#DECODE}, before the step's key and value are appended: the position of decode step
   * {@code context.step()} at layer {@code context.layer()}, given {@code position} (the sequence's
   * next position, or what the operators before this one returned). Here {@code context.cache()}
   * does not yet hold the new token. The default keeps {@code position}.
   */
  default int decodePosition(DecodeContext context, int position) {
    return position;
  }

  /** {@link Hook#LOGITS}: replacement logits of the same length, or null to keep them. */
  default float[] logits(LogitsContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook LOGITS");
  }

  /**
   * Whether this operator changes attention probabilities after the softmax ({@link
   * #rewriteAttention}), at the {@link Hook#PREFILL} and {@link Hook#DECODE} hooks it declares
   * (VAR's redistribution; CMAI reads decode rows here). False by default, so the runtime computes
   * no probabilities for other plans.
   */
  default boolean rewritesAttention() {
    return false;
  }

  /**
   * {@link Hook#PREFILL}, for operators that {@link #rewritesAttention()}: the layout rows of layer
   * {@code context.layer()} whose probabilities this operator wants to see in {@link
   * #rewriteAttention} (ascending), or null for none. Called after {@link #prefillBias} of the same
   * layer.
   */
  default int[] attentionRows(PrefillContext context) {
    return null;
  }

  /**
   * {@link Hook#PREFILL} (after the layer's attention, for the union of the plan's {@link
   * #attentionRows}) and {@link Hook#DECODE} (each step and layer): change the post-softmax
   * probabilities in place; operators run in plan order, each on the previous one's result.
   *
   * @return whether this operator changed a probability (the runtime recomputes the rows' outputs
   *     only then)
   */
  default boolean rewriteAttention(AttentionContext context) {
    return false;
  }

  /**
   * The deepest LM layer through which this operator needs a <em>probe</em> prefill, run before the
   * real one on the same rows with no operator bias, drop or rewrite ({@link #probeLayer}), or -1
   * for none (the default). CMAI needs one when it inhibits attention at or before the layers its
   * focus score comes from.
   */
  default int probeDepth(ModelShape shape) {
    return -1;
  }

  /**
   * The probe prefill ({@link #probeDepth}), after LM layer {@code context.layer()}: the signals
   * this operator requests for delivery at {@link Hook#PREFILL_AFTER} of that layer, computed on
   * the probe pass. Nothing is returned; the operator keeps what it needs for the real pass.
   */
  default void probeLayer(PrefillLayerContext context) {}

  /**
   * What this operator did to the record so far ({@link OperatorStat}s), for the output row; called
   * on the instance {@link #forRecord()} returned, after generation. Empty by default.
   */
  default java.util.List<OperatorStat> stats() {
    return java.util.List.of();
  }

  /** {@link Hook#KV_APPEND}: after a decode step appended to the cache. */
  default void kvAppended(KvAppendContext context) {
    throw new UnsupportedOperationException(name() + " does not act at hook KV_APPEND");
  }
}
