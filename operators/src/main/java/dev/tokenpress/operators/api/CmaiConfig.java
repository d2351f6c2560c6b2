package dev.tokenpress.operators.api;

import dev.tokenpress.operators.attention.Cmai;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Configuration of {@link Cmai} (cross-modal attention inhibition, the LM-side half of VMTC/CMAI,
 * arXiv 2411.15453). The paper's method section could not be read: this is a reconstruction from
 * the abstract, and every unknown is an option whose default is ours, not the paper's.
 *
 * <p>JSON ({@code "op": "cmai"}), every key optional:
 *
 * <ul>
 *   <li>{@code focus_layers} ({@value #DEFAULT_FOCUS_LAYERS}, a {@link LayerRange}): layers whose
 *       head-mean attention gives the focus score {@code F = A_tt · A_ti} (averaged over these
 *       layers);
 *   <li>{@code layers} ({@value #DEFAULT_LAYERS}): layers whose attention is inhibited. When all
 *       come after the focus layers one prefill pass suffices; otherwise the runtime first runs a
 *       plain probe prefill through the last focus layer for the focus scores, and in decode an
 *       inhibited layer at or before a focus layer uses the previous token's focus row (the last
 *       prompt token's at the first step): a one-step delay;
 *   <li>{@code rule} ({@code "relative"}): {@code relative} inhibits image token {@code v} for
 *       query {@code i} when {@code F[i,v] < threshold · max_v F[i,v]}; {@code quantile} inhibits
 *       the {@code floor(threshold · n)} image tokens of lowest focus per row (ties: the later
 *       token);
 *   <li>{@code threshold} ({@value #DEFAULT_THRESHOLD}): the rule's parameter, in {@code [0, 1]}; 0
 *       inhibits nothing (the neutral setting);
 *   <li>{@code bias} ({@value #DEFAULT_BIAS}): the additive attention bias of an inhibited pair
 *       ({@code <= 0}; the default effectively masks it, as "changing the causal mask" would);
 *   <li>{@code decode} ({@code true}): also inhibit in every decode step, with the step's own focus
 *       row (its attention at the focus layers of the same step).
 * </ul>
 *
 * Queries are the text rows after the image in prefill and each generated token; keys are the image
 * tokens present at the inhibited layer. Example: {@code {"op":"cmai","threshold":0.05}}.
 *
 * @param focusLayers layers of the focus score
 * @param layers inhibited layers
 * @param rule how low focus is decided
 * @param threshold the rule's parameter
 * @param bias additive bias of an inhibited pair
 * @param decode whether decode steps are inhibited too
 */
public record CmaiConfig(
    LayerRange focusLayers,
    LayerRange layers,
    Rule rule,
    double threshold,
    double bias,
    boolean decode)
    implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "cmai";

  /** Default focus layer (ours). */
  public static final String DEFAULT_FOCUS_LAYERS = "1";

  /** Default inhibited layers (ours). */
  public static final String DEFAULT_LAYERS = "2..L-1";

  /** Default threshold (ours). */
  public static final double DEFAULT_THRESHOLD = 0.1;

  /** Default bias (ours): large enough to zero the pair's probability. */
  public static final double DEFAULT_BIAS = -10000;

  static final List<String> KEYS =
      List.of("focus_layers", "layers", "rule", "threshold", "bias", "decode");

  /** How a low focus score is decided. */
  public enum Rule {
    /** {@code F[i,v] < threshold · max_v F[i,v]}. */
    RELATIVE,
    /** The lowest {@code floor(threshold · n)} of the row. */
    QUANTILE;

    /** The JSON name. */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Validates every field. */
  public CmaiConfig {
    if (focusLayers == null || layers == null || rule == null) {
      throw new IllegalArgumentException(
          NAME + ".focus_layers, .layers and .rule must not be null");
    }
    if (!(threshold >= 0 && threshold <= 1)) {
      throw new IllegalArgumentException(NAME + ".threshold must be in [0, 1], got " + threshold);
    }
    if (!(bias <= 0) || Double.isInfinite(bias)) {
      throw new IllegalArgumentException(NAME + ".bias must be a finite number <= 0, got " + bias);
    }
  }

  /** The documented defaults. */
  public static CmaiConfig defaults() {
    return new CmaiConfig(
        LayerRange.parse(DEFAULT_FOCUS_LAYERS),
        LayerRange.parse(DEFAULT_LAYERS),
        Rule.RELATIVE,
        DEFAULT_THRESHOLD,
        DEFAULT_BIAS,
        true);
  }

  static CmaiConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    return new CmaiConfig(
        f.layerRange("focus_layers", LayerRange.parse(DEFAULT_FOCUS_LAYERS)),
        f.layerRange("layers", LayerRange.parse(DEFAULT_LAYERS)),
        f.getEnum("rule", Rule.class, Rule.RELATIVE),
        f.has("threshold") ? f.getDouble("threshold") : DEFAULT_THRESHOLD,
        f.has("bias") ? f.getDouble("bias") : DEFAULT_BIAS,
        f.getBoolean("decode", true));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Cmai build() {
    return new Cmai(this);
  }

  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put("focus_layers", focusLayers.toString());
    m.put("layers", layers.toString());
    m.put("rule", rule.jsonName());
    m.put("threshold", threshold);
    m.put("bias", bias);
    m.put("decode", decode);
    return m;
  }
}
