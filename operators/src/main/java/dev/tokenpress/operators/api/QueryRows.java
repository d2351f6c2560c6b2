package dev.tokenpress.operators.api;

/**
 * Which query rows of an LM layer's attention a {@link Signal.QueryRowAttention} asks for. Each
 * value resolves itself against the current {@link SequenceLayout}, so the runtime does not need to
 * know the rule, only the row indices.
 */
public enum QueryRows {
  /**
   * The last row of the prefill sequence: the last prompt token (including the chat template's
   * trailing tokens such as {@code "ASSISTANT:"}). FastV's scoring row.
   */
  LAST_PROMPT_TOKEN,
  /**
   * Every row after the last visual row (question and template tokens); empty when the sequence has
   * no visual row. MustDrop's and SparseVLM's text rows.
   */
  TEXT_AFTER_VISUAL;

  /**
   * The row indices into {@code layout}, ascending.
   *
   * @throws IllegalArgumentException for {@link #LAST_PROMPT_TOKEN} on an empty sequence
   */
  public int[] resolve(SequenceLayout layout) {
    int n = layout.length();
    switch (this) {
      case LAST_PROMPT_TOKEN:
        if (n == 0) {
          throw new IllegalArgumentException("LAST_PROMPT_TOKEN of an empty sequence");
        }
        return new int[] {n - 1};
      case TEXT_AFTER_VISUAL:
        {
          int last = -1;
          for (int r = 0; r < n; r++) {
            if (layout.isVisual(r)) {
              last = r;
            }
          }
          if (last < 0) {
            return new int[0];
          }
          int[] rows = new int[n - last - 1];
          for (int i = 0; i < rows.length; i++) {
            rows[i] = last + 1 + i;
          }
          return rows;
        }
      default:
        throw new AssertionError(this);
    }
  }
}
