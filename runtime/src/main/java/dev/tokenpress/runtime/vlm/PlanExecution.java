package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorConfig;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.PrefillLayerContext;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.runtime.lm.LmHooks;
import dev.tokenpress.runtime.lm.PrefillLayer;
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
 * record — the ViT signals, {@link Hook#VISUAL_TOKENS} and {@link Hook#PREFILL_AFTER} (as
 * {@link LmHooks}). A prepared plan is immutable; {@link #record} makes the per-record state.
 */
final class PlanExecution {
  private final ModelShape shape;
  private final List<TokenOperator> operators;
  private final List<Signal> signals;
  private final Set<Integer> clsLayers;
  private final boolean hasPrefillAfter;
  private final boolean hasVisualTokens;

  PlanExecution(CompressionPlan plan, ModelShape shape, int vitLayersRun) {
    this.shape = shape;
    List<TokenOperator> ops = new ArrayList<>();
    LinkedHashSet<Signal> sigs = new LinkedHashSet<>();
    boolean prefillAfter = false;
    boolean visual = false;
    for (OperatorConfig c : plan.operators()) {
      TokenOperator op = c.build();
      for (Hook h : op.hooks()) {
        if (h != Hook.VISUAL_TOKENS && h != Hook.PREFILL_AFTER) {
          throw new IllegalArgumentException("operator " + op.name() + " acts at hook " + h
              + ", which this runtime does not run yet (VISUAL_TOKENS, PREFILL_AFTER)");
        }
        prefillAfter |= h == Hook.PREFILL_AFTER;
        visual |= h == Hook.VISUAL_TOKENS;
      }
      op.validate(shape);
      for (Signal s : op.signals(shape)) {
        s.validate(shape);
        if (s instanceof Signal.ClsAttention ca && ca.vitLayer() >= vitLayersRun) {
          throw new IllegalArgumentException("operator " + op.name() + " asks for the CLS attention of ViT layer "
              + ca.vitLayer() + ", but this bundle runs ViT layers 0.." + (vitLayersRun - 1)
              + " only (vision_feature_layer); choose layers in that range");
        }
        sigs.add(s);
      }
      ops.add(op);
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

    Record(long seed) {
      this.seed = seed;
    }

    List<KeptMap> keptMaps() {
      return kept;
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

    /** The LM hooks of this record ({@link LmHooks#NONE} when no operator acts during prefill). */
    LmHooks lmHooks() {
      if (!hasPrefillAfter) {
        return LmHooks.NONE;
      }
      return new LmHooks() {
        @Override
        public int[] keepAfterLayer(int layer, PrefillLayer view) {
          return prefillAfter(layer, view);
        }
      };
    }

    private int[] prefillAfter(int layer, PrefillLayer view) {
      int n = layout.length();
      if (view.rows() != n) {
        throw new IllegalStateException("LM layer " + layer + " has " + view.rows() + " rows, the layout " + n);
      }
      SignalValues.Builder b = SignalValues.builder();
      for (Signal s : signals) {
        if (s instanceof Signal.QueryRowAttention qa && qa.lmLayer() == layer) {
          b.put(s, queryRowAttention(view, qa.rows().resolve(layout)));
        }
      }
      SignalValues values = b.build();
      int[] rows = identity(n);
      for (TokenOperator op : operators) {
        if (!op.hooks().contains(Hook.PREFILL_AFTER)) {
          continue;
        }
        TokenSelection sel = op.afterPrefillLayer(new PrefillLayerContext(shape, layer, layout, values, seed));
        if (sel.keepsAll()) {
          continue;
        }
        if (sel.positions() == PositionMode.REPACK) {
          throw new IllegalArgumentException("operator " + op.name() + " re-packs positions after LM layer " + layer
              + "; the KV cache keeps original positions, so only KEEP_ORIGINAL is supported there");
        }
        kept.add(KeptMap.ofPrefill(op.name(), layer, layout, sel));
        int[] next = new int[sel.keptCount()];
        for (int i = 0; i < next.length; i++) {
          next[i] = rows[sel.kept(i)];
        }
        rows = next;
        layout = layout.apply(sel);
      }
      return rows.length == n ? null : rows;
    }
  }

  /** Head-mean attention rows {@code [queries, keys]} of the current layer's cache. */
  private FloatTensor queryRowAttention(PrefillLayer view, int[] queryRows) {
    float[] p = view.attentionRows(queryRows); // [q, heads, keys]
    int heads = shape.lmHeads();
    int keys = p.length / (queryRows.length * heads);
    float[] mean = new float[queryRows.length * keys];
    for (int q = 0; q < queryRows.length; q++) {
      for (int k = 0; k < keys; k++) {
        double s = 0;
        for (int h = 0; h < heads; h++) {
          s += p[(q * heads + h) * keys + k];
        }
        mean[q * keys + k] = (float) (s / heads);
      }
    }
    return FloatTensor.wrap(mean, queryRows.length, keys);
  }

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }
}
