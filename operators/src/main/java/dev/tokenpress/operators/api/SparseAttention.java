package dev.tokenpress.operators.api;

import java.util.Arrays;

/**
 * A sparse prefill attention set for one LM layer ({@link TokenOperator#prefillSparse}): the
 * runtime gathers the rows of {@link #rows()} (queries, keys and values) and computes attention
 * among them only, a real reduction of work rather than a {@code -inf} bias over the full matrix.
 *
 * <p>With {@link #othersAttend()} every other query row attends over the same gathered keys (one
 * attention of all rows over {@code |rows|} keys, causal by token index); otherwise the other rows'
 * attention output is zero and only the gathered rows run attention ({@code |rows|²}).
 *
 * @param inputCount the rows of the layout the set is over
 * @param rows ascending row indices into the layout; must include the last row
 * @param othersAttend whether the rows outside the set attend over the set's keys
 */
public record SparseAttention(int inputCount, int[] rows, boolean othersAttend) {

  /** Validates the rows (ascending, in range, last row included). */
  public SparseAttention {
    if (rows == null || rows.length == 0) {
      throw new IllegalArgumentException("a sparse attention set needs at least one row");
    }
    int prev = -1;
    for (int r : rows) {
      if (r <= prev || r >= inputCount) {
        throw new IllegalArgumentException(
            "sparse attention rows must be ascending within [0, "
                + inputCount
                + "), found "
                + r
                + " after "
                + prev);
      }
      prev = r;
    }
    if (rows[rows.length - 1] != inputCount - 1) {
      throw new IllegalArgumentException(
          "sparse attention rows must include the last row "
              + (inputCount - 1)
              + ", whose output gives the logits");
    }
    rows = rows.clone();
  }

  /** The rows (a copy). */
  @Override
  public int[] rows() {
    return rows.clone();
  }

  /** Whether every row is in the set (nothing to gather). */
  public boolean dense() {
    return rows.length == inputCount;
  }

  /** The rows present in both sets; the others attend only if both say so. */
  public SparseAttention intersect(SparseAttention o) {
    if (o.inputCount != inputCount) {
      throw new IllegalArgumentException(
          "sparse sets over " + inputCount + " and " + o.inputCount + " rows");
    }
    int[] out = new int[Math.min(rows.length, o.rows.length)];
    int n = 0;
    int i = 0;
    int j = 0;
    while (i < rows.length && j < o.rows.length) {
      if (rows[i] == o.rows[j]) {
        out[n++] = rows[i];
        i++;
        j++;
      } else if (rows[i] < o.rows[j]) {
        i++;
      } else {
        j++;
      }
    }
    return new SparseAttention(inputCount, Arrays.copyOf(out, n), othersAttend && o.othersAttend);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SparseAttention s
        && s.inputCount == inputCount
        && s.othersAttend == othersAttend
        && Arrays.equals(s.rows, rows);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(rows) + inputCount * 2 + (othersAttend ? 1 : 0);
  }

  @Override
  public String toString() {
    return "SparseAttention("
        + rows.length
        + " of "
        + inputCount
        + " rows, othersAttend="
        + othersAttend
        + ")";
  }
}
