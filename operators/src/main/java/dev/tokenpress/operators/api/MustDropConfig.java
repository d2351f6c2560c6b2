package dev.tokenpress.operators.api;

import dev.tokenpress.operators.prune.MustDrop;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Configuration of {@link MustDrop} (Liu et al., arXiv 2411.10803; authors' code {@code
 * liuting20/MustDrop}). Defaults are the authors' code unless stated.
 *
 * <p>JSON ({@code "op": "mustdrop"}), every key optional:
 *
 * <ul>
 *   <li>{@code stage_a}, {@code stage_b}, {@code stage_c} (booleans, default {@code true}): the
 *       vision-side window merge and key set, the LLM-side dual-attention filter, the output-aware
 *       KV policy. With {@code stage_a} off there is no key set either (the code builds both in the
 *       vision tower).
 *   <li>{@code window} (default 3, in {@code [2, 64]}): side of the square merge window (the code's
 *       comments say 2×2, its call uses 3×3).
 *   <li>{@code threshold} (default 0.8, finite, in {@code [-1, 2]}): a window merges iff the mean
 *       pairwise cosine of its tokens is {@code >=} this; above 1 nothing merges.
 *   <li>{@code retained_tokens} (default absent = threshold mode; else in {@code [1, 1000000]}):
 *       the ModelTC/LightCompress variant that fixes the number of merged windows at {@code r =
 *       (patches + 1 - retained_tokens) / (window² - 1)} (integer division, the {@code +1} is their
 *       CLS; {@code 577-128 → r = 56}), clamped to the full windows, and ignores {@code threshold}.
 *       A documented variant, not the paper's method.
 *   <li>{@code key_share} (default 0.08, in {@code [0, 1]}): the key set is the top {@code
 *       ceil(key_share · N')} merged patches by last-block CLS attention.
 *   <li>{@code pruning_layers} (default absent = the code's {@code [2,6,10,14]} of 32 layers scaled
 *       to the model, see {@link #pruningLayers(int)}): explicit 0-based LM layers after which
 *       stage B runs, strictly increasing, each in {@code [0, lmLayers-2]}.
 *   <li>{@code global_thr} (γ, default 0.001, finite, {@code >= 0}) and {@code individual_thr} (α,
 *       default 0.001, finite, {@code >= 0}): a visual token is dropped iff its summed attention
 *       share is below γ <em>and</em> its largest single attention is below α. The defaults are the
 *       authors' TextVQA "192 tokens" script; the code's CLI defaults {@code (1.0, 0.0)} keep
 *       everything ({@code α = 0} never drops).
 *   <li>{@code decode_positions} ({@code "own_cache_length"}, the default and the code's behaviour,
 *       or {@code "final_length"}): where each layer's decode position comes from, see {@link
 *       MustDrop#decodePosition}.
 * </ul>
 *
 * Example: {@code {"op":"mustdrop","threshold":0.8,"global_thr":0.0012,"individual_thr":0.001}}.
 *
 * <p>JSON is read with {@link ConfigFields} (strict keys; errors name {@code mustdrop.key}, the
 * value and what is allowed); {@link #validate(ModelShape)} checks the window against the patch
 * grid and the pruning layers against the LM at plan start.
 *
 * @param stageA window merge after ViT block 0 and key set from the last block
 * @param stageB dual-attention filter after the pruning layers
 * @param stageC output-aware KV policy at the end of prefill
 * @param window merge window side
 * @param threshold merge threshold on the mean pairwise cosine
 * @param retainedTokens fixed-count variant, or 0 for threshold mode
 * @param keyShare share of merged patches in the key set
 * @param pruningLayers explicit pruning layers, or {@code null} for the scaled default
 * @param globalThr γ
 * @param individualThr α
 * @param decodePositions decode position rule
 */
public record MustDropConfig(
    boolean stageA,
    boolean stageB,
    boolean stageC,
    int window,
    double threshold,
    int retainedTokens,
    double keyShare,
    int[] pruningLayers,
    double globalThr,
    double individualThr,
    DecodePositions decodePositions)
    implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "mustdrop";

  /** The code's window side ({@code conditional_pooling(h, 0.8, (3,3))}). */
  public static final int DEFAULT_WINDOW = 3;

  /** The code's merge threshold. */
  public static final double DEFAULT_THRESHOLD = 0.8;

  /** The code's {@code keep_rate} of the key set. */
  public static final double DEFAULT_KEY_SHARE = 0.08;

  /** The authors' TextVQA 192-token γ. */
  public static final double DEFAULT_GLOBAL_THR = 0.001;

  /** The authors' TextVQA 192-token α. */
  public static final double DEFAULT_INDIVIDUAL_THR = 0.001;

  /** The code's pruning layers, for its 32-layer LM. */
  public static final int[] REFERENCE_PRUNING_LAYERS = {2, 6, 10, 14};

  /** The depth {@link #REFERENCE_PRUNING_LAYERS} are given for (Vicuna-7B). */
  public static final int REFERENCE_LM_LAYERS = 32;

  static final List<String> KEYS =
      List.of(
          "stage_a",
          "stage_b",
          "stage_c",
          "window",
          "threshold",
          "retained_tokens",
          "key_share",
          "pruning_layers",
          "global_thr",
          "individual_thr",
          "decode_positions");

  /** Where each LM layer's position comes from during decode. */
  public enum DecodePositions {
    /**
     * The code's quirk: each layer uses its own cache length (before appending) plus nothing else,
     * so layers with a longer cache see larger positions.
     */
    OWN_CACHE_LENGTH,
    /** Every layer uses the final prefill length: one consistent position for all layers. */
    FINAL_LENGTH;

    /** The JSON name. */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Validates the model-independent constraints; keeps a private copy of the layer list. */
  public MustDropConfig {
    if (window < 2 || window > 64) {
      throw new IllegalArgumentException(
          NAME + ".window must be an integer in [2, 64], got " + window);
    }
    if (!Double.isFinite(threshold) || threshold < -1 || threshold > 2) {
      throw new IllegalArgumentException(
          NAME
              + ".threshold must be a finite number in [-1, 2] (a cosine;"
              + " above 1 merges nothing), got "
              + threshold);
    }
    if (retainedTokens < 0 || retainedTokens > 1_000_000) {
      throw new IllegalArgumentException(
          NAME
              + ".retained_tokens must be an integer in [1, 1000000]"
              + " (or absent for threshold mode), got "
              + retainedTokens);
    }
    if (!(keyShare >= 0 && keyShare <= 1)) {
      throw new IllegalArgumentException(
          NAME + ".key_share must be a number in [0, 1], got " + keyShare);
    }
    if (!Double.isFinite(globalThr) || globalThr < 0) {
      throw new IllegalArgumentException(
          NAME + ".global_thr must be a finite number >= 0, got " + globalThr);
    }
    if (!Double.isFinite(individualThr) || individualThr < 0) {
      throw new IllegalArgumentException(
          NAME + ".individual_thr must be a finite number >= 0, got " + individualThr);
    }
    if (decodePositions == null) {
      throw new IllegalArgumentException(
          NAME
              + ".decode_positions must be one of [own_cache_length,"
              + " final_length], got null");
    }
    if (pruningLayers != null) {
      pruningLayers = pruningLayers.clone();
      if (pruningLayers.length == 0) {
        throw new IllegalArgumentException(
            NAME
                + ".pruning_layers must be a non-empty array of"
                + " strictly increasing layers >= 0, got []");
      }
      for (int i = 0; i < pruningLayers.length; i++) {
        if (pruningLayers[i] < 0 || (i > 0 && pruningLayers[i] <= pruningLayers[i - 1])) {
          throw new IllegalArgumentException(
              NAME
                  + ".pruning_layers must be strictly increasing layers"
                  + " >= 0, got "
                  + Arrays.toString(pruningLayers));
        }
      }
    }
  }

  /** The defaults: every stage on, the code's constants, γ = α = 0.001. */
  public static MustDropConfig defaults() {
    return new MustDropConfig(
        true,
        true,
        true,
        DEFAULT_WINDOW,
        DEFAULT_THRESHOLD,
        0,
        DEFAULT_KEY_SHARE,
        null,
        DEFAULT_GLOBAL_THR,
        DEFAULT_INDIVIDUAL_THR,
        DecodePositions.OWN_CACHE_LENGTH);
  }

  /** The explicit pruning layers, or {@code null} when they are scaled to the model. */
  @Override
  public int[] pruningLayers() {
    return pruningLayers == null ? null : pruningLayers.clone();
  }

  /** This config with stage B's thresholds replaced (for calibration). */
  public MustDropConfig withThresholds(double globalThr, double individualThr) {
    return new MustDropConfig(
        stageA,
        stageB,
        stageC,
        window,
        threshold,
        retainedTokens,
        keyShare,
        pruningLayers,
        globalThr,
        individualThr,
        decodePositions);
  }

  /** Whether stage A runs in threshold mode (the paper) rather than the fixed-count variant. */
  public boolean thresholdMode() {
    return retainedTokens == 0;
  }

  /**
   * The LM layers after which stage B runs on a model with {@code lmLayers} layers: the explicit
   * list, or {@code [2,6,10,14]·lmLayers/32} rounded half up ({@code floor(l·lmLayers/32 + 0.5)},
   * exact integer arithmetic), clamped to {@code [0, lmLayers-2]} and de-duplicated. Half up keeps
   * {@code [2,6,10,14]} on 32 layers and gives {@code [3,8,13,18]} on 40 (where the code silently
   * keeps 32-layer indices and its KV loop stops at layer 31), {@code [1,3,5,7]} on 16 and {@code
   * [0,1,2]} on 4.
   */
  public int[] pruningLayers(int lmLayers) {
    if (lmLayers < 2) {
      throw new IllegalArgumentException(
          NAME + ": stage B needs an LM with at least 2 layers, got " + lmLayers);
    }
    if (pruningLayers != null) {
      int last = pruningLayers[pruningLayers.length - 1];
      if (last > lmLayers - 2) {
        throw new IllegalArgumentException(
            NAME
                + ".pruning_layers must be in [0, lmLayers-2] = [0, "
                + (lmLayers - 2)
                + "] for this model, got "
                + Arrays.toString(pruningLayers));
      }
      return pruningLayers.clone();
    }
    int[] out = new int[REFERENCE_PRUNING_LAYERS.length];
    int n = 0;
    for (int ref : REFERENCE_PRUNING_LAYERS) {
      int l = (2 * ref * lmLayers + REFERENCE_LM_LAYERS) / (2 * REFERENCE_LM_LAYERS);
      l = Math.min(l, lmLayers - 2);
      if (n == 0 || l > out[n - 1]) {
        out[n++] = l;
      }
    }
    return Arrays.copyOf(out, n);
  }

  /**
   * Checks this config against a model: a {@code gridRows × gridCols} patch grid (stage A needs at
   * least one full window when it is on) and {@code lmLayers} LM layers.
   */
  public void validate(int gridRows, int gridCols, int lmLayers) {
    if (gridRows < 1 || gridCols < 1) {
      throw new IllegalArgumentException(
          NAME + ": the patch grid must be at least 1x1, got " + gridRows + "x" + gridCols);
    }
    if (stageA && (gridRows < window || gridCols < window)) {
      throw new IllegalArgumentException(
          NAME
              + ".window must be at most the patch grid's smaller side "
              + Math.min(gridRows, gridCols)
              + " for this model ("
              + gridRows
              + "x"
              + gridCols
              + "), got "
              + window);
    }
    if (stageB || stageC) {
      pruningLayers(lmLayers);
    }
  }

  /**
   * Checks this config against {@code shape} at plan start (see {@link #validate(int, int, int)});
   * stage A also needs a ViT with a CLS token (the key set ranks patches by CLS attention).
   */
  public void validate(ModelShape shape) {
    if (stageA && !shape.vitClsToken()) {
      throw new IllegalArgumentException(
          NAME
              + ".stage_a must be false for this model: the key set needs a ViT"
              + " CLS token and this model has none");
    }
    validate(shape.patchRows(), shape.patchCols(), shape.lmLayers());
  }

  /** The config of a JSON plan entry ({@code "op"} must be {@value #NAME} or absent). */
  public static MustDropConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    Object op = object.get("op");
    if (op != null && !NAME.equals(op)) {
      throw new IllegalArgumentException(NAME + ".op must be \"" + NAME + "\", got " + op);
    }
    MustDropConfig d = defaults();
    int retained = 0;
    if (f.has("retained_tokens")) {
      retained = f.getInt("retained_tokens", 0);
      if (retained < 1) {
        throw new IllegalArgumentException(
            f.field("retained_tokens")
                + " must be an integer in [1, 1000000],"
                + " got "
                + retained);
      }
    }
    int[] layers = null;
    if (f.has("pruning_layers")) {
      List<Integer> l = f.getIntOrIntList("pruning_layers");
      layers = new int[l.size()];
      for (int i = 0; i < layers.length; i++) {
        layers[i] = l.get(i);
      }
    }
    return new MustDropConfig(
        f.getBoolean("stage_a", true),
        f.getBoolean("stage_b", true),
        f.getBoolean("stage_c", true),
        f.getInt("window", d.window),
        f.has("threshold") ? f.getDouble("threshold") : d.threshold,
        retained,
        f.has("key_share") ? f.getDouble("key_share") : d.keyShare,
        layers,
        f.has("global_thr") ? f.getDouble("global_thr") : d.globalThr,
        f.has("individual_thr") ? f.getDouble("individual_thr") : d.individualThr,
        f.getEnum("decode_positions", DecodePositions.class, DecodePositions.OWN_CACHE_LENGTH));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public MustDrop build() {
    return new MustDrop(this);
  }

  /** The canonical JSON object: {@code "op"} first, then every field in record order. */
  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put("stage_a", stageA);
    m.put("stage_b", stageB);
    m.put("stage_c", stageC);
    m.put("window", window);
    m.put("threshold", threshold);
    if (retainedTokens > 0) {
      m.put("retained_tokens", retainedTokens);
    }
    m.put("key_share", keyShare);
    if (pruningLayers != null) {
      List<Object> l = new ArrayList<>();
      for (int x : pruningLayers) {
        l.add(x);
      }
      m.put("pruning_layers", l);
    }
    m.put("global_thr", globalThr);
    m.put("individual_thr", individualThr);
    m.put("decode_positions", decodePositions.jsonName());
    return m;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MustDropConfig c
        && stageA == c.stageA
        && stageB == c.stageB
        && stageC == c.stageC
        && window == c.window
        && Double.compare(threshold, c.threshold) == 0
        && retainedTokens == c.retainedTokens
        && Double.compare(keyShare, c.keyShare) == 0
        && Arrays.equals(pruningLayers, c.pruningLayers)
        && Double.compare(globalThr, c.globalThr) == 0
        && Double.compare(individualThr, c.individualThr) == 0
        && decodePositions == c.decodePositions;
  }

  @Override
  public int hashCode() {
    return toJson().hashCode();
  }

  @Override
  public String toString() {
    return toJson();
  }
}
