package dev.tokenpress.operators.api;

/**
 * What happens to the position ids (RoPE positions) of the tokens a {@link TokenSelection} keeps.
 * The runtime follows this exactly; {@link SequenceLayout#prefill} and {@link SequenceLayout#apply}
 * implement the rules.
 */
public enum PositionMode {
  /**
   * Kept tokens keep the position ids they had, gaps and all, and so do the tokens after them; the
   * next decode position is unchanged. FastV's "inplace" mode ({@code position_ids = keep_indexs}).
   */
  KEEP_ORIGINAL,
  /**
   * Positions are re-packed as if the dropped tokens had never existed: at {@link
   * Hook#VISUAL_TOKENS}, the kept visual tokens take consecutive positions and the prompt after the
   * image moves up; at {@link Hook#PREFILL_AFTER}, all rows get positions {@code 0..n-1}. What
   * Hugging Face LLaVA does when fewer image features are spliced into the prompt (VTC-CLS), since
   * it rebuilds positions from the attention mask.
   */
  REPACK
}
