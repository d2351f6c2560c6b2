package dev.tokenpress.operators.api;

import java.util.Arrays;
import java.util.List;

/**
 * The rows of the LM sequence as they stand at some point of prefill: for each row, its original
 * token index, its position id and, for visual rows, which visual token it is.
 *
 * <p>The <em>original token index</em> numbers the uncompressed prefill sequence {@code prefix +
 * all N visual tokens + suffix} from 0, so row {@code r} of any compressed layout can be traced
 * back (and written to Parquet) however many operators ran. The <em>visual index</em> of a visual
 * row is its visual token's index in the projector output ({@code 0..N-1}, row-major patch order
 * for LLaVA-1.5); text rows have visual index {@code -1}. Row order always follows the original
 * order; operators never reorder rows.
 *
 * <p>The runtime builds the initial layout with {@link #prefill} and advances it with {@link
 * #apply} after each {@link Hook#PREFILL_AFTER} selection, so that both follow the {@link
 * PositionMode} rules in one place. Immutable, with value equality.
 */
public final class SequenceLayout {

  private final int[] originalIndex;
  private final int[] positionId;
  private final int[] visualIndex;
  private final int nextPosition;

  private SequenceLayout(
      int[] originalIndex, int[] positionId, int[] visualIndex, int nextPosition) {
    this.originalIndex = originalIndex;
    this.positionId = positionId;
    this.visualIndex = visualIndex;
    this.nextPosition = nextPosition;
  }

  /**
   * A layout from explicit per-row arrays (copied); the next decode position is the largest
   * position id plus one.
   *
   * @throws IllegalArgumentException if lengths differ, an original index or position is negative,
   *     original indices are not strictly ascending, or a visual index is below -1
   */
  public static SequenceLayout of(int[] originalIndex, int[] positionId, int[] visualIndex) {
    int n = originalIndex.length;
    if (positionId.length != n || visualIndex.length != n) {
      throw new IllegalArgumentException(
          "layout arrays differ in length: originalIndex "
              + n
              + ", positionId "
              + positionId.length
              + ", visualIndex "
              + visualIndex.length);
    }
    int max = -1;
    for (int r = 0; r < n; r++) {
      if (originalIndex[r] < 0 || (r > 0 && originalIndex[r] <= originalIndex[r - 1])) {
        throw new IllegalArgumentException(
            "originalIndex must be non-negative and strictly ascending, got "
                + Arrays.toString(originalIndex));
      }
      if (positionId[r] < 0) {
        throw new IllegalArgumentException(
            "positionId[" + r + "] must be >= 0, got " + positionId[r]);
      }
      if (visualIndex[r] < -1) {
        throw new IllegalArgumentException(
            "visualIndex[" + r + "] must be >= -1, got " + visualIndex[r]);
      }
      max = Math.max(max, positionId[r]);
    }
    return new SequenceLayout(
        originalIndex.clone(), positionId.clone(), visualIndex.clone(), max + 1);
  }

  /**
   * The prefill layout {@code prefix + visual tokens + suffix} after the given {@link
   * Hook#VISUAL_TOKENS} selections, applied in order to the {@code visualCount} visual tokens of
   * the projector output.
   *
   * <p>Positions start at 0 for the first prefix row. Within the image span each visual token
   * carries a position relative to the span start (initially {@code 0..N-1}) and the span has a
   * length (initially {@code N}); a {@link PositionMode#REPACK} selection renumbers the kept tokens
   * {@code 0..k-1} and shortens the span to {@code k}; a {@link PositionMode#KEEP_ORIGINAL}
   * selection keeps both. Visual row {@code i} then has position {@code prefixLength + rel[i]} and
   * suffix row {@code j} has {@code prefixLength + span + j}. The next decode position is {@code
   * prefixLength + span + suffixLength}.
   *
   * @throws IllegalArgumentException if a selection's input count differs from the number of visual
   *     tokens it is applied to
   */
  public static SequenceLayout prefill(
      int prefixLength, int visualCount, int suffixLength, List<TokenSelection> visualSelections) {
    if (prefixLength < 0 || visualCount < 0 || suffixLength < 0) {
      throw new IllegalArgumentException(
          "prefixLength, visualCount and suffixLength must be >= 0, got "
              + prefixLength
              + ", "
              + visualCount
              + ", "
              + suffixLength);
    }
    int[] vis = identity(visualCount);
    int[] rel = identity(visualCount);
    int span = visualCount;
    for (int s = 0; s < visualSelections.size(); s++) {
      TokenSelection sel = visualSelections.get(s);
      if (sel.inputCount() != vis.length) {
        throw new IllegalArgumentException(
            "visual selection "
                + s
                + " is over "
                + sel.inputCount()
                + " tokens, but "
                + vis.length
                + " visual tokens remain");
      }
      int k = sel.keptCount();
      int[] nv = new int[k];
      int[] nr = new int[k];
      for (int i = 0; i < k; i++) {
        nv[i] = vis[sel.kept(i)];
        nr[i] = sel.positions() == PositionMode.REPACK ? i : rel[sel.kept(i)];
      }
      if (sel.positions() == PositionMode.REPACK) {
        span = k;
      }
      vis = nv;
      rel = nr;
    }
    int n = prefixLength + vis.length + suffixLength;
    int[] orig = new int[n];
    int[] pos = new int[n];
    int[] vidx = new int[n];
    int r = 0;
    for (int i = 0; i < prefixLength; i++, r++) {
      orig[r] = i;
      pos[r] = i;
      vidx[r] = -1;
    }
    for (int i = 0; i < vis.length; i++, r++) {
      orig[r] = prefixLength + vis[i];
      pos[r] = prefixLength + rel[i];
      vidx[r] = vis[i];
    }
    for (int j = 0; j < suffixLength; j++, r++) {
      orig[r] = prefixLength + visualCount + j;
      pos[r] = prefixLength + span + j;
      vidx[r] = -1;
    }
    return new SequenceLayout(orig, pos, vidx, prefixLength + span + suffixLength);
  }

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  /**
   * The layout after a {@link Hook#PREFILL_AFTER} selection over these rows: kept rows keep their
   * original and visual indices; positions follow the selection's {@link PositionMode} ({@code
   * KEEP_ORIGINAL}: unchanged, next decode position unchanged; {@code REPACK}: {@code 0..k-1}, next
   * decode position {@code k}).
   *
   * @throws IllegalArgumentException if the selection is not over {@link #length()} rows
   */
  public SequenceLayout apply(TokenSelection selection) {
    if (selection.inputCount() != length()) {
      throw new IllegalArgumentException(
          "selection is over " + selection.inputCount() + " rows, layout has " + length());
    }
    int k = selection.keptCount();
    int[] orig = new int[k];
    int[] pos = new int[k];
    int[] vidx = new int[k];
    boolean repack = selection.positions() == PositionMode.REPACK;
    for (int i = 0; i < k; i++) {
      int r = selection.kept(i);
      orig[i] = originalIndex[r];
      pos[i] = repack ? i : positionId[r];
      vidx[i] = visualIndex[r];
    }
    return new SequenceLayout(orig, pos, vidx, repack ? k : nextPosition);
  }

  /** Number of rows. */
  public int length() {
    return originalIndex.length;
  }

  /** Original token index of row {@code r}. */
  public int originalIndex(int r) {
    return originalIndex[r];
  }

  /** Position id of row {@code r}. */
  public int positionId(int r) {
    return positionId[r];
  }

  /** Visual token index of row {@code r}, or -1 for a text row. */
  public int visualIndex(int r) {
    return visualIndex[r];
  }

  /** Whether row {@code r} is a visual token. */
  public boolean isVisual(int r) {
    return visualIndex[r] >= 0;
  }

  /** Number of visual rows. */
  public int visualCount() {
    int c = 0;
    for (int v : visualIndex) {
      if (v >= 0) {
        c++;
      }
    }
    return c;
  }

  /** Indices of the visual rows, ascending. */
  public int[] visualRows() {
    int[] rows = new int[visualCount()];
    int j = 0;
    for (int r = 0; r < visualIndex.length; r++) {
      if (visualIndex[r] >= 0) {
        rows[j++] = r;
      }
    }
    return rows;
  }

  /** Position id of the first generated token. */
  public int nextPosition() {
    return nextPosition;
  }

  /** A copy of the original token indices. */
  public int[] originalIndices() {
    return originalIndex.clone();
  }

  /** A copy of the position ids. */
  public int[] positionIds() {
    return positionId.clone();
  }

  /** A copy of the visual indices (-1 for text rows). */
  public int[] visualIndices() {
    return visualIndex.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SequenceLayout l
        && nextPosition == l.nextPosition
        && Arrays.equals(originalIndex, l.originalIndex)
        && Arrays.equals(positionId, l.positionId)
        && Arrays.equals(visualIndex, l.visualIndex);
  }

  @Override
  public int hashCode() {
    return ((Arrays.hashCode(originalIndex) * 31 + Arrays.hashCode(positionId)) * 31
                + Arrays.hashCode(visualIndex))
            * 31
        + nextPosition;
  }

  @Override
  public String toString() {
    return "SequenceLayout["
        + length()
        + " rows, "
        + visualCount()
        + " visual, nextPosition="
        + nextPosition
        + "]";
  }
}
