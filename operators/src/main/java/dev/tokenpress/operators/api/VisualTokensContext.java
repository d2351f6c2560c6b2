package dev.tokenpress.operators.api;

import dev.tokenpress.operators.tensor.FloatTensor;

/**
 * What an operator sees at {@link Hook#VISUAL_TOKENS}: the projected visual tokens of one image,
 * after the operators before it in the plan.
 *
 * <p>Token {@code i} ({@code 0 <= i < count()}) has features {@code features().row(i)} and visual
 * index {@link #visualIndex(int)}: its index in the projector output before any compression, which
 * for LLaVA-1.5 is the patch's row-major grid index ({@code gridRow * patchCols + gridCol}). Values
 * of {@link Signal.ClsAttention} are indexed by that visual index, not by {@code i}.
 *
 * <p>Immutable; the runtime builds one per image and operator call. The features tensor is shared,
 * never copied: operators read it and never write it (the API gives them no way to).
 */
public final class VisualTokensContext {

  private final ModelShape shape;
  private final FloatTensor features;
  private final int[] visualIndex;
  private final TokenProvenance provenance;
  private final SignalValues signals;
  private final long seed;

  /**
   * @param shape the model
   * @param features projected visual features {@code [count, lmHiddenSize]}
   * @param visualIndex visual index of each token (copied); distinct and non-negative
   * @param signals values of the requested signals delivered at this hook
   * @param seed the per-record seed (the runtime derives it with {@link Seeds#recordSeed})
   * @throws IllegalArgumentException if the features are not rank 2, or their row count differs
   *     from {@code visualIndex.length}, or a visual index is negative or repeated
   */
  public VisualTokensContext(
      ModelShape shape, FloatTensor features, int[] visualIndex, SignalValues signals, long seed) {
    this(shape, features, visualIndex, null, signals, seed);
  }

  /**
   * A context over tokens that may stand for several patches each (after ViT merges): token {@code
   * i}'s visual index is its representative patch {@code provenance.patches(i)[0]}.
   */
  public VisualTokensContext(
      ModelShape shape,
      FloatTensor features,
      TokenProvenance provenance,
      SignalValues signals,
      long seed) {
    this(shape, features, provenance.representatives(), provenance, signals, seed);
  }

  private VisualTokensContext(
      ModelShape shape,
      FloatTensor features,
      int[] visualIndex,
      TokenProvenance provenance,
      SignalValues signals,
      long seed) {
    if (shape == null || features == null || visualIndex == null || signals == null) {
      throw new IllegalArgumentException(
          "shape, features, visualIndex and signals must not be null");
    }
    if (features.rank() != 2) {
      throw new IllegalArgumentException(
          "visual features must be [tokens, dim], got rank " + features.rank());
    }
    if (features.dim(0) != visualIndex.length) {
      throw new IllegalArgumentException(
          "visual features have "
              + features.dim(0)
              + " rows, visualIndex has "
              + visualIndex.length);
    }
    int max = -1;
    for (int i = 0; i < visualIndex.length; i++) {
      if (visualIndex[i] < 0) {
        throw new IllegalArgumentException(
            "visualIndex[" + i + "] must be >= 0, got " + visualIndex[i]);
      }
      max = Math.max(max, visualIndex[i]);
    }
    boolean[] seen = new boolean[max + 1];
    for (int i = 0; i < visualIndex.length; i++) {
      if (seen[visualIndex[i]]) {
        throw new IllegalArgumentException("visualIndex " + visualIndex[i] + " appears twice");
      }
      seen[visualIndex[i]] = true;
    }
    this.shape = shape;
    this.features = features;
    this.visualIndex = visualIndex.clone();
    this.provenance = provenance != null ? provenance : TokenProvenance.identity(visualIndex);
    this.signals = signals;
    this.seed = seed;
  }

  /** The context of the first operator at this hook: token {@code i} has visual index {@code i}. */
  public static VisualTokensContext initial(
      ModelShape shape, FloatTensor features, SignalValues signals, long seed) {
    int n = features.rank() == 2 ? features.dim(0) : -1;
    if (n < 0) {
      throw new IllegalArgumentException(
          "visual features must be [tokens, dim], got rank " + features.rank());
    }
    int[] idx = new int[n];
    for (int i = 0; i < n; i++) {
      idx[i] = i;
    }
    return new VisualTokensContext(shape, features, idx, signals, seed);
  }

  /**
   * The context for the next operator after {@code selection}: the kept tokens' features and visual
   * indices (signals and seed carried over).
   */
  public VisualTokensContext next(TokenSelection selection) {
    if (selection.inputCount() != count()) {
      throw new IllegalArgumentException(
          "selection is over " + selection.inputCount() + " tokens, context has " + count());
    }
    int[] kept = selection.kept();
    int[] idx = new int[kept.length];
    for (int i = 0; i < kept.length; i++) {
      idx[i] = visualIndex[kept[i]];
    }
    return new VisualTokensContext(
        shape,
        features.selectRows(kept),
        idx,
        provenance.apply(TokenReduction.of(selection)),
        signals,
        seed);
  }

  /**
   * The context for the next operator after {@code reduction}: merged features (weighted means),
   * representatives' visual indices, combined provenance (signals and seed carried over).
   */
  public VisualTokensContext next(TokenReduction reduction) {
    if (reduction.inputCount() != count()) {
      throw new IllegalArgumentException(
          "reduction is over " + reduction.inputCount() + " tokens, context has " + count());
    }
    int dim = features.dim(1);
    float[] merged = reduction.apply(features.toArray(), dim);
    return new VisualTokensContext(
        shape,
        FloatTensor.wrap(merged, reduction.outputCount(), dim),
        provenance.apply(reduction),
        signals,
        seed);
  }

  /** The patches each token stands for. */
  public TokenProvenance provenance() {
    return provenance;
  }

  /** The model. */
  public ModelShape shape() {
    return shape;
  }

  /** Number of visual tokens. */
  public int count() {
    return visualIndex.length;
  }

  /** Projected features {@code [count, dim]}, read-only. */
  public FloatTensor features() {
    return features;
  }

  /** Visual index of token {@code i}. */
  public int visualIndex(int i) {
    return visualIndex[i];
  }

  /** A copy of all visual indices. */
  public int[] visualIndices() {
    return visualIndex.clone();
  }

  /** Patch-grid row of token {@code i} ({@code visualIndex / patchCols}). */
  public int gridRow(int i) {
    return visualIndex[i] / shape.patchCols();
  }

  /** Patch-grid column of token {@code i} ({@code visualIndex % patchCols}). */
  public int gridCol(int i) {
    return visualIndex[i] % shape.patchCols();
  }

  /** Values of the requested signals delivered at this hook. */
  public SignalValues signals() {
    return signals;
  }

  /** The per-record seed. */
  public long seed() {
    return seed;
  }
}
