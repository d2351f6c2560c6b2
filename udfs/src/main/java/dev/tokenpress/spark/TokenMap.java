package dev.tokenpress.spark;

import java.util.Objects;

/**
 * Where the tokens entering one stage went: {@code map[i]} is the index of source token i in the
 * stage's output, or -1 when it was dropped. Several sources with one target were merged.
 */
public final class TokenMap {
  private final String stage;
  private final int[] map;

  /** Takes ownership of {@code map}. */
  public TokenMap(String stage, int[] map) {
    this.stage = Objects.requireNonNull(stage, "stage");
    this.map = Objects.requireNonNull(map, "map");
  }

  public String stage() {
    return stage;
  }

  /** Not copied: do not modify. */
  public int[] map() {
    return map;
  }
}
