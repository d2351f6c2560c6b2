package dev.tokenpress.operators.api;

import dev.tokenpress.operators.contrast.Damro;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Configuration of {@link Damro} (outlier tokens of the ViT's CLS attention, contrastive decoding
 * against an outlier-only branch).
 *
 * <p>JSON ({@code "op": "damro"}): {@code k} (outlier tokens; default {@value #AUTO_K}: scaled from
 * the reference's 10 of LLaVA-1.5's 576 patches to the model, {@link #resolveK}), {@code alpha}
 * (default {@value #DEFAULT_ALPHA}; {@code >= 0}, 0 gives the main logits back), {@code beta}
 * (plausibility cut, default {@value #DEFAULT_BETA}; in {@code (0, 1]}), {@code mode} ({@code
 * "concat_logits"}, the default: LLaVA's full-width {@code q·kᵀ} of the CLS row without a head
 * split; or {@code "head_mean_prob"}: InstructBLIP's per-head softmax averaged over heads), {@code
 * decoding} ({@code "greedy"}, the default, or {@code "sample"}: multinomial on the contrastive
 * distribution as the reference's {@code _sample} does) and {@code seed} (integer, default 0;
 * combined with the per-record seed for sampling). Example: {@code
 * {"op":"damro","k":4,"alpha":2,"beta":0.1,"mode":"concat_logits","decoding":"greedy","seed":0}}.
 *
 * @param k outlier tokens, or {@value #AUTO_K} for {@link #resolveK}
 * @param alpha contrast strength {@code α}
 * @param beta plausibility cut {@code β}
 * @param mode the ranking rule
 * @param decoding how the next token is chosen from the contrastive logits
 * @param seed combined with the per-record seed ({@link Seeds#combine}) for sampling
 */
public record DamroConfig(int k, double alpha, double beta, Mode mode, Decoding decoding, long seed)
    implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "damro";

  /** {@code k = 0}: scale the reference's {@code k} to the model ({@link #resolveK}). */
  public static final int AUTO_K = 0;

  /** The reference's {@code k} ({@code run_pope.py}) ... */
  public static final int REFERENCE_K = 10;

  /** ... for LLaVA-1.5's 24×24 patches. */
  public static final int REFERENCE_PATCHES = 576;

  /** The reference's {@code α}. */
  public static final double DEFAULT_ALPHA = 2.0;

  /** The reference's {@code β}. */
  public static final double DEFAULT_BETA = 0.1;

  static final List<String> KEYS = List.of("k", "alpha", "beta", "mode", "decoding", "seed");

  /** How outlier tokens are ranked from the CLS row of the vision feature layer. */
  public enum Mode {
    /**
     * {@code Σ_h q_h(CLS)·k_h(j)}: softmax over the full width without a head split (LLaVA code).
     */
    CONCAT_LOGITS,
    /**
     * {@code mean_h softmax_h(q_h(CLS)·k_h / √d)[j]} (InstructBLIP code, without its off-by-one).
     */
    HEAD_MEAN_PROB;

    /** The JSON name. */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** How the next token is chosen. */
  public enum Decoding {
    /** The largest contrastive logit (ties: the lowest id). */
    GREEDY,
    /** A draw from the softmax of the cut contrastive logits, seeded per record and step. */
    SAMPLE;

    /** The JSON name. */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Validates the model-independent constraints. */
  public DamroConfig {
    if (k < 0) {
      throw new IllegalArgumentException(
          NAME + ".k must be >= 1, or 0 for the model-scaled default, got " + k);
    }
    if (!(alpha >= 0) || Double.isInfinite(alpha)) {
      throw new IllegalArgumentException(
          NAME + ".alpha must be a finite number >= 0, got " + alpha);
    }
    if (!(beta > 0 && beta <= 1)) {
      throw new IllegalArgumentException(NAME + ".beta must be in (0, 1], got " + beta);
    }
    if (mode == null) {
      throw new IllegalArgumentException(
          NAME + ".mode must be one of [concat_logits, head_mean_prob]");
    }
    if (decoding == null) {
      throw new IllegalArgumentException(NAME + ".decoding must be one of [greedy, sample]");
    }
  }

  /**
   * The reference's defaults: {@code k} scaled, {@code α = 2}, {@code β = 0.1}, LLaVA ranking,
   * greedy.
   */
  public static DamroConfig defaults() {
    return new DamroConfig(
        AUTO_K, DEFAULT_ALPHA, DEFAULT_BETA, Mode.CONCAT_LOGITS, Decoding.GREEDY, 0L);
  }

  /**
   * The number of outlier tokens on a model with {@code patches} patch tokens: {@code k} when set,
   * else {@code max(1, roundHalfUp(10 · patches / 576))} (LLaVA-1.5: 10; the bundled 16×16 model:
   * 4), at most {@code patches}.
   */
  public int resolveK(int patches) {
    int r =
        k != AUTO_K
            ? k
            : Math.max(
                1,
                dev.tokenpress.operators.tensor.Kernels.roundHalfUp(
                    REFERENCE_K * (double) patches / REFERENCE_PATCHES));
    return Math.min(r, patches);
  }

  static DamroConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    return new DamroConfig(
        f.getInt("k", AUTO_K),
        f.has("alpha") ? f.getDouble("alpha") : DEFAULT_ALPHA,
        f.has("beta") ? f.getDouble("beta") : DEFAULT_BETA,
        f.getEnum("mode", Mode.class, Mode.CONCAT_LOGITS),
        f.getEnum("decoding", Decoding.class, Decoding.GREEDY),
        f.getLong("seed", 0L));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Damro build() {
    return new Damro(this);
  }

  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put("k", k);
    m.put("alpha", alpha);
    m.put("beta", beta);
    m.put("mode", mode.jsonName());
    m.put("decoding", decoding.jsonName());
    m.put("seed", seed);
    return m;
  }
}
