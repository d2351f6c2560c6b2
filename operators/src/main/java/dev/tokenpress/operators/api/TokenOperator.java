package dev.tokenpress.operators.api;

import java.util.List;
import java.util.Set;

/**
 * A visual-token compression algorithm, as the generation loop sees it.
 *
 * <p>Implementations are immutable and thread-safe (one instance serves every record and task
 * thread of an executor), never modify their inputs, and take all randomness from the context's
 * per-record seed. One class per algorithm, built from its {@link OperatorConfig}.
 *
 * <p><b>Runtime protocol.</b> At plan start: {@link #validate} against the model, then collect
 * {@link #signals} (deduplicated across operators) and compute only those. Per record, for each
 * hook in generation order and each operator of the plan that lists the hook in {@link #hooks()},
 * in plan order, call the hook's method with a context reflecting all earlier selections:
 * <ul>
 *   <li>{@link Hook#VISUAL_TOKENS}: {@link #selectVisualTokens}, once per image; the next
 *       operator gets {@link VisualTokensContext#next(TokenSelection)}; the LM sequence is built
 *       with {@link SequenceLayout#prefill} from all the selections.
 *   <li>{@link Hook#PREFILL_AFTER}: {@link #afterPrefillLayer}, after every LM layer
 *       {@code 0..lmLayers-1}; the runtime keeps the selected rows of the hidden states for the
 *       next layer and the next operator gets {@link SequenceLayout#apply(TokenSelection)}.
 * </ul>
 * Each applied selection is recorded as a {@link KeptMap}.
 */
public interface TokenOperator {

    /** The operator's name in plans, e.g. {@code "fastv"}. */
    default String name() {
        return config().name();
    }

    /** The validated configuration this operator was built from. */
    OperatorConfig config();

    /** The hooks this operator acts at; the runtime calls it only there. */
    Set<Hook> hooks();

    /**
     * Checks the configuration against a model, at plan start.
     *
     * @throws IllegalArgumentException naming the config field, the bad value and the allowed
     *     range for this model (e.g. {@code fastv.layer must be in [1, numLayers-1] = [1, 3]
     *     for this model, got 4})
     */
    void validate(ModelShape shape);

    /**
     * The signals this operator needs on {@code shape}; the runtime computes exactly the union
     * of these over the plan. Call {@link #validate} first.
     */
    List<Signal> signals(ModelShape shape);

    /**
     * {@link Hook#VISUAL_TOKENS}: choose which projected visual tokens go into the LM sequence.
     *
     * @return a selection over {@code context.count()} tokens
     * @throws UnsupportedOperationException if this operator does not act at this hook
     */
    default TokenSelection selectVisualTokens(VisualTokensContext context) {
        throw new UnsupportedOperationException(name() + " does not act at hook VISUAL_TOKENS");
    }

    /**
     * {@link Hook#PREFILL_AFTER}: after LM layer {@code context.layer()} in prefill, choose which
     * rows go on to the next layer. Return {@link TokenSelection#keepAll} at layers where the
     * operator does nothing.
     *
     * @return a selection over {@code context.layout().length()} rows
     * @throws UnsupportedOperationException if this operator does not act at this hook
     */
    default TokenSelection afterPrefillLayer(PrefillLayerContext context) {
        throw new UnsupportedOperationException(name() + " does not act at hook PREFILL_AFTER");
    }
}
