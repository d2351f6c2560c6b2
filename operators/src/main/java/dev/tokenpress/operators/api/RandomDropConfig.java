package dev.tokenpress.operators.api;

import dev.tokenpress.operators.prune.RandomDrop;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Configuration of {@link RandomDrop}: keep a uniformly random subset of the visual tokens.
 *
 * <p>JSON ({@code "op": "random-drop"}): exactly one of {@code keep}, {@code keep_ratio}, {@code
 * drop_ratio} (see {@link Budget}; required), {@code seed} (integer, default 0) and {@code
 * positions} ({@code "repack"}, the default, or {@code "keep_original"}; see {@link PositionMode}).
 * Example: {@code {"op":"random-drop","keep_ratio":0.25,"seed":0}}.
 *
 * @param budget how many visual tokens to keep
 * @param seed combined with the per-record seed ({@link Seeds#combine}) so that different seeds
 *     give independent draws for the same record
 * @param positions the kept tokens' position ids: re-packed, as Hugging Face LLaVA does when fewer
 *     image features are spliced into the prompt, or their original ones (gaps kept), which
 *     separates the loss of tokens from the loss of their positions
 */
public record RandomDropConfig(Budget budget, long seed, PositionMode positions)
    implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "random-drop";

  static final List<String> KEYS = List.of("keep", "keep_ratio", "drop_ratio", "seed", "positions");

  /** Rejects a null budget or position mode. */
  public RandomDropConfig {
    if (budget == null) {
      throw new IllegalArgumentException(NAME + ": one of " + Budget.KEYS + " is required");
    }
    if (positions == null) {
      throw new IllegalArgumentException(NAME + ".positions must not be null");
    }
  }

  /** Re-packed positions. */
  public RandomDropConfig(Budget budget, long seed) {
    this(budget, seed, PositionMode.REPACK);
  }

  /** Seed 0, re-packed positions. */
  public RandomDropConfig(Budget budget) {
    this(budget, 0L);
  }

  static RandomDropConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    return new RandomDropConfig(
        f.budget(null),
        f.getLong("seed", 0L),
        f.getEnum("positions", PositionMode.class, PositionMode.REPACK));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public RandomDrop build() {
    return new RandomDrop(this);
  }

  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put(budget.key(), budget.value());
    m.put("seed", seed);
    if (positions != PositionMode.REPACK) {
      m.put("positions", positions.name().toLowerCase(java.util.Locale.ROOT));
    }
    return m;
  }
}
