package dev.tokenpress.operators.api;

import dev.tokenpress.operators.prune.ZipVl;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Configuration of {@link ZipVl} (ZipVL v1, arXiv 2410.08584: dynamic-ratio sparse prefill and a
 * mixed-precision KV cache).
 *
 * <p>JSON ({@code "op": "zipvl"}), every key optional:
 *
 * <ul>
 *   <li>{@code tau} ({@value #DEFAULT_TAU}; in {@code (0, 1]}): Eq. 6's share of the accumulated
 *       attention mass that the important tokens must hold (the paper's 0.96 / 0.975);
 *   <li>{@code probes_recent} ({@value #DEFAULT_PROBES}) and {@code probes_random} ({@value
 *       #DEFAULT_PROBES}): probe query rows, the last {@code probes_recent} rows plus {@code
 *       probes_random} earlier rows drawn per record and layer (at least one probe);
 *   <li>{@code bits_high} (4; 16, 8, 4 or 2) and {@code bits_low} (2; 8, 4 or 2, at most {@code
 *       bits_high}): KV bits of important and other tokens (16 = float16, no quantisation);
 *   <li>{@code interval} ({@value #DEFAULT_INTERVAL}; 0 turns it off): every {@code interval}
 *       generated tokens, those tokens are scored with the current query and re-encoded;
 *   <li>{@code mode} ({@code "sparse"} or {@code "kv-only"}): sparse prefill (attention among the
 *       important tokens only) or dense prefill with ZipVL deciding only the KV precision;
 *   <li>{@code unimportant_rows} ({@code "important_keys"} or {@code "zero"}, sparse mode only):
 *       the attention output of the unimportant query rows (see {@link UnimportantRows});
 *   <li>{@code heads} ({@code "shared"} or {@code "per_kv_head"}): one important set per layer from
 *       the attention summed over every head, or one set per KV head from the attention of its
 *       query heads, as ZipCache selects (see {@link Heads}); {@code per_kv_head} needs {@code
 *       bits_high <= 8};
 *   <li>{@code seed} (0): mixed into the per-record seed that draws the random probes.
 * </ul>
 *
 * Example: {@code {"op":"zipvl","tau":0.96,"mode":"sparse"}}.
 *
 * @param tau Eq. 6 threshold
 * @param probesRecent last rows used as probes
 * @param probesRandom random earlier rows used as probes
 * @param bitsHigh KV bits of important tokens (16, 8, 4, 2)
 * @param bitsLow KV bits of the other tokens (8, 4, 2)
 * @param interval decode re-encoding period in generated tokens, 0 = never
 * @param mode sparse prefill or KV precision only
 * @param unimportantRows what the unimportant rows' attention outputs are in sparse mode
 * @param heads whether the important set is shared across heads
 * @param seed mixed into the probe seed
 */
public record ZipVlConfig(
    double tau,
    int probesRecent,
    int probesRandom,
    int bitsHigh,
    int bitsLow,
    int interval,
    Mode mode,
    UnimportantRows unimportantRows,
    Heads heads,
    long seed)
    implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "zipvl";

  /** The paper's image setting. */
  public static final double DEFAULT_TAU = 0.96;

  /** 64 recent and 64 random probe rows (the paper's rebuttal). */
  public static final int DEFAULT_PROBES = 64;

  /** The paper's decode re-encoding period. */
  public static final int DEFAULT_INTERVAL = 100;

  static final List<String> KEYS =
      List.of(
          "tau",
          "probes_recent",
          "probes_random",
          "bits_high",
          "bits_low",
          "interval",
          "mode",
          "unimportant_rows",
          "heads",
          "seed");

  /** Whether ZipVL changes the prefill attention or only the KV precision. */
  public enum Mode {
    /** Attention of every layer among the important tokens only (gathered rows and columns). */
    SPARSE("sparse"),
    /** Dense prefill; ZipVL only decides which tokens are stored at {@code bits_high}. */
    KV_ONLY("kv-only");

    private final String json;

    Mode(String json) {
      this.json = json;
    }

    /** The JSON name. */
    public String jsonName() {
      return json;
    }
  }

  /**
   * The attention output of the unimportant query rows under sparse prefill. The paper computes
   * {@code O_T = Attention(Q[T], K[T], V[T])} and is silent on the other rows.
   */
  public enum UnimportantRows {
    /**
     * Every query row attends over the important keys before it (one gathered attention of all rows
     * over {@code |T|} keys); important rows thus get exactly the paper's {@code O_T}.
     */
    IMPORTANT_KEYS,
    /**
     * Only the important rows run attention ({@code |T|²} work); the others get a zero attention
     * output, so their residual stream skips attention ("padded out").
     */
    ZERO;

    /** The JSON name. */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** How the important set relates to attention heads. */
  public enum Heads {
    /** One set per layer from the attention summed over all query heads. */
    SHARED,
    /**
     * One set per KV head (ZipCache): Eq. 6 and Eq. 7 on the attention summed over the query heads
     * of that KV head's group, so each KV head gets its own count {@code p_g} and its own tokens at
     * {@code bits_high}; each KV head is quantised on its own. Sparse prefill attends over the
     * union of the heads' sets (the gathered attention takes one set per layer).
     */
    PER_KV_HEAD;

    /** The JSON name. */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Validates every field, naming it. */
  public ZipVlConfig {
    if (!(tau > 0 && tau <= 1)) {
      throw new IllegalArgumentException(NAME + ".tau must be in (0, 1], got " + tau);
    }
    if (probesRecent < 0) {
      throw new IllegalArgumentException(NAME + ".probes_recent must be >= 0, got " + probesRecent);
    }
    if (probesRandom < 0) {
      throw new IllegalArgumentException(NAME + ".probes_random must be >= 0, got " + probesRandom);
    }
    if (probesRecent + probesRandom < 1) {
      throw new IllegalArgumentException(
          NAME
              + ".probes_recent + probes_random must be >= 1, got "
              + probesRecent
              + " + "
              + probesRandom);
    }
    if (bitsHigh != 16 && bitsHigh != 8 && bitsHigh != 4 && bitsHigh != 2) {
      throw new IllegalArgumentException(
          NAME + ".bits_high must be one of [16, 8, 4, 2], got " + bitsHigh);
    }
    if (bitsLow != 8 && bitsLow != 4 && bitsLow != 2) {
      throw new IllegalArgumentException(
          NAME + ".bits_low must be one of [8, 4, 2], got " + bitsLow);
    }
    if (bitsLow > bitsHigh) {
      throw new IllegalArgumentException(
          NAME + ".bits_low must not exceed bits_high = " + bitsHigh + ", got " + bitsLow);
    }
    if (interval < 0) {
      throw new IllegalArgumentException(
          NAME + ".interval must be >= 0 (0 = no decode re-encoding), got " + interval);
    }
    if (mode == null || unimportantRows == null || heads == null) {
      throw new IllegalArgumentException(
          NAME + ": mode, unimportant_rows and heads must not be null");
    }
    if (heads == Heads.PER_KV_HEAD && bitsHigh == 16) {
      throw new IllegalArgumentException(
          NAME
              + ".heads \"per_kv_head\" needs bits_high in [8, 4, 2] (float16"
              + " important entries are stored for every KV head at once), got bits_high = 16");
    }
  }

  /** The paper's setting: τ = 0.96, 64 + 64 probes, 4/2 bits, interval 100, sparse prefill. */
  public static ZipVlConfig defaults() {
    return new ZipVlConfig(
        DEFAULT_TAU,
        DEFAULT_PROBES,
        DEFAULT_PROBES,
        4,
        2,
        DEFAULT_INTERVAL,
        Mode.SPARSE,
        UnimportantRows.IMPORTANT_KEYS,
        Heads.SHARED,
        0L);
  }

  static ZipVlConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    double tau = f.has("tau") ? f.getDouble("tau") : DEFAULT_TAU;
    String m = f.getString("mode", Mode.SPARSE.jsonName());
    Mode mode = null;
    List<String> names = new ArrayList<>();
    for (Mode x : Mode.values()) {
      names.add(x.jsonName());
      if (x.jsonName().equals(m)) {
        mode = x;
      }
    }
    if (mode == null) {
      throw new IllegalArgumentException(
          f.field("mode") + " must be one of " + names + ", got \"" + m + "\"");
    }
    return new ZipVlConfig(
        tau,
        f.getInt("probes_recent", DEFAULT_PROBES),
        f.getInt("probes_random", DEFAULT_PROBES),
        f.getInt("bits_high", 4),
        f.getInt("bits_low", 2),
        f.getInt("interval", DEFAULT_INTERVAL),
        mode,
        f.getEnum("unimportant_rows", UnimportantRows.class, UnimportantRows.IMPORTANT_KEYS),
        f.getEnum("heads", Heads.class, Heads.SHARED),
        f.getLong("seed", 0L));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ZipVl build() {
    return new ZipVl(this);
  }

  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put("tau", tau);
    m.put("probes_recent", probesRecent);
    m.put("probes_random", probesRandom);
    m.put("bits_high", bitsHigh);
    m.put("bits_low", bitsLow);
    m.put("interval", interval);
    m.put("mode", mode.jsonName());
    m.put("unimportant_rows", unimportantRows.jsonName());
    m.put("heads", heads.jsonName());
    m.put("seed", seed);
    return m;
  }
}
