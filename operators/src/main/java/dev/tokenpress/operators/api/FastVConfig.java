package dev.tokenpress.operators.api;

import dev.tokenpress.operators.prune.FastV;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Configuration of {@link FastV} (drop image tokens after LM layer {@code K-1} by the attention
 * they receive from the last prompt token).
 *
 * <p>JSON ({@code "op": "fastv"}): {@code layer} ({@code K}, default {@value #DEFAULT_LAYER}; must
 * be in {@code [1, lmLayers-1]}), at most one of {@code drop_ratio} (the paper's {@code R}, default
 * {@value #DEFAULT_DROP_RATIO}), {@code keep} (the reference code's {@code fast_v_attention_rank},
 * e.g. 288 of 576) or {@code keep_ratio}, and {@code mode} ({@code "inplace"}, the default and the
 * only mode implemented; {@code "mask"} is rejected). Example: {@code
 * {"op":"fastv","layer":2,"drop_ratio":0.5,"mode":"inplace"}}.
 *
 * @param layer {@code K}: the first LM layer that runs without the dropped tokens
 * @param budget how many of the image tokens to keep
 * @param mode how dropped tokens are removed
 */
public record FastVConfig(int layer, Budget budget, Mode mode) implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "fastv";

  /** The paper's {@code K}. */
  public static final int DEFAULT_LAYER = 2;

  /** The paper's {@code R}. */
  public static final double DEFAULT_DROP_RATIO = 0.5;

  static final List<String> KEYS = List.of("layer", "keep", "keep_ratio", "drop_ratio", "mode");

  /** How FastV removes the tokens it drops. */
  public enum Mode {
    /**
     * Remove the dropped image tokens from the hidden states of layers {@code >= K}, keeping the
     * original position ids of the rest; layers {@code < K} keep a full KV cache.
     */
    INPLACE,
    /**
     * Add {@code -inf} to the dropped tokens' attention mask instead, re-choosing at each step. Not
     * implemented: it needs the {@link Hook#PREFILL} and {@link Hook#DECODE} callbacks.
     */
    MASK;

    /** The JSON name. */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Validates the model-independent constraints. */
  public FastVConfig {
    if (layer < 1) {
      throw new IllegalArgumentException(NAME + ".layer must be in [1, numLayers-1], got " + layer);
    }
    if (budget == null) {
      throw new IllegalArgumentException(NAME + ": budget must not be null");
    }
    if (mode == null) {
      throw new IllegalArgumentException(NAME + ".mode must not be null");
    }
    if (mode != Mode.INPLACE) {
      throw new IllegalArgumentException(
          NAME + ".mode \"" + mode.jsonName() + "\" is not supported yet; supported: [inplace]");
    }
  }

  /** The paper's defaults: {@code K = 2}, {@code R = 0.5}, inplace. */
  public static FastVConfig defaults() {
    return new FastVConfig(DEFAULT_LAYER, Budget.dropRatio(DEFAULT_DROP_RATIO), Mode.INPLACE);
  }

  static FastVConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    return new FastVConfig(
        f.getInt("layer", DEFAULT_LAYER),
        f.budget(Budget.dropRatio(DEFAULT_DROP_RATIO)),
        f.getEnum("mode", Mode.class, Mode.INPLACE));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public FastV build() {
    return new FastV(this);
  }

  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put("layer", layer);
    m.put(budget.key(), budget.value());
    m.put("mode", mode.jsonName());
    return m;
  }
}
