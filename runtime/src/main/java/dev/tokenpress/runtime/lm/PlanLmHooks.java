package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.PrefillLayerContext;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Runs the LM-side hooks of a compression plan ({@link Hook#PREFILL_AFTER} today) inside one
 * generation, following the protocol of {@link TokenOperator}: after every LM layer each
 * operator acting there, in plan order, gets a {@link PrefillLayerContext} with the current
 * {@link SequenceLayout} and the requested signals of that layer; its selection advances the
 * layout and is recorded as a {@link KeptMap}. Signals are computed only for requested layers,
 * from the layer's Q and K in Java ({@link PrefillLayer#attentionRows}).
 *
 * <p>One instance per generation (it tracks the layout). The request's rows must be the initial
 * layout's rows: positions {@code layout.positionIds()}, token indices
 * {@code layout.originalIndices()}.
 */
public final class PlanLmHooks implements LmHooks {
    private final List<TokenOperator> operators;
    private final ModelShape shape;
    private final long seed;
    private final Set<Signal.QueryRowAttention> signals = new LinkedHashSet<>();
    private final List<KeptMap> kept = new ArrayList<>();
    private SequenceLayout layout;

    /**
     * @param operators the plan's operators, validated against {@code shape} (only those acting at
     *                  {@link Hook#PREFILL_AFTER} are called here)
     * @param layout    the prefill layout after the visual-token selections
     * @param seed      the record's seed
     */
    public PlanLmHooks(List<TokenOperator> operators, ModelShape shape, SequenceLayout layout, long seed) {
        this.shape = shape;
        this.layout = layout;
        this.seed = seed;
        List<TokenOperator> lm = new ArrayList<>();
        for (TokenOperator op : operators) {
            if (op.hooks().contains(Hook.PREFILL_AFTER)) {
                lm.add(op);
                for (Signal s : op.signals(shape)) {
                    if (s instanceof Signal.QueryRowAttention q) {
                        signals.add(q);
                    }
                }
            }
            for (Hook h : op.hooks()) {
                if (h != Hook.PREFILL_AFTER && h != Hook.VISUAL_TOKENS) {
                    throw new UnsupportedOperationException("operator " + op.name() + " acts at hook " + h
                            + ", which the LM runtime does not call yet");
                }
            }
        }
        this.operators = List.copyOf(lm);
    }

    /** Whether any operator acts in the LM (otherwise pass {@link LmHooks#NONE} and skip the views). */
    public boolean isActive() {
        return !operators.isEmpty();
    }

    /** The selections applied so far, in order. */
    public List<KeptMap> keptMaps() {
        return List.copyOf(kept);
    }

    /** The layout after the selections applied so far. */
    public SequenceLayout layout() {
        return layout;
    }

    @Override
    public int[] keepAfterLayer(int layer, PrefillLayer view) {
        if (operators.isEmpty()) {
            return null;
        }
        if (view.rows() != layout.length()) {
            throw new IllegalStateException("layer " + layer + " has " + view.rows() + " rows, the layout has "
                    + layout.length());
        }
        SignalValues values = signalsAt(layer, view);
        int[] rows = null; // composed selection, indices into the rows of this layer
        for (TokenOperator op : operators) {
            SignalValues sv = rows == null ? values : SignalValues.empty();
            TokenSelection sel = op.afterPrefillLayer(new PrefillLayerContext(shape, layer, layout, sv, seed));
            if (sel.inputCount() != layout.length()) {
                throw new IllegalStateException(op.name() + " returned a selection over " + sel.inputCount()
                        + " rows at layer " + layer + ", the layout has " + layout.length());
            }
            if (sel.keepsAll()) {
                continue;
            }
            if (sel.positions() != PositionMode.KEEP_ORIGINAL) {
                throw new UnsupportedOperationException(op.name() + " re-packs positions after LM layer " + layer
                        + "; the LM runtime keeps original positions inside prefill");
            }
            kept.add(KeptMap.ofPrefill(op.name(), layer, layout, sel));
            layout = layout.apply(sel);
            int[] k = sel.kept();
            if (rows == null) {
                rows = k;
            } else {
                int[] composed = new int[k.length];
                for (int i = 0; i < k.length; i++) {
                    composed[i] = rows[k[i]];
                }
                rows = composed;
            }
        }
        return rows;
    }

    /** The requested {@code QueryRowAttention} signals of this layer: head-mean rows, {@code [rows, keys]}. */
    private SignalValues signalsAt(int layer, PrefillLayer view) {
        SignalValues.Builder b = SignalValues.builder();
        boolean any = false;
        for (Signal.QueryRowAttention s : signals) {
            if (s.lmLayer() != layer) {
                continue;
            }
            int keys = view.cache().length();
            if (keys != layout.length()) {
                throw new IllegalStateException("signal " + s + " needs a cache of the layout's " + layout.length()
                        + " rows at layer " + layer + ", found " + keys + " entries");
            }
            int[] q = s.rows().resolve(layout);
            float[] probs = view.attentionRows(q); // [q][heads][keys]
            int heads = shape.lmHeads();
            float[] mean = new float[q.length * keys];
            for (int i = 0; i < q.length; i++) {
                for (int h = 0; h < heads; h++) {
                    int o = (i * heads + h) * keys;
                    for (int j = 0; j < keys; j++) {
                        mean[i * keys + j] += probs[o + j];
                    }
                }
            }
            float inv = 1f / heads;
            for (int i = 0; i < mean.length; i++) {
                mean[i] *= inv;
            }
            b.put(s, FloatTensor.wrap(mean, q.length, keys));
            any = true;
        }
        return any ? b.build() : SignalValues.empty();
    }
}
