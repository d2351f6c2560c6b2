package dev.tokenpress.operators.api;

import dev.tokenpress.operators.merge.ToMe;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Configuration of {@link ToMe} (Token Merging, Bolya et al., ICLR 2023).
 *
 * <p>JSON ({@code "op": "tome"}): {@code r} (required): tokens merged away in every ViT layer run,
 * either one integer for every layer or an array with one integer per layer run ({@code
 * visionFeatureLayer + 1} entries); {@code prop_attn} (boolean, default true): proportional
 * attention, {@code log(size)} added to the ViT attention logits. Example: {@code
 * {"op":"tome","r":8}} or {@code {"op":"tome","r":[16,16,8,0],"prop_attn":false}}.
 *
 * @param r a single value for every layer, or one per layer run; each {@code >= 0}
 * @param proportionalAttention whether the ViT adds {@code log(size)} to its attention logits
 */
public record ToMeConfig(List<Integer> r, boolean proportionalAttention) implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "tome";

  static final List<String> KEYS = List.of("r", "prop_attn");

  /**
   * Validates {@code r} (model-independent part; {@link ToMe#validate} checks it against the
   * model).
   */
  public ToMeConfig {
    if (r == null || r.isEmpty()) {
      throw new IllegalArgumentException(
          NAME + ".r is required (an integer or an array of integers)");
    }
    r = List.copyOf(r);
    for (int i = 0; i < r.size(); i++) {
      if (r.get(i) < 0) {
        throw new IllegalArgumentException(
            NAME + ".r" + (r.size() > 1 ? "[" + i + "]" : "") + " must be >= 0, got " + r.get(i));
      }
    }
  }

  /** The same {@code r} in every layer, with proportional attention. */
  public ToMeConfig(int r) {
    this(List.of(r), true);
  }

  static ToMeConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    return new ToMeConfig(f.getIntOrIntList("r"), f.getBoolean("prop_attn", true));
  }

  /**
   * The tokens merged away in each of {@code layers} ViT layers.
   *
   * @throws IllegalArgumentException if {@code r} is a list of another length
   */
  public int[] perLayer(int layers) {
    int[] out = new int[layers];
    if (r.size() == 1) {
      java.util.Arrays.fill(out, r.get(0));
      return out;
    }
    if (r.size() != layers) {
      throw new IllegalArgumentException(
          NAME
              + ".r has "
              + r.size()
              + " entries; give one integer for every "
              + "layer or exactly one per ViT layer run ("
              + layers
              + " for this model)");
    }
    for (int i = 0; i < layers; i++) {
      out[i] = r.get(i);
    }
    return out;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ToMe build() {
    return new ToMe(this);
  }

  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put("r", r.size() == 1 ? (Object) r.get(0) : r);
    m.put("prop_attn", proportionalAttention);
    return m;
  }
}
