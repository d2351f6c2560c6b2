package dev.tokenpress.runtime.text;

/**
 * A prompt (with its image expanded to visual tokens) does not fit the model's context. Unchecked;
 * the message gives every number.
 */
public final class PromptTooLongException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final int tokens;
  private final int context;

  public PromptTooLongException(int tokens, int textTokens, int imageTokens, int context) {
    super(
        "prompt needs "
            + tokens
            + " positions ("
            + textTokens
            + " text tokens + "
            + imageTokens
            + " visual tokens) plus at least one to generate, but the model's context is "
            + context
            + " (max_position_embeddings); shorten the prompt");
    this.tokens = tokens;
    this.context = context;
  }

  /** Positions the prompt needs after image expansion. */
  public int tokens() {
    return tokens;
  }

  public int context() {
    return context;
  }
}
