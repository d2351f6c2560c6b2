package dev.tokenpress.operators.api;

import dev.tokenpress.operators.json.Json;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The record of one applied selection, for the result and the Parquet {@code outputs} row: which
 * operator at which hook and layer kept which tokens, both in the numbering of that step's input
 * and as original indices.
 *
 * <p>For {@link Hook#VISUAL_TOKENS} and {@link Hook#BRANCH}, {@code original} holds visual indices
 * (projector output numbering, {@code 0..N-1}); for {@link Hook#PREFILL_AFTER}, original token
 * indices of the uncompressed prefill sequence ({@link SequenceLayout#originalIndex}). Immutable.
 */
public final class KeptMap {

  private final String operator;
  private final Hook hook;
  private final int layer;
  private final int inputCount;
  private final int[] kept;
  private final int[] original;
  private final PositionMode positions;
  private final int merged;
  private final int[] labels;

  private KeptMap(
      String operator,
      Hook hook,
      int layer,
      int inputCount,
      int[] kept,
      int[] original,
      PositionMode positions) {
    this(operator, hook, layer, inputCount, kept, original, positions, 0, null);
  }

  private KeptMap(
      String operator,
      Hook hook,
      int layer,
      int inputCount,
      int[] kept,
      int[] original,
      PositionMode positions,
      int merged,
      int[] labels) {
    this.merged = merged;
    this.labels = labels;
    this.operator = operator;
    this.hook = hook;
    this.layer = layer;
    this.inputCount = inputCount;
    this.kept = kept;
    this.original = original;
    this.positions = positions;
  }

  /** The map of a {@link Hook#VISUAL_TOKENS} selection made in {@code context}. */
  public static KeptMap ofVisual(
      String operator, VisualTokensContext context, TokenSelection selection) {
    check(selection.inputCount(), context.count());
    int[] k = selection.kept();
    int[] o = new int[k.length];
    for (int i = 0; i < k.length; i++) {
      o[i] = context.visualIndex(k[i]);
    }
    return new KeptMap(
        operator, Hook.VISUAL_TOKENS, -1, selection.inputCount(), k, o, selection.positions());
  }

  /**
   * The map of a {@link Hook#PREFILL_AFTER} selection made at {@code layer} over {@code layout}.
   */
  public static KeptMap ofPrefill(
      String operator, int layer, SequenceLayout layout, TokenSelection selection) {
    check(selection.inputCount(), layout.length());
    int[] k = selection.kept();
    int[] o = new int[k.length];
    for (int i = 0; i < k.length; i++) {
      o[i] = layout.originalIndex(k[i]);
    }
    return new KeptMap(
        operator, Hook.PREFILL_AFTER, layer, selection.inputCount(), k, o, selection.positions());
  }

  /**
   * The map of a reduction at any hook: {@code kept} are the representatives (first members) of the
   * groups, {@code original[i]} is {@code originalOfInput[kept[i]]}, and {@link #merged()} counts
   * the input rows merged into a representative rather than dropped; the reduction's {@link
   * TokenReduction#labels() labels}, if any, become {@link #labels()}.
   *
   * @param layer the ViT or LM layer, or -1 where the hook has none
   * @param originalOfInput original index (visual index for ViT and visual-token hooks) of every
   *     input row
   */
  public static KeptMap ofReduction(
      String operator, Hook hook, int layer, TokenReduction reduction, int[] originalOfInput) {
    check(reduction.inputCount(), originalOfInput.length);
    int n = reduction.outputCount();
    int[] k = new int[n];
    int[] o = new int[n];
    int merged = 0;
    for (int i = 0; i < n; i++) {
      k[i] = reduction.representative(i);
      o[i] = originalOfInput[k[i]];
      merged += reduction.groupSize(i) - 1;
    }
    return new KeptMap(
        operator,
        hook,
        layer,
        reduction.inputCount(),
        k,
        o,
        reduction.positions(),
        merged,
        reduction.labels());
  }

  /**
   * The record of a {@link Hook#BRANCH} sequence's visual rows: {@code kept[i]} is the row of
   * {@code context} that row {@code i} of the branch came from (-1 for a row from elsewhere),
   * {@code original[i]} its visual index, both in the branch's order (DAMRO: score order). The
   * branch's positions are compact ({@link PositionMode#REPACK}).
   */
  public static KeptMap ofBranch(String operator, VisualTokensContext context, BranchInput branch) {
    int[] o = branch.visualIndices();
    int[] rowOf = new int[context.count() == 0 ? 0 : maxIndex(context) + 1];
    Arrays.fill(rowOf, -1);
    for (int r = 0; r < context.count(); r++) {
      rowOf[context.visualIndex(r)] = r;
    }
    int[] k = new int[o.length];
    for (int i = 0; i < o.length; i++) {
      k[i] = o[i] >= 0 && o[i] < rowOf.length ? rowOf[o[i]] : -1;
    }
    return new KeptMap(operator, Hook.BRANCH, -1, context.count(), k, o, PositionMode.REPACK);
  }

  private static int maxIndex(VisualTokensContext context) {
    int m = 0;
    for (int r = 0; r < context.count(); r++) {
      m = Math.max(m, context.visualIndex(r));
    }
    return m;
  }

  private static void check(int selectionCount, int inputCount) {
    if (selectionCount != inputCount) {
      throw new IllegalArgumentException(
          "selection is over " + selectionCount + " rows, input has " + inputCount);
    }
  }

  /** Operator name, e.g. {@code "fastv"}. */
  public String operator() {
    return operator;
  }

  /** The hook. */
  public Hook hook() {
    return hook;
  }

  /** Input rows merged into a kept row (0 for plain selections). */
  public int merged() {
    return merged;
  }

  /**
   * The ViT layer for {@link Hook#VISION_LAYER}, the LM layer for {@link Hook#PREFILL_AFTER}, -1
   * otherwise.
   */
  public int layer() {
    return layer;
  }

  /** Number of input rows. */
  public int inputCount() {
    return inputCount;
  }

  /**
   * Kept input indices (copy): ascending, except after a {@link Hook#VISION_LAYER} reduction that
   * reorders rows and for a {@link Hook#BRANCH} (the branch's order, e.g. DAMRO's score order).
   */
  public int[] kept() {
    return kept.clone();
  }

  /** Original indices of the kept rows (copy); see the class comment. */
  public int[] original() {
    return original.clone();
  }

  /**
   * The operator's label of every input row of this step ({@code [inputCount]}, same numbering as
   * {@link #kept()}), or null when it attached none. VMTC: the cluster id ({@code 0..}, numbered by
   * smallest member), {@code -1} for a primary token, {@code -2} for a dropped one.
   */
  public int[] labels() {
    return labels == null ? null : labels.clone();
  }

  /** Position rule that was applied. */
  public PositionMode positions() {
    return positions;
  }

  /**
   * Canonical JSON: {@code {"operator":..,"hook":..,"layer":..,"input_count":..,
   * "positions":..,"kept":[..],"original":[..]}} with enum names in lower case, then {@code
   * "merged":..} when rows were merged and {@code "labels":[..]} when the operator attached labels.
   */
  public String toJson() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("operator", operator);
    m.put("hook", hook.name().toLowerCase(java.util.Locale.ROOT));
    m.put("layer", layer);
    m.put("input_count", inputCount);
    m.put("positions", positions.name().toLowerCase(java.util.Locale.ROOT));
    m.put("kept", kept);
    m.put("original", original);
    if (merged > 0) {
      m.put("merged", merged);
    }
    if (labels != null) {
      m.put("labels", labels);
    }
    return Json.write(m);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof KeptMap m
        && operator.equals(m.operator)
        && hook == m.hook
        && layer == m.layer
        && inputCount == m.inputCount
        && positions == m.positions
        && merged == m.merged
        && Arrays.equals(kept, m.kept)
        && Arrays.equals(original, m.original)
        && Arrays.equals(labels, m.labels);
  }

  @Override
  public int hashCode() {
    return toJson().hashCode();
  }

  @Override
  public String toString() {
    return "KeptMap" + toJson();
  }
}
