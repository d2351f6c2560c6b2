package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.runtime.lm.LmHooks;
import dev.tokenpress.runtime.lm.PlanLmHooks;
import dev.tokenpress.runtime.vision.ClsAttention;
import dev.tokenpress.runtime.vision.VisionHook;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A compression plan prepared against one model: operators built and validated, the union of
 * their signals, and the runtime side of the operator protocol ({@link TokenOperator}) for one
 * record — the ViT signals and {@link Hook#VISUAL_TOKENS} here, {@link Hook#PREFILL_AFTER}
 * through {@link PlanLmHooks}. A prepared plan is immutable; {@link #record} makes the per-record state.
 */
final class PlanExecution {
  private final ModelShape shape;
  private final List<TokenOperator> operators;
  private final List<Signal> signals;
  private final Set<Integer> clsLayers;
  private final boolean hasPrefillAfter;
  private final boolean hasVisualTokens;

  /**
   * Prepares {@code plan} for this runtime: {@link CompressionPlan#bind} (the operators' own checks
   * against the model, shared with drivers), then what this runtime supports: the hooks it runs and
   * CLS attention of the ViT layers it runs ({@code 0..shape.visionFeatureLayer()}).
   *
   * @throws IllegalArgumentException prefixed with {@code plan[i]}, naming the field, the value and
   *     what is allowed
   */
  PlanExecution(CompressionPlan plan, ModelShape shape) {
    this.shape = shape;
    List<TokenOperator> ops = plan.bind(shape);
    LinkedHashSet<Signal> sigs = new LinkedHashSet<>();
    boolean prefillAfter = false;
    boolean visual = false;
    int vitLayersRun = shape.visionFeatureLayer() + 1;
    for (int i = 0; i < ops.size(); i++) {
      TokenOperator op = ops.get(i);
      for (Hook h : op.hooks()) {
        if (h != Hook.VISUAL_TOKENS && h != Hook.PREFILL_AFTER) {
          throw new IllegalArgumentException("plan[" + i + "]: operator " + op.name() + " acts at hook " + h
              + ", which this runtime does not run yet (VISUAL_TOKENS, PREFILL_AFTER)");
        }
        prefillAfter |= h == Hook.PREFILL_AFTER;
        visual |= h == Hook.VISUAL_TOKENS;
      }
      for (Signal s : op.signals(shape)) {
        if (s instanceof Signal.ClsAttention ca && ca.vitLayer() >= vitLayersRun) {
          throw new IllegalArgumentException("plan[" + i + "]: operator " + op.name()
              + " asks for the CLS attention of ViT layer " + ca.vitLayer() + ", but this bundle runs ViT layers 0.."
              + (vitLayersRun - 1) + " only (vision_feature_layer); choose layers in that range");
        }
        sigs.add(s);
      }
    }
    this.operators = List.copyOf(ops);
    this.signals = List.copyOf(sigs);
    Set<Integer> cls = new TreeSet<>();
    for (Signal s : signals) {
      if (s instanceof Signal.ClsAttention ca) {
        cls.add(ca.vitLayer());
      }
    }
    this.clsLayers = Set.copyOf(cls);
    this.hasPrefillAfter = prefillAfter;
    this.hasVisualTokens = visual;
  }

  boolean isEmpty() {
    return operators.isEmpty();
  }

  /** What the vision encoder must compute for this plan (null when nothing). */
  VisionHook visionHook() {
    if (clsLayers.isEmpty()) {
      return null;
    }
    return new VisionHook() {
      @Override
      public Set<Integer> clsAttentionLayers() {
        return clsLayers;
      }
    };
  }

  Record record(long seed) {
    return new Record(seed);
  }

  /** The per-record side of the protocol. Not thread-safe; one per generation. */
  final class Record {
    private final long seed;
    private final List<KeptMap> kept = new ArrayList<>();
    private SequenceLayout layout;
    private PlanLmHooks lmHooks;

    Record(long seed) {
      this.seed = seed;
    }

    /**
     * Runs the {@link Hook#VISUAL_TOKENS} operators on the projected features {@code [n, dim]}
     * and returns the prefill layout of {@code prefix + kept visual tokens + suffix}.
     *
     * @param clsRows CLS attention rows by ViT layer, as {@link ClsAttention#headAveraged} returns them
     */
    SequenceLayout visualTokens(float[] features, int n, int dim, Map<Integer, float[]> clsRows, int prefix,
        int suffix) {
      List<TokenSelection> selections = new ArrayList<>();
      if (hasVisualTokens) {
        SignalValues.Builder b = SignalValues.builder();
        for (Signal s : signals) {
          if (s instanceof Signal.ClsAttention ca) {
            float[] row = clsRows.get(ca.vitLayer());
            if (row == null) {
              throw new IllegalStateException("CLS attention of ViT layer " + ca.vitLayer() + " was not computed");
            }
            b.put(s, FloatTensor.wrap(ClsAttention.patches(row), row.length - 1));
          }
        }
        int[] visualIndex = new int[n];
        for (int i = 0; i < n; i++) {
          visualIndex[i] = i;
        }
        VisualTokensContext ctx = new VisualTokensContext(shape, FloatTensor.wrap(features, n, dim), visualIndex,
            b.build(), seed);
        for (TokenOperator op : operators) {
          if (!op.hooks().contains(Hook.VISUAL_TOKENS)) {
            continue;
          }
          TokenSelection sel = op.selectVisualTokens(ctx);
          kept.add(KeptMap.ofVisual(op.name(), ctx, sel));
          selections.add(sel);
          ctx = ctx.next(sel);
        }
      }
      layout = SequenceLayout.prefill(prefix, n, suffix, selections);
      return layout;
    }

    /**
     * The LM hooks of this record ({@link LmHooks#NONE} when no operator acts during prefill):
     * {@link PlanLmHooks} over the layout {@link #visualTokens} built.
     */
    LmHooks lmHooks() {
      if (!hasPrefillAfter) {
        return LmHooks.NONE;
      }
      lmHooks = new PlanLmHooks(operators, shape, layout, seed);
      return lmHooks;
    }

    /** Every selection applied so far: the visual ones, then the LM ones. */
    List<KeptMap> keptMaps() {
      List<KeptMap> all = new ArrayList<>(kept);
      if (lmHooks != null) {
        all.addAll(lmHooks.keptMaps());
      }
      return all;
    }
  }
}
