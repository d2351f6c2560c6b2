package dev.tokenpress.operators.api;

import dev.tokenpress.operators.merge.Vmtc;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Configuration of {@link Vmtc} (VMTC, arXiv 2411.15453, reconstructed: the paper's method section
 * was not available, so every choice it would fix is an option here with a documented default; see
 * {@link Vmtc} for what is known and what is reconstructed).
 *
 * <p>JSON ({@code "op": "vmtc"}; keys in {@link #KEYS}, canonical form {@link #toJsonObject()}):
 *
 * <ul>
 *   <li>exactly one of {@code keep}, {@code keep_ratio}, {@code drop_ratio} (required, see {@link
 *       Budget}): {@code T}, the number of visual tokens that leave VMTC (primary plus merged);
 *   <li>{@code merge_at}: {@code "projector_input"} (default: the vision feature layer's rows
 *       without CLS, before the projector) or {@code "projected"} (the projected visual tokens);
 *   <li>at most one of {@code primary} (integer {@code >= 0}: {@code K_p = min(primary, T)}) and
 *       {@code primary_share} (in {@code [0, 1]}, default {@value #DEFAULT_PRIMARY_SHARE}: {@code
 *       K_p = roundHalfUp(share·T)}); the other {@code C = T - K_p} tokens are cluster merges;
 *   <li>{@code importance_layers}: ViT layers ({@link LayerRange}) whose CLS→patch attention is
 *       summed into the importance score, default {@value #DEFAULT_IMPORTANCE_LAYERS} (LLaVA's
 *       {@code vision_feature_layer = -2}, the layer whose output is merged);
 *   <li>{@code importance_heads}: {@code "mean"} (default) or {@code "max"} over heads;
 *   <li>{@code cluster_over}: {@code "rest"} (default: k-means over the non-primary tokens only) or
 *       {@code "all"} (over every token; primary members of a cluster stay primary and are not
 *       merged);
 *   <li>{@code metric}: {@code "cosine"} (default) or {@code "euclidean"};
 *   <li>{@code max_iterations}: Lloyd iterations after the k-means++ initialisation, in {@code [0,
 *       }{@value #MAX_ITERATIONS_LIMIT}{@code ]}, default {@value #DEFAULT_MAX_ITERATIONS};
 *   <li>{@code tolerance}: stop once the largest centroid shift of an iteration is at most this,
 *       {@code >= 0}, default {@value #DEFAULT_TOLERANCE} (stop only when no assignment changes);
 *   <li>{@code merge_weight}: {@code "importance"} (default) or {@code "size"};
 *   <li>{@code empty_clusters}: {@code "reassign"} (default: exactly {@code C} merged tokens) or
 *       {@code "drop"} (fewer tokens);
 *   <li>{@code order}: {@code "raster"} (default) or {@code "primary_first"};
 *   <li>{@code seed}: integer, default 0, combined with the per-record seed.
 * </ul>
 *
 * Example: {@code {"op":"vmtc","keep":144,"primary_share":0.5,"metric":"cosine"}}.
 *
 * @param budget {@code T}: how many visual tokens leave VMTC
 * @param mergeAt which rows are clustered and merged (read by the runtime adapter)
 * @param primaryCount {@code K_p} as a count ({@code >= 0}), or {@code -1} to use {@code
 *     primaryShare}
 * @param primaryShare {@code K_p} as a share of {@code T}, in {@code [0, 1]} (ignored when {@code
 *     primaryCount >= 0})
 * @param importanceLayers ViT layers whose CLS attention is summed into the importance score
 * @param importanceHeads how the heads of one layer's CLS attention are combined
 * @param clusterOver which tokens k-means clusters
 * @param metric the k-means geometry
 * @param maxIterations the most Lloyd iterations after initialisation
 * @param tolerance the centroid-shift stopping threshold
 * @param mergeWeight the weight of a token in its cluster's mean
 * @param emptyClusters what happens to a cluster that loses all its members
 * @param order the order of the output tokens
 * @param seed combined with the per-record seed ({@code Seeds.combine(recordSeed, seed)})
 */
public record VmtcConfig(
    Budget budget,
    MergeAt mergeAt,
    int primaryCount,
    double primaryShare,
    LayerRange importanceLayers,
    HeadAggregation importanceHeads,
    ClusterOver clusterOver,
    Metric metric,
    int maxIterations,
    double tolerance,
    MergeWeight mergeWeight,
    EmptyClusters emptyClusters,
    Order order,
    long seed)
    implements OperatorConfig {

  /** The name in plans. */
  public static final String NAME = "vmtc";

  /** The JSON keys besides {@code "op"}. */
  public static final List<String> KEYS =
      List.of(
          "keep",
          "keep_ratio",
          "drop_ratio",
          "merge_at",
          "primary",
          "primary_share",
          "importance_layers",
          "importance_heads",
          "cluster_over",
          "metric",
          "max_iterations",
          "tolerance",
          "merge_weight",
          "empty_clusters",
          "order",
          "seed");

  /**
   * Default share of {@code T} that are primary tokens: half kept, half merged (a guess, not the
   * paper's).
   */
  public static final double DEFAULT_PRIMARY_SHARE = 0.5;

  /** Default importance layers: the layer LLaVA-1.5 feeds to the projector. */
  public static final String DEFAULT_IMPORTANCE_LAYERS = "L-2";

  /**
   * Default Lloyd iteration cap (scikit-learn uses 300; assignments settle far earlier on 576
   * tokens).
   */
  public static final int DEFAULT_MAX_ITERATIONS = 100;

  /** Upper bound on {@code max_iterations}. */
  public static final int MAX_ITERATIONS_LIMIT = 10_000;

  /** Default tolerance: iterate until no assignment changes (or the cap). */
  public static final double DEFAULT_TOLERANCE = 0.0;

  /** Where VMTC runs, i.e. which rows it clusters and merges (the pure algorithm does not care). */
  public enum MergeAt {
    /**
     * The projector input: the vision feature layer's output rows, CLS removed, before the
     * projector (the reconstruction "between ViT and projector"; merged rows are projected).
     */
    PROJECTOR_INPUT,
    /**
     * The projected visual tokens ({@code VISUAL_TOKENS} hook); differs from {@link
     * #PROJECTOR_INPUT} by the projector's non-linearity.
     */
    PROJECTED
  }

  /** How the heads of one ViT layer's CLS→patch attention are combined into one score per patch. */
  public enum HeadAggregation {
    /** The mean over heads (what {@code Signal.ClsAttention} carries). */
    MEAN,
    /** The maximum over heads. */
    MAX
  }

  /** Which tokens k-means clusters. */
  public enum ClusterOver {
    /** The non-primary tokens only; every one of them ends in exactly one merged token. */
    REST,
    /**
     * Every token; primary tokens shape the clusters but stay as they are, a merged token averages
     * only the non-primary members of its cluster, and a cluster of primary tokens only yields no
     * merged token (so fewer than {@code C} merged tokens are possible).
     */
    ALL
  }

  /** The k-means geometry. */
  public enum Metric {
    /**
     * Spherical k-means: features scaled to unit length (a zero vector stays zero), assignment by
     * the largest dot product with the centroid, centroid = the normalised sum of its members' unit
     * vectors; k-means++ distances {@code max(0, 2 - 2·cos)}.
     */
    COSINE,
    /** Plain k-means: squared Euclidean distance on the raw features, centroid = member mean. */
    EUCLIDEAN
  }

  /** The weight of a token in its cluster's mean. */
  public enum MergeWeight {
    /** Its importance score; a cluster whose importances sum to 0 is averaged uniformly. */
    IMPORTANCE,
    /** Its size (1 for an unmerged patch; the number of patches after earlier merges). */
    SIZE
  }

  /** What happens to a cluster that has no member after an assignment step. */
  public enum EmptyClusters {
    /**
     * Give it the point least similar to its own centroid among points whose cluster has at least
     * two members (ties: the lower index), cluster by cluster in ascending order, so that every
     * cluster keeps a member and exactly {@code C} merged tokens come out. With exact duplicate
     * tokens and more clusters than distinct rows, points can keep moving between equal centroids
     * until {@code max_iterations}; the result is still deterministic.
     */
    REASSIGN,
    /** Leave it empty (its centroid stays where it was); it yields no merged token. */
    DROP
  }

  /**
   * The order of the output tokens. Each output token has an anchor: its own index for a primary
   * token, the smallest member index for a merged one.
   */
  public enum Order {
    /**
     * Every output token in ascending anchor order (merged tokens sit where their first member
     * was).
     */
    RASTER,
    /** Primary tokens in ascending index order, then merged tokens in ascending anchor order. */
    PRIMARY_FIRST
  }

  /** Validates every field; messages name the field, the value and the allowed range. */
  public VmtcConfig {
    if (budget == null) {
      throw new IllegalArgumentException(NAME + ": one of " + Budget.KEYS + " is required");
    }
    requireNonNull(mergeAt, "merge_at", MergeAt.values());
    if (primaryCount < -1) {
      throw new IllegalArgumentException(NAME + ".primary must be >= 0, got " + primaryCount);
    }
    if (!(primaryShare >= 0 && primaryShare <= 1)) {
      throw new IllegalArgumentException(
          NAME + ".primary_share must be in [0, 1], got " + primaryShare);
    }
    if (importanceLayers == null) {
      throw new IllegalArgumentException(NAME + ".importance_layers must not be null");
    }
    requireNonNull(importanceHeads, "importance_heads", HeadAggregation.values());
    requireNonNull(clusterOver, "cluster_over", ClusterOver.values());
    requireNonNull(metric, "metric", Metric.values());
    requireNonNull(mergeWeight, "merge_weight", MergeWeight.values());
    requireNonNull(emptyClusters, "empty_clusters", EmptyClusters.values());
    requireNonNull(order, "order", Order.values());
    if (maxIterations < 0 || maxIterations > MAX_ITERATIONS_LIMIT) {
      throw new IllegalArgumentException(
          NAME
              + ".max_iterations must be in [0, "
              + MAX_ITERATIONS_LIMIT
              + "], got "
              + maxIterations);
    }
    if (!(tolerance >= 0) || Double.isInfinite(tolerance)) {
      throw new IllegalArgumentException(
          NAME + ".tolerance must be a finite number >= 0, got " + tolerance);
    }
  }

  private static void requireNonNull(Enum<?> v, String field, Enum<?>[] allowed) {
    if (v == null) {
      throw new IllegalArgumentException(
          NAME + "." + field + " must be one of " + jsonNames(allowed) + ", got null");
    }
  }

  /**
   * Parses the JSON object of one plan entry (strict: unknown keys and wrong types fail, naming the
   * field).
   */
  static VmtcConfig fromJson(Map<String, Object> object) {
    ConfigFields f = ConfigFields.of(NAME, object, KEYS);
    Builder b = builder(f.budget(null));
    b.mergeAt(f.getEnum("merge_at", MergeAt.class, MergeAt.PROJECTOR_INPUT));
    if (f.has("primary") && f.has("primary_share")) {
      throw new IllegalArgumentException(
          NAME + ": give at most one of \"primary\" and \"primary_share\"");
    }
    if (f.has("primary")) {
      b.primary(f.getInt("primary", 0));
    } else if (f.has("primary_share")) {
      b.primaryShare(f.getDouble("primary_share"));
    }
    b.importanceLayers(
        f.layerRange("importance_layers", LayerRange.parse(DEFAULT_IMPORTANCE_LAYERS)));
    b.importanceHeads(f.getEnum("importance_heads", HeadAggregation.class, HeadAggregation.MEAN));
    b.clusterOver(f.getEnum("cluster_over", ClusterOver.class, ClusterOver.REST));
    b.metric(f.getEnum("metric", Metric.class, Metric.COSINE));
    b.maxIterations(f.getInt("max_iterations", DEFAULT_MAX_ITERATIONS));
    b.tolerance(f.has("tolerance") ? f.getDouble("tolerance") : DEFAULT_TOLERANCE);
    b.mergeWeight(f.getEnum("merge_weight", MergeWeight.class, MergeWeight.IMPORTANCE));
    b.emptyClusters(f.getEnum("empty_clusters", EmptyClusters.class, EmptyClusters.REASSIGN));
    b.order(f.getEnum("order", Order.class, Order.RASTER));
    b.seed(f.getLong("seed", 0L));
    return b.build();
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Vmtc build() {
    return new Vmtc(this);
  }

  /** Every option at its default, with budget {@code budget}. */
  public static VmtcConfig defaults(Budget budget) {
    return builder(budget).build();
  }

  /** A builder starting from the defaults. */
  public static Builder builder(Budget budget) {
    return new Builder(budget);
  }

  /** This config as a builder, to change some options. */
  public Builder toBuilder() {
    Builder b = new Builder(budget);
    b.mergeAt = mergeAt;
    b.primaryCount = primaryCount;
    b.primaryShare = primaryShare;
    b.importanceLayers = importanceLayers;
    b.importanceHeads = importanceHeads;
    b.clusterOver = clusterOver;
    b.metric = metric;
    b.maxIterations = maxIterations;
    b.tolerance = tolerance;
    b.mergeWeight = mergeWeight;
    b.emptyClusters = emptyClusters;
    b.order = order;
    b.seed = seed;
    return b;
  }

  /**
   * Checks the config against a model, given as plain ints: the ViT needs a CLS token and {@code
   * importance_layers} must lie inside its {@code vitLayers} layers.
   *
   * @return the resolved importance layers, ascending
   */
  public int[] checkModel(int vitLayers, boolean vitClsToken) {
    if (vitLayers < 1) {
      throw new IllegalArgumentException("vitLayers must be >= 1, got " + vitLayers);
    }
    if (!vitClsToken) {
      throw new IllegalArgumentException(
          NAME
              + " needs a ViT with a CLS token (importance is CLS attention); "
              + "this model has none");
    }
    return importanceLayers.resolve(vitLayers, NAME + ".importance_layers");
  }

  /**
   * {@code (K_p, C)} for {@code n} input tokens: {@code T = budget.resolve(n)}, {@code K_p =
   * min(primary, T)} or {@code roundHalfUp(primary_share·T)}, {@code C = T - K_p}.
   */
  public int[] split(int n) {
    int t = budget.resolve(n);
    int kp;
    if (primaryCount >= 0) {
      kp = Math.min(primaryCount, t);
    } else {
      kp = Math.max(0, Math.min(t, Kernels.roundHalfUp(primaryShare * t)));
    }
    return new int[] {kp, t - kp};
  }

  /**
   * The canonical JSON object: {@code "op"} first, then every field including defaults, in {@link
   * #KEYS} order.
   */
  @Override
  public Map<String, Object> toJsonObject() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", NAME);
    m.put(budget.key(), budget.value());
    m.put("merge_at", jsonName(mergeAt));
    if (primaryCount >= 0) {
      m.put("primary", primaryCount);
    } else {
      m.put("primary_share", primaryShare);
    }
    m.put("importance_layers", importanceLayers.toString());
    m.put("importance_heads", jsonName(importanceHeads));
    m.put("cluster_over", jsonName(clusterOver));
    m.put("metric", jsonName(metric));
    m.put("max_iterations", maxIterations);
    m.put("tolerance", tolerance);
    m.put("merge_weight", jsonName(mergeWeight));
    m.put("empty_clusters", jsonName(emptyClusters));
    m.put("order", jsonName(order));
    m.put("seed", seed);
    return m;
  }

  /** The JSON name of an option value: its lower-case constant name. */
  public static String jsonName(Enum<?> e) {
    return e.name().toLowerCase(Locale.ROOT);
  }

  private static List<String> jsonNames(Enum<?>[] values) {
    String[] out = new String[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = jsonName(values[i]);
    }
    return List.of(out);
  }

  /** Mutable builder; {@link #build()} validates. */
  public static final class Builder {
    private final Budget budget;
    private MergeAt mergeAt = MergeAt.PROJECTOR_INPUT;
    private int primaryCount = -1;
    private double primaryShare = DEFAULT_PRIMARY_SHARE;
    private LayerRange importanceLayers = LayerRange.parse(DEFAULT_IMPORTANCE_LAYERS);
    private HeadAggregation importanceHeads = HeadAggregation.MEAN;
    private ClusterOver clusterOver = ClusterOver.REST;
    private Metric metric = Metric.COSINE;
    private int maxIterations = DEFAULT_MAX_ITERATIONS;
    private double tolerance = DEFAULT_TOLERANCE;
    private MergeWeight mergeWeight = MergeWeight.IMPORTANCE;
    private EmptyClusters emptyClusters = EmptyClusters.REASSIGN;
    private Order order = Order.RASTER;
    private long seed;

    private Builder(Budget budget) {
      this.budget = budget;
    }

    /** {@code merge_at}. */
    public Builder mergeAt(MergeAt at) {
      this.mergeAt = at;
      return this;
    }

    /** {@code primary}: {@code K_p} as a count (replaces any share). */
    public Builder primary(int count) {
      this.primaryCount = count;
      return this;
    }

    /** {@code primary_share}: {@code K_p} as a share of {@code T} (replaces any count). */
    public Builder primaryShare(double share) {
      this.primaryCount = -1;
      this.primaryShare = share;
      return this;
    }

    /** {@code importance_layers}. */
    public Builder importanceLayers(LayerRange layers) {
      this.importanceLayers = layers;
      return this;
    }

    /** {@code importance_heads}. */
    public Builder importanceHeads(HeadAggregation heads) {
      this.importanceHeads = heads;
      return this;
    }

    /** {@code cluster_over}. */
    public Builder clusterOver(ClusterOver over) {
      this.clusterOver = over;
      return this;
    }

    /** {@code metric}. */
    public Builder metric(Metric metric) {
      this.metric = metric;
      return this;
    }

    /** {@code max_iterations}. */
    public Builder maxIterations(int iterations) {
      this.maxIterations = iterations;
      return this;
    }

    /** {@code tolerance}. */
    public Builder tolerance(double tolerance) {
      this.tolerance = tolerance;
      return this;
    }

    /** {@code merge_weight}. */
    public Builder mergeWeight(MergeWeight weight) {
      this.mergeWeight = weight;
      return this;
    }

    /** {@code empty_clusters}. */
    public Builder emptyClusters(EmptyClusters empty) {
      this.emptyClusters = empty;
      return this;
    }

    /** {@code order}. */
    public Builder order(Order order) {
      this.order = order;
      return this;
    }

    /** {@code seed}. */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** The validated config. */
    public VmtcConfig build() {
      return new VmtcConfig(
          budget,
          mergeAt,
          primaryCount,
          primaryShare,
          importanceLayers,
          importanceHeads,
          clusterOver,
          metric,
          maxIterations,
          tolerance,
          mergeWeight,
          emptyClusters,
          order,
          seed);
    }
  }
}
