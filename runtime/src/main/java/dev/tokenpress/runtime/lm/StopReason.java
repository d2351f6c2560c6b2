package dev.tokenpress.runtime.lm;

/** Why generation ended. */
public enum StopReason {
  /** a stop token was chosen */
  STOP_TOKEN,
  /** max new tokens reached */
  MAX_NEW_TOKENS,
  /** the next position would exceed the model's context */
  CONTEXT_LIMIT
}
