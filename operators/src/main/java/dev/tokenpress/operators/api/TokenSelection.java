package dev.tokenpress.operators.api;

import dev.tokenpress.operators.tensor.Kernels;
import java.util.Arrays;

/**
 * An operator's decision at a hook: which of the {@link #inputCount()} input rows survive, and what
 * happens to their positions.
 *
 * <p>The input rows are the visual tokens of a {@link VisualTokensContext} or the sequence rows of
 * a {@link PrefillLayerContext}, numbered {@code 0..inputCount-1}. Kept indices are strictly
 * ascending: order is never changed by a selection. Immutable, with value equality.
 */
public final class TokenSelection {

  private final int inputCount;
  private final int[] kept;
  private final PositionMode positions;

  private TokenSelection(int inputCount, int[] kept, PositionMode positions) {
    this.inputCount = inputCount;
    this.kept = kept;
    this.positions = positions;
  }

  /** Keeps every row with {@link PositionMode#KEEP_ORIGINAL}: the "do nothing" answer. */
  public static TokenSelection keepAll(int inputCount) {
    if (inputCount < 0) {
      throw new IllegalArgumentException("inputCount must be >= 0, got " + inputCount);
    }
    int[] all = new int[inputCount];
    for (int i = 0; i < inputCount; i++) {
      all[i] = i;
    }
    return new TokenSelection(inputCount, all, PositionMode.KEEP_ORIGINAL);
  }

  /**
   * A selection keeping {@code kept} (copied).
   *
   * @throws IllegalArgumentException if {@code kept} is not strictly ascending or has an index
   *     outside {@code [0, inputCount)}
   */
  public static TokenSelection of(int inputCount, int[] kept, PositionMode positions) {
    if (inputCount < 0) {
      throw new IllegalArgumentException("inputCount must be >= 0, got " + inputCount);
    }
    if (positions == null) {
      throw new IllegalArgumentException("positions must not be null");
    }
    int[] k = kept.clone();
    if (!Kernels.isStrictlyIncreasing(k)) {
      throw new IllegalArgumentException(
          "kept indices must be strictly ascending, got " + Arrays.toString(k));
    }
    if (k.length > 0 && (k[0] < 0 || k[k.length - 1] >= inputCount)) {
      throw new IllegalArgumentException(
          "kept indices must be in [0, " + inputCount + "), got " + Arrays.toString(k));
    }
    return new TokenSelection(inputCount, k, positions);
  }

  /** Number of input rows. */
  public int inputCount() {
    return inputCount;
  }

  /** Number of kept rows. */
  public int keptCount() {
    return kept.length;
  }

  /** The {@code i}-th kept input index. */
  public int kept(int i) {
    return kept[i];
  }

  /** A copy of the kept input indices, ascending. */
  public int[] kept() {
    return kept.clone();
  }

  /** What happens to positions. */
  public PositionMode positions() {
    return positions;
  }

  /** Whether every row is kept (positions are then unchanged whatever the mode). */
  public boolean keepsAll() {
    return kept.length == inputCount;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TokenSelection t
        && inputCount == t.inputCount
        && positions == t.positions
        && Arrays.equals(kept, t.kept);
  }

  @Override
  public int hashCode() {
    return (31 * inputCount + positions.hashCode()) * 31 + Arrays.hashCode(kept);
  }

  @Override
  public String toString() {
    return "TokenSelection["
        + kept.length
        + "/"
        + inputCount
        + " kept, "
        + positions
        + ", "
        + (kept.length <= 16
            ? Arrays.toString(kept)
            : Arrays.toString(Arrays.copyOf(kept, 16)) + "...")
        + "]";
  }
}
