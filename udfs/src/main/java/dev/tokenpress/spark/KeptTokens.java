package dev.tokenpress.spark;

import java.util.Objects;

/**
 * One selection an operator applied: which of the {@code inputCount} tokens entering it were kept
 * ({@code kept}, ascending input indices) and their original indices ({@code original}: visual
 * indices for the visual-token hook, original sequence indices for prefill hooks), and the
 * operator's optional label of every input token ({@code labels}, e.g. VMTC's cluster assignment).
 */
public final class KeptTokens {
  private final String operator;
  private final String hook;
  private final int layer;
  private final int inputCount;
  private final int[] kept;
  private final int[] original;
  private final int[] labels;

  /** Takes ownership of the arrays; no labels. */
  public KeptTokens(
      String operator, String hook, int layer, int inputCount, int[] kept, int[] original) {
    this(operator, hook, layer, inputCount, kept, original, null);
  }

  /** Takes ownership of the arrays; {@code labels} is null or has one value per input token. */
  public KeptTokens(
      String operator,
      String hook,
      int layer,
      int inputCount,
      int[] kept,
      int[] original,
      int[] labels) {
    this.operator = Objects.requireNonNull(operator, "operator");
    this.hook = Objects.requireNonNull(hook, "hook");
    this.layer = layer;
    this.inputCount = inputCount;
    this.kept = Objects.requireNonNull(kept, "kept");
    this.original = Objects.requireNonNull(original, "original");
    if (kept.length != original.length || kept.length > inputCount) {
      throw new IllegalArgumentException(
          operator
              + "@"
              + hook
              + ": "
              + kept.length
              + " kept, "
              + original.length
              + " original indices, "
              + inputCount
              + " inputs");
    }
    if (labels != null && labels.length != inputCount) {
      throw new IllegalArgumentException(
          operator + "@" + hook + ": " + labels.length + " labels, " + inputCount + " inputs");
    }
    this.labels = labels;
  }

  public String operator() {
    return operator;
  }

  public String hook() {
    return hook;
  }

  /** ViT layer for the ViT hook, LM layer for prefill hooks, -1 otherwise. */
  public int layer() {
    return layer;
  }

  public int inputCount() {
    return inputCount;
  }

  /** Not copied: do not modify. */
  public int[] kept() {
    return kept;
  }

  /** Not copied: do not modify. */
  public int[] original() {
    return original;
  }

  /** The operator's label of each input token, or null (not copied: do not modify). */
  public int[] labels() {
    return labels;
  }
}
