package dev.tokenpress.evaluate.report;

/** The costs the report plots accuracy against; each one has its own Pareto front. */
public enum CostAxis {
  VISUAL_TOKENS("visual_tokens", "mean visual tokens kept"),
  FLOPS("flops", "FLOPs ratio to the empty plan"),
  KV_BYTES("kv_bytes", "KV bytes per record"),
  WALL_MS("wall_ms", "ms per record");

  private final String key;
  private final String title;

  CostAxis(String key, String title) {
    this.key = key;
    this.title = title;
  }

  /** Stable id used in the report's data and element ids ({@code chart-<key>}). */
  public String key() {
    return key;
  }

  /** Axis title. */
  public String title() {
    return title;
  }

  /**
   * This cost of a plan; {@code NaN} where it was not measured (e.g. KV bytes with the KV cache
   * off).
   */
  public double of(PlanSummary s) {
    return switch (this) {
      case VISUAL_TOKENS -> s.meanVisualTokens();
      case FLOPS -> s.flopsRatio();
      case KV_BYTES -> s.kvBytesPerRecord();
      case WALL_MS -> s.msPerRecord();
    };
  }
}
