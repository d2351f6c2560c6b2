package dev.tokenpress.operators.api;

import dev.tokenpress.operators.prune.VtcCls;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Configuration of {@link VtcCls} (VTC-CLS: keep the visual tokens with the highest CLS attention
 * summed over ViT layers).
 *
 * <p>JSON ({@code "op": "vtc-cls"}): exactly one of {@code keep} (the reference's {@code
 * --token_num}; typical budgets 64/128/192), {@code keep_ratio}, {@code drop_ratio} (required), and
 * {@code layers}, a {@link LayerRange} over the ViT's {@code L} layers, default {@value
 * #DEFAULT_LAYERS} (the reference's {@code --layer 16} start and {@code attentions[start_layer:-1]}
 * end). Example: {@code {"op":"vtc-cls","keep":64,"layers":"16..L-2"}}.
 *
 * @param budget how many visual tokens to keep
 * @param layers ViT layers whose CLS attention is summed
 */
public record VtcClsConfig(Budget budget, LayerRange layers) implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "vtc-cls";

  /** Default layer range: THU-MIG/VTC-CLS's default start layer 16 through {@code L-2}. */
  public static final String DEFAULT_LAYERS = "16..L-2";

  static final List<String> KEYS = List.of("keep", "keep_ratio", "drop_ratio", "layers");

  /** Rejects nulls. */
  public VtcClsConfig {
    if (budget == null) {
      throw new IllegalArgumentException(NAME + ": one of " + Budget.KEYS + " is required");
    }
    if (layers == null) {
      throw new IllegalArgumentException(NAME + ".layers must not be null");
    }
  }

  /** The default layers {@value #DEFAULT_LAYERS}. */
  public VtcClsConfig(Budget budget) {
    this(budget, LayerRange.parse(DEFAULT_LAYERS));
  }

  static VtcClsConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    return new VtcClsConfig(
        f.budget(null), f.layerRange("layers", LayerRange.parse(DEFAULT_LAYERS)));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public VtcCls build() {
    return new VtcCls(this);
  }

  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put(budget.key(), budget.value());
    m.put("layers", layers.toString());
    return m;
  }
}
