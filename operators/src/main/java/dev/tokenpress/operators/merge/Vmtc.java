package dev.tokenpress.operators.merge;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.api.VmtcConfig;
import dev.tokenpress.operators.api.VmtcConfig.ClusterOver;
import dev.tokenpress.operators.api.VmtcConfig.EmptyClusters;
import dev.tokenpress.operators.api.VmtcConfig.HeadAggregation;
import dev.tokenpress.operators.api.VmtcConfig.MergeAt;
import dev.tokenpress.operators.api.VmtcConfig.MergeWeight;
import dev.tokenpress.operators.api.VmtcConfig.Metric;
import dev.tokenpress.operators.api.VmtcConfig.Order;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * VMTC: keep the primary visual tokens and condense the redundant ones by clustering and merging,
 * the visual-token half of arXiv 2411.15453 (the other half, CMAI, inhibits cross-modal attention
 * inside the LM and is not part of this class). <b>Reconstructed.</b> The paper's method section
 * and tables could not be retrieved (every stored copy holds only the abstract and the first lines
 * of the introduction) and no code exists under any name, so this class implements what the sources
 * support and makes every other choice a named {@link VmtcConfig} option with a documented default.
 * No result of the paper is known or quoted; the defaults are not the paper's settings.
 *
 * <p><b>From the abstract</b> (certain): primary visual tokens are kept and the redundant ones are
 * condensed by clustering and merging. <b>From third-party summaries</b> (likely): the importance
 * score comes from attention in the ViT, and clustering is K-Means with cosine similarity. <b>Our
 * inference</b> (options): the score is CLS→patch attention ({@code importance_layers}, {@code
 * importance_heads}; default the head-mean at LLaVA's feature layer {@code L-2}); primary tokens
 * are the top {@code K_p} by score ({@code primary}/{@code primary_share}); k-means runs over the
 * rest only ({@code cluster_over}); a cluster is merged into the importance-weighted mean of its
 * members' original, unnormalised rows ({@code merge_weight}); output order, iteration cap,
 * tolerance, empty-cluster handling and the k-means++ initialisation are ours. Sources: the
 * abstract (arxiv.org, huggingface.co/papers) and the summaries at papers.lunadong.com and
 * themoonlight.io, as collected in the project's operator notes and their December addendum.
 *
 * <p><b>Algorithm</b> on {@code N} tokens with budget {@code T} ({@link VmtcConfig#split}):
 *
 * <ol>
 *   <li>{@code K_p} primary tokens = {@link Kernels#topK} of the importance (higher first, lower
 *       index on ties); {@code C = T - K_p} clusters over the {@code m} clustered points (the
 *       non-primary tokens, or all tokens), taken in ascending index order. If {@code C = 0} the
 *       non-primary tokens are dropped.
 *   <li>Features: unit vectors for {@link Metric#COSINE} (a zero row stays zero), raw rows for
 *       {@link Metric#EUCLIDEAN}; all k-means arithmetic is in double with sequential sums.
 *   <li>k-means++ (Arthur and Vassilvitskii 2007, one candidate per step, unlike scikit-learn's
 *       greedy variant), driven by {@code C} uniforms {@code u_0..u_{C-1}} from {@code new
 *       SplittableRandom(Seeds.combine(recordSeed, config.seed())).nextDouble()}: first centre =
 *       point {@code floor(u_0·m)}; then with {@code D²(i)} the distance of point {@code i} to its
 *       nearest centre (0 for chosen points), the next centre is the first {@code i} whose running
 *       sum of {@code D²} exceeds {@code u_j·ΣD²}; if {@code ΣD² = 0} (all points coincide with
 *       centres) it is the lowest point that is not yet a centre.
 *   <li>Lloyd: assign every point to the most similar centroid (ties: lower cluster), handle empty
 *       clusters ({@link EmptyClusters}); then up to {@code max_iterations} times: update the
 *       centroids (an empty cluster, or a cosine centroid whose member sum is zero, keeps its
 *       centroid), re-assign; stop when no assignment changed or the largest Euclidean centroid
 *       shift was {@code <= tolerance}.
 *   <li>Merge: each non-empty cluster becomes one token {@code Σ w_j x_j / Σ w_j} over its
 *       (non-primary) members with {@code w} = importance or size, uniform if the weights sum to 0;
 *       sizes add up. Output order: {@link Order}.
 * </ol>
 *
 * The result depends only on the inputs, the config and the record seed (the reference test
 * reproduces it bit for bit from an independent script). Inputs are never modified. Importance must
 * be finite and {@code >= 0} (it is an attention probability). Cost: {@code O(m·C·D)} per Lloyd
 * iteration; 576 tokens of width 1024 into 144 take 0.1–0.4 s on one core of a shared machine, a
 * few iterations being typical.
 *
 * <p><b>As an operator</b> ({@link TokenOperator}, plan entry {@code {"op":"vmtc",...}}), once per
 * image, at {@code merge_at}:
 *
 * <ul>
 *   <li>{@link MergeAt#PROJECTOR_INPUT} (default): {@link Hook#VISION_LAYER} of the vision feature
 *       layer {@code F} ({@link ModelShape#visionFeatureLayer()}), {@link VisionPoint#AFTER_LAYER}:
 *       the rows are that layer's output ({@link Signal.VitLayerOutput}) without the CLS row, i.e.
 *       what the projector takes; importance is the head-mean CLS→patch attention of layer {@code
 *       F} over the current (possibly merged) sequence ({@link Signal.VitClsAttention}, CLS column
 *       removed). {@code importance_layers} must therefore resolve to {@code F} alone. Merged rows
 *       are projected; the output may be in any {@code order}.
 *   <li>{@link MergeAt#PROJECTED}: {@link Hook#VISUAL_TOKENS}, on the projected rows {@code [N,
 *       lmHiddenSize]}; importance is {@link Signal.ClsAttention} of every {@code
 *       importance_layers} layer, summed (a merged token's value sits at its representative patch).
 *       Only {@code order: raster} (LM positions follow row order).
 * </ul>
 *
 * Sizes of earlier merges are passed on ({@code merge_weight: size} uses them); the seed is the
 * record's. The result is a {@link TokenReduction} with VMTC's groups and weights (a member whose
 * weight is 0, i.e. importance exactly 0, gets weight {@link Float#MIN_VALUE}, which the reduction
 * requires to be positive and which changes no float result) and the cluster assignment ({@link
 * VmtcResult#clusters()}) as its labels: the runtime tracks sizes and provenance and writes both to
 * Parquet ({@code outputs.kept_maps.labels}, {@code outputs.visual_tokens}). {@code
 * importance_heads: max} takes the per-head CLS rows ({@link Signal.VitClsHeadAttention}) at {@code
 * projector_input}; at {@code projected} it is rejected at plan start (the CLS attention handed to
 * {@code VISUAL_TOKENS} is head-averaged).
 */
public final class Vmtc implements TokenOperator {

  private static final Set<Hook> VISION_HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.VISION_LAYER));
  private static final Set<Hook> VISUAL_HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.VISUAL_TOKENS));

  private final VmtcConfig config;

  /** An operator for {@code config}. */
  public Vmtc(VmtcConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
  }

  /** The config. */
  @Override
  public VmtcConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    return config.mergeAt() == MergeAt.PROJECTOR_INPUT ? VISION_HOOKS : VISUAL_HOOKS;
  }

  @Override
  public VisionPoint visionPoint() {
    return VisionPoint.AFTER_LAYER;
  }

  /**
   * Checks the config against the model: a ViT with a CLS token, {@code importance_layers} inside
   * it ({@link VmtcConfig#checkModel}) and, at {@code projector_input}, equal to the feature layer;
   * head-mean importance and raster order at {@code projected}.
   */
  @Override
  public void validate(ModelShape shape) {
    int[] layers = config.checkModel(shape.vitLayers(), shape.vitClsToken());
    if (config.importanceHeads() != HeadAggregation.MEAN && config.mergeAt() == MergeAt.PROJECTED) {
      throw new IllegalArgumentException(
          VmtcConfig.NAME
              + ".importance_heads must be \"mean\" at merge_at "
              + "\"projected\" (the CLS attention of the projected tokens is head-averaged; \"max\" works at "
              + "merge_at \"projector_input\"), got \""
              + VmtcConfig.jsonName(config.importanceHeads())
              + "\"");
    }
    int f = shape.visionFeatureLayer();
    if (config.mergeAt() == MergeAt.PROJECTOR_INPUT && (layers.length != 1 || layers[0] != f)) {
      throw new IllegalArgumentException(
          VmtcConfig.NAME
              + ".importance_layers must be the vision feature "
              + "layer alone ("
              + f
              + " for this model, e.g. \"L-"
              + (shape.vitLayers() - f)
              + "\") at merge_at "
              + "\"projector_input\", where importance is the CLS attention of the merged sequence; got \""
              + config.importanceLayers()
              + "\" = "
              + Arrays.toString(layers)
              + " (other layers: merge_at \"projected\")");
    }
    if (config.mergeAt() == MergeAt.PROJECTED && config.order() != Order.RASTER) {
      throw new IllegalArgumentException(
          VmtcConfig.NAME
              + ".order must be \"raster\" at merge_at \"projected\" "
              + "(visual tokens keep their place in the LM sequence), got \""
              + VmtcConfig.jsonName(config.order())
              + "\"");
    }
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    int[] layers = config.checkModel(shape.vitLayers(), shape.vitClsToken());
    if (config.mergeAt() == MergeAt.PROJECTOR_INPUT) {
      int f = shape.visionFeatureLayer();
      Signal cls =
          config.importanceHeads() == HeadAggregation.MEAN
              ? new Signal.VitClsAttention(f)
              : new Signal.VitClsHeadAttention(f);
      return List.of(cls, new Signal.VitLayerOutput(f));
    }
    List<Signal> out = new ArrayList<>(layers.length);
    for (int l : layers) {
      out.add(new Signal.ClsAttention(l));
    }
    return List.copyOf(out);
  }

  /**
   * {@code merge_at: projector_input}: at the feature layer, VMTC over the patch rows of its output
   * (CLS kept alone in front); every other layer keeps all rows.
   */
  @Override
  public TokenReduction reduceVisionLayer(VisionLayerContext context) {
    int t = context.tokens();
    int f = context.shape().visionFeatureLayer();
    if (context.layer() != f || context.point() != VisionPoint.AFTER_LAYER) {
      return TokenReduction.keepAll(t);
    }
    boolean perHead = config.importanceHeads() != HeadAggregation.MEAN;
    Signal clsSignal = perHead ? new Signal.VitClsHeadAttention(f) : new Signal.VitClsAttention(f);
    FloatTensor cls = context.signals().get(clsSignal);
    FloatTensor rows = context.signals().get(new Signal.VitLayerOutput(f));
    int heads = perHead ? cls.dim(0) : 1;
    if (cls.rank() != (perHead ? 2 : 1)
        || cls.dim(cls.rank() - 1) != t
        || rows.rank() != 2
        || rows.dim(0) != t) {
      throw new IllegalArgumentException(
          "signals "
              + clsSignal
              + " and VitLayerOutput("
              + f
              + ") must be ["
              + (perHead ? "heads, " : "")
              + t
              + "] and ["
              + t
              + ", dim], got "
              + Arrays.toString(cls.shape())
              + " and "
              + Arrays.toString(rows.shape()));
    }
    int n = t - 1;
    int dim = rows.dim(1);
    float[] patches = Arrays.copyOfRange(rows.toArray(), dim, t * dim);
    float[] all = cls.toArray();
    float[] patchAttention = new float[heads * n];
    for (int h = 0; h < heads; h++) {
      System.arraycopy(all, h * t + 1, patchAttention, h * n, n); // the CLS column removed
    }
    float[] importance = importance(patchAttention, 1, heads, n);
    float[] sizes = Arrays.copyOfRange(context.sizes(), 1, t);
    VmtcResult r =
        compress(
            patches, dim, patches, dim, importance, allOnes(sizes) ? null : sizes, context.seed());
    return reduction(r, 1);
  }

  /** {@code merge_at: projected}: VMTC over the projected visual tokens, in raster order. */
  @Override
  public TokenReduction reduceVisualTokens(VisualTokensContext context) {
    int n = context.count();
    int[] layers = config.checkModel(context.shape().vitLayers(), context.shape().vitClsToken());
    float[] cls = new float[layers.length * n];
    for (int l = 0; l < layers.length; l++) {
      FloatTensor a = context.signals().get(new Signal.ClsAttention(layers[l]));
      for (int i = 0; i < n; i++) {
        cls[l * n + i] = a.get(context.visualIndex(i));
      }
    }
    float[] importance = importance(cls, layers.length, 1, n);
    TokenProvenance p = context.provenance();
    float[] sizes = null;
    if (p != null && p.merged()) {
      sizes = new float[n];
      for (int i = 0; i < n; i++) {
        sizes[i] = p.size(i);
      }
    }
    FloatTensor x = context.features();
    float[] rows = x.toArray();
    VmtcResult r = compress(rows, x.dim(1), rows, x.dim(1), importance, sizes, context.seed());
    return reduction(r, 0);
  }

  /**
   * The reduction of {@code r} over {@code prefix + N} rows: the {@code prefix} rows (CLS) kept
   * alone in front, then VMTC's output tokens with their sources and weights; labels: the cluster
   * assignment ({@link VmtcResult#clusters()}), {@value VmtcResult#PRIMARY} for the prefix rows.
   */
  static TokenReduction reduction(VmtcResult r, int prefix) {
    int out = r.count();
    int[][] groups = new int[prefix + out][];
    float[][] weights = new float[prefix + out][];
    for (int p = 0; p < prefix; p++) {
      groups[p] = new int[] {p};
      weights[p] = new float[] {1f};
    }
    for (int o = 0; o < out; o++) {
      int[] g = r.sources(o);
      float[] w = r.weights(o);
      for (int j = 0; j < g.length; j++) {
        g[j] += prefix;
        w[j] = Math.max(w[j], Float.MIN_VALUE);
      }
      groups[prefix + o] = g;
      weights[prefix + o] = w;
    }
    int[] labels = new int[prefix + r.inputCount()];
    Arrays.fill(labels, 0, prefix, VmtcResult.PRIMARY);
    System.arraycopy(r.clusters(), 0, labels, prefix, r.inputCount());
    return TokenReduction.of(prefix + r.inputCount(), groups, weights, PositionMode.REPACK)
        .withLabels(labels);
  }

  private static boolean allOnes(float[] sizes) {
    for (float s : sizes) {
      if (s != 1f) {
        return false;
      }
    }
    return true;
  }

  /**
   * The importance score from CLS→patch attention probabilities {@code [layers, heads, n]}
   * (row-major; the CLS column already removed): for each layer the mean or maximum over heads
   * ({@code importance_heads}), summed over layers in double and rounded once.
   */
  public float[] importance(float[] clsAttention, int layers, int heads, int n) {
    if (clsAttention == null
        || layers < 1
        || heads < 1
        || n < 0
        || (long) layers * heads * n != clsAttention.length) {
      String got = clsAttention == null ? "null" : clsAttention.length + " values";
      throw new IllegalArgumentException(
          "CLS attention of "
              + got
              + " is not [layers="
              + layers
              + ", heads="
              + heads
              + ", n="
              + n
              + "]");
    }
    double[] acc = new double[n];
    for (int l = 0; l < layers; l++) {
      int base = l * heads * n;
      if (config.importanceHeads() == HeadAggregation.MEAN) {
        float[] layer = Arrays.copyOfRange(clsAttention, base, base + heads * n);
        float[] mean = Kernels.meanOverHeads(layer, heads, n);
        for (int j = 0; j < n; j++) {
          acc[j] += mean[j];
        }
      } else {
        for (int j = 0; j < n; j++) {
          float max = clsAttention[base + j];
          for (int h = 1; h < heads; h++) {
            max = Math.max(max, clsAttention[base + h * n + j]);
          }
          acc[j] += max;
        }
      }
    }
    float[] out = new float[n];
    for (int j = 0; j < n; j++) {
      out[j] = (float) acc[j];
    }
    return out;
  }

  /**
   * {@link #compress(float[], int, float[], int, float[], float[], long)} on the tokens themselves,
   * sizes 1.
   */
  public VmtcResult compress(float[] tokens, int dim, float[] importance, long recordSeed) {
    return compress(tokens, dim, tokens, dim, importance, null, recordSeed);
  }

  /**
   * Runs VMTC on one image.
   *
   * @param tokens the {@code [N, dim]} rows that are kept or merged
   * @param dim row width of {@code tokens}
   * @param features the {@code [N, featureDim]} rows k-means clusters (may be {@code tokens})
   * @param featureDim row width of {@code features}
   * @param importance {@code [N]} importance scores, finite and {@code >= 0}
   * @param sizes {@code [N]} token sizes ({@code > 0}), or {@code null} for all 1
   * @param recordSeed the per-record seed
   */
  public VmtcResult compress(
      float[] tokens,
      int dim,
      float[] features,
      int featureDim,
      float[] importance,
      float[] sizes,
      long recordSeed) {
    int n = checkInputs(tokens, dim, features, featureDim, importance, sizes);
    int[] split = config.split(n);
    int kp = split[0];
    int c = split[1];
    boolean[] isPrimary = new boolean[n];
    for (int i : Kernels.topK(importance, kp)) {
      isPrimary[i] = true;
    }
    int[] points;
    if (config.clusterOver() == ClusterOver.ALL) {
      points = new int[n];
      for (int i = 0; i < n; i++) {
        points[i] = i;
      }
    } else {
      points = new int[n - kp];
      int p = 0;
      for (int i = 0; i < n; i++) {
        if (!isPrimary[i]) {
          points[p++] = i;
        }
      }
    }
    int m = points.length;
    int[] labels = new int[m];
    int iterations = 0;
    if (c > 0) {
      double[] x = pointFeatures(features, featureDim, points, config.metric());
      int[] centres = kMeansPlusPlus(x, m, featureDim, c, uniforms(recordSeed, c), config.metric());
      Lloyd lloyd = new Lloyd(x, m, featureDim, c, config);
      iterations = lloyd.run(centres, labels);
    } else {
      Arrays.fill(labels, -1);
    }
    return assemble(tokens, dim, importance, sizes, isPrimary, points, labels, c, iterations);
  }

  /**
   * The {@code count} uniforms in {@code [0, 1)} that drive k-means++ for a record: {@code new
   * SplittableRandom(Seeds.combine(recordSeed, config.seed())).nextDouble()} in turn.
   */
  double[] uniforms(long recordSeed, int count) {
    SplittableRandom rng = new SplittableRandom(Seeds.combine(recordSeed, config.seed()));
    double[] u = new double[count];
    for (int j = 0; j < count; j++) {
      u[j] = rng.nextDouble();
    }
    return u;
  }

  private static int checkInputs(
      float[] tokens,
      int dim,
      float[] features,
      int featureDim,
      float[] importance,
      float[] sizes) {
    if (importance == null) {
      throw new IllegalArgumentException("importance must not be null");
    }
    int n = importance.length;
    checkRows("tokens", tokens, n, dim);
    if (features != tokens || featureDim != dim) {
      checkRows("features", features, n, featureDim);
    }
    for (int i = 0; i < n; i++) {
      float v = importance[i];
      if (!(v >= 0) || v == Float.POSITIVE_INFINITY) {
        throw new IllegalArgumentException(
            "importance[" + i + "] must be finite and >= 0, got " + v);
      }
    }
    if (sizes != null) {
      if (sizes.length != n) {
        throw new IllegalArgumentException(
            "sizes has " + sizes.length + " values, importance has " + n);
      }
      for (int i = 0; i < n; i++) {
        if (!(sizes[i] > 0) || sizes[i] == Float.POSITIVE_INFINITY) {
          throw new IllegalArgumentException(
              "sizes[" + i + "] must be finite and > 0, got " + sizes[i]);
        }
      }
    }
    return n;
  }

  private static void checkRows(String name, float[] rows, int n, int dim) {
    if (rows == null) {
      throw new IllegalArgumentException(name + " must not be null");
    }
    if (dim < 1 || (long) n * dim != rows.length) {
      throw new IllegalArgumentException(
          name
              + " has "
              + rows.length
              + " values, not [N="
              + n
              + " (importance), dim="
              + dim
              + "]");
    }
    for (int i = 0; i < rows.length; i++) {
      if (!Float.isFinite(rows[i])) {
        throw new IllegalArgumentException(
            name + "[" + (i / dim) + ", " + (i % dim) + "] is " + rows[i]);
      }
    }
  }

  /** The clustered points' features in double: unit rows (cosine; zero stays zero) or raw rows. */
  static double[] pointFeatures(float[] features, int dim, int[] points, Metric metric) {
    double[] x = new double[points.length * dim];
    for (int p = 0; p < points.length; p++) {
      int src = points[p] * dim;
      int dst = p * dim;
      if (metric == Metric.COSINE) {
        double ss = 0;
        for (int k = 0; k < dim; k++) {
          double v = features[src + k];
          ss += v * v;
        }
        double norm = Math.sqrt(ss);
        for (int k = 0; k < dim; k++) {
          x[dst + k] = norm > 0 ? features[src + k] / norm : 0.0;
        }
      } else {
        for (int k = 0; k < dim; k++) {
          x[dst + k] = features[src + k];
        }
      }
    }
    return x;
  }

  /** Sequential dot product of row {@code i} of {@code a} and row {@code j} of {@code b}. */
  private static double dot(double[] a, int i, double[] b, int j, int dim) {
    double s = 0;
    int ai = i * dim;
    int bj = j * dim;
    for (int k = 0; k < dim; k++) {
      s += a[ai + k] * b[bj + k];
    }
    return s;
  }

  /**
   * Sequential squared Euclidean distance of row {@code i} of {@code a} and row {@code j} of {@code
   * b}.
   */
  private static double sqDist(double[] a, int i, double[] b, int j, int dim) {
    double s = 0;
    int ai = i * dim;
    int bj = j * dim;
    for (int k = 0; k < dim; k++) {
      double d = a[ai + k] - b[bj + k];
      s += d * d;
    }
    return s;
  }

  /** k-means++ distance: {@code max(0, 2 - 2·dot)} (cosine, unit rows) or the squared distance. */
  private static double seedDistance(double[] a, int i, double[] b, int j, int dim, Metric metric) {
    if (metric == Metric.COSINE) {
      return Math.max(0.0, 2.0 - 2.0 * dot(a, i, b, j, dim));
    }
    return sqDist(a, i, b, j, dim);
  }

  /**
   * Similarity used for assignment (higher is closer): dot product (cosine) or minus the squared
   * distance.
   */
  private static double similarity(double[] a, int i, double[] b, int j, int dim, Metric metric) {
    return metric == Metric.COSINE ? dot(a, i, b, j, dim) : -sqDist(a, i, b, j, dim);
  }

  /**
   * k-means++ seeding over {@code m} points (rows of {@code x}) with one uniform per centre, as in
   * the class comment; package-private so tests can feed the reference's uniforms.
   *
   * @return the point index of each of the {@code k} centres, in the order chosen
   */
  static int[] kMeansPlusPlus(double[] x, int m, int dim, int k, double[] u, Metric metric) {
    if (k < 1 || k > m || u.length < k) {
      throw new IllegalArgumentException(
          "k-means++ needs 1 <= k <= m and k uniforms: k="
              + k
              + ", m="
              + m
              + ", uniforms="
              + u.length);
    }
    int[] centres = new int[k];
    boolean[] chosen = new boolean[m];
    centres[0] = Math.min(m - 1, (int) Math.floor(u[0] * m));
    chosen[centres[0]] = true;
    double[] dist = new double[m];
    for (int i = 0; i < m; i++) {
      dist[i] = chosen[i] ? 0.0 : seedDistance(x, i, x, centres[0], dim, metric);
    }
    for (int j = 1; j < k; j++) {
      double total = 0;
      for (int i = 0; i < m; i++) {
        total += dist[i];
      }
      int next = -1;
      if (total > 0) {
        double target = u[j] * total;
        double cum = 0;
        int lastPositive = -1;
        for (int i = 0; i < m; i++) {
          if (dist[i] > 0) {
            lastPositive = i;
            cum += dist[i];
            if (cum > target) {
              next = i;
              break;
            }
          }
        }
        if (next < 0) {
          next = lastPositive; // rounding left the target at the very end
        }
      } else {
        for (int i = 0; i < m; i++) {
          if (!chosen[i]) {
            next = i;
            break;
          }
        }
      }
      centres[j] = next;
      chosen[next] = true;
      for (int i = 0; i < m; i++) {
        if (chosen[i]) {
          dist[i] = 0.0;
        } else {
          double d = seedDistance(x, i, x, next, dim, metric);
          if (d < dist[i]) {
            dist[i] = d;
          }
        }
      }
    }
    return centres;
  }

  /**
   * Lloyd iterations from given centres; package-private so tests can start from a fixed
   * initialisation.
   */
  static final class Lloyd {
    private final double[] x;
    private final int m;
    private final int dim;
    private final int k;
    private final Metric metric;
    private final EmptyClusters empty;
    private final int maxIterations;
    private final double tolerance;
    private final double[] best;
    private final int[] counts;

    Lloyd(double[] x, int m, int dim, int k, VmtcConfig config) {
      this.x = x;
      this.m = m;
      this.dim = dim;
      this.k = k;
      this.metric = config.metric();
      this.empty = config.emptyClusters();
      this.maxIterations = config.maxIterations();
      this.tolerance = config.tolerance();
      this.best = new double[m];
      this.counts = new int[k];
    }

    /**
     * Clusters from the centres at {@code centres} (point indices), writing each point's cluster
     * into {@code labels}.
     *
     * @return the number of centroid updates run
     */
    int run(int[] centres, int[] labels) {
      double[] cent = new double[k * dim];
      for (int c = 0; c < k; c++) {
        System.arraycopy(x, centres[c] * dim, cent, c * dim, dim);
      }
      assign(cent, labels);
      int[] next = new int[m];
      double[] updated = new double[k * dim];
      int it = 0;
      while (it < maxIterations) {
        double shift = update(labels, cent, updated);
        double[] t = cent;
        cent = updated;
        updated = t;
        assign(cent, next);
        it++;
        boolean changed = !Arrays.equals(labels, next);
        System.arraycopy(next, 0, labels, 0, m);
        if (!changed || shift <= tolerance) {
          break;
        }
      }
      return it;
    }

    private void assign(double[] cent, int[] labels) {
      Arrays.fill(counts, 0);
      for (int i = 0; i < m; i++) {
        int arg = 0;
        double s = similarity(x, i, cent, 0, dim, metric);
        for (int c = 1; c < k; c++) {
          double v = similarity(x, i, cent, c, dim, metric);
          if (v > s) {
            s = v;
            arg = c;
          }
        }
        labels[i] = arg;
        best[i] = s;
        counts[arg]++;
      }
      if (empty != EmptyClusters.REASSIGN) {
        return;
      }
      for (int c = 0; c < k; c++) {
        if (counts[c] > 0) {
          continue;
        }
        int pick = -1;
        for (int i = 0; i < m; i++) {
          if (counts[labels[i]] >= 2 && (pick < 0 || best[i] < best[pick])) {
            pick = i;
          }
        }
        counts[labels[pick]]--;
        labels[pick] = c;
        counts[c] = 1;
      }
    }

    /** New centroids into {@code out}; returns the largest Euclidean shift. */
    private double update(int[] labels, double[] cent, double[] out) {
      Arrays.fill(out, 0.0);
      Arrays.fill(counts, 0);
      for (int i = 0; i < m; i++) {
        int c = labels[i];
        counts[c]++;
        int src = i * dim;
        int dst = c * dim;
        for (int d = 0; d < dim; d++) {
          out[dst + d] += x[src + d];
        }
      }
      double maxShift = 0;
      for (int c = 0; c < k; c++) {
        int base = c * dim;
        boolean keep = counts[c] == 0;
        if (!keep) {
          if (metric == Metric.COSINE) {
            double ss = 0;
            for (int d = 0; d < dim; d++) {
              ss += out[base + d] * out[base + d];
            }
            double norm = Math.sqrt(ss);
            if (norm > 0) {
              for (int d = 0; d < dim; d++) {
                out[base + d] /= norm;
              }
            } else {
              keep = true;
            }
          } else {
            for (int d = 0; d < dim; d++) {
              out[base + d] /= counts[c];
            }
          }
        }
        if (keep) {
          System.arraycopy(cent, base, out, base, dim);
        }
        double shift = Math.sqrt(sqDist(out, c, cent, c, dim));
        if (shift > maxShift) {
          maxShift = shift;
        }
      }
      return maxShift;
    }
  }

  private VmtcResult assemble(
      float[] tokens,
      int dim,
      float[] importance,
      float[] sizes,
      boolean[] isPrimary,
      int[] points,
      int[] labels,
      int k,
      int iterations) {
    int n = isPrimary.length;
    // Merged members per k-means cluster (ascending input index: points are ascending).
    int[] memberCount = new int[Math.max(k, 0)];
    int[] anchor = new int[Math.max(k, 0)];
    Arrays.fill(anchor, Integer.MAX_VALUE);
    for (int p = 0; p < points.length; p++) {
      int i = points[p];
      if (labels[p] >= 0 && !isPrimary[i]) {
        memberCount[labels[p]]++;
        anchor[labels[p]] = Math.min(anchor[labels[p]], i);
      }
    }
    // Output groups: (anchor, kind) with kind = -1 for a primary token, else the k-means cluster.
    int nPrimary = 0;
    for (boolean b : isPrimary) {
      nPrimary += b ? 1 : 0;
    }
    int nMerged = 0;
    for (int c = 0; c < k; c++) {
      nMerged += memberCount[c] > 0 ? 1 : 0;
    }
    long[] mergedKeys = new long[nMerged];
    int q = 0;
    for (int c = 0; c < k; c++) {
      if (memberCount[c] > 0) {
        mergedKeys[q++] = ((long) anchor[c] << 32) | c;
      }
    }
    Arrays.sort(mergedKeys);
    int[] canonical = new int[Math.max(k, 0)];
    Arrays.fill(canonical, -1);
    for (int r = 0; r < nMerged; r++) {
      canonical[(int) mergedKeys[r]] = r;
    }
    int total = nPrimary + nMerged;
    long[] outKeys = new long[total]; // (sortKey << 32) | (primary ? i : n + canonicalId)
    int o = 0;
    boolean primaryFirst = config.order() == Order.PRIMARY_FIRST;
    for (int i = 0; i < n; i++) {
      if (isPrimary[i]) {
        outKeys[o++] = ((long) i << 32) | i;
      }
    }
    for (int r = 0; r < nMerged; r++) {
      long a = mergedKeys[r] >>> 32;
      long sortKey = primaryFirst ? n + a : a;
      outKeys[o++] = (sortKey << 32) | (n + r);
    }
    Arrays.sort(outKeys);
    // Members of each canonical cluster, ascending.
    int[] clusterOf = new int[n];
    Arrays.fill(clusterOf, VmtcResult.DROPPED);
    int[] mergedOffsets = new int[nMerged + 1];
    for (int p = 0; p < points.length; p++) {
      int i = points[p];
      if (labels[p] >= 0 && !isPrimary[i]) {
        clusterOf[i] = canonical[labels[p]];
        mergedOffsets[clusterOf[i] + 1]++;
      }
    }
    for (int r = 0; r < nMerged; r++) {
      mergedOffsets[r + 1] += mergedOffsets[r];
    }
    int[] mergedMembers = new int[mergedOffsets[nMerged]];
    int[] fill = Arrays.copyOf(mergedOffsets, nMerged);
    for (int i = 0; i < n; i++) {
      if (clusterOf[i] >= 0) {
        mergedMembers[fill[clusterOf[i]]++] = i;
      }
    }
    for (int i = 0; i < n; i++) {
      if (isPrimary[i]) {
        clusterOf[i] = VmtcResult.PRIMARY;
      }
    }
    // Output rows.
    float[] out = new float[total * dim];
    int[] offsets = new int[total + 1];
    int[] sources = new int[nPrimary + mergedMembers.length];
    float[] weights = new float[sources.length];
    float[] outSizes = new float[total];
    boolean[] outPrimary = new boolean[total];
    int[] outputOf = new int[n];
    Arrays.fill(outputOf, -1);
    double[] acc = new double[dim];
    int s = 0;
    for (int r = 0; r < total; r++) {
      int id = (int) outKeys[r];
      offsets[r] = s;
      if (id < n) {
        outPrimary[r] = true;
        System.arraycopy(tokens, id * dim, out, r * dim, dim);
        sources[s] = id;
        weights[s] = 1f;
        outSizes[r] = sizes == null ? 1f : sizes[id];
        outputOf[id] = r;
        s++;
        continue;
      }
      int cid = id - n;
      int from = mergedOffsets[cid];
      int to = mergedOffsets[cid + 1];
      double wsum = 0;
      double size = 0;
      for (int t = from; t < to; t++) {
        int i = mergedMembers[t];
        wsum += weight(i, importance, sizes);
        size += sizes == null ? 1.0 : sizes[i];
      }
      boolean uniform = !(wsum > 0);
      if (uniform) {
        wsum = to - from;
      }
      Arrays.fill(acc, 0.0);
      for (int t = from; t < to; t++) {
        int i = mergedMembers[t];
        double w = uniform ? 1.0 : weight(i, importance, sizes);
        int base = i * dim;
        for (int d = 0; d < dim; d++) {
          acc[d] += w * tokens[base + d];
        }
        sources[s] = i;
        weights[s] = (float) (w / wsum);
        outputOf[i] = r;
        s++;
      }
      int ob = r * dim;
      for (int d = 0; d < dim; d++) {
        out[ob + d] = (float) (acc[d] / wsum);
      }
      outSizes[r] = (float) size;
    }
    offsets[total] = s;
    return new VmtcResult(
        n,
        dim,
        out,
        offsets,
        sources,
        weights,
        outSizes,
        outPrimary,
        clusterOf,
        outputOf,
        nMerged,
        iterations);
  }

  private double weight(int i, float[] importance, float[] sizes) {
    if (config.mergeWeight() == MergeWeight.IMPORTANCE) {
      return importance[i];
    }
    return sizes == null ? 1.0 : sizes[i];
  }

  @Override
  public String toString() {
    return "Vmtc" + config.toJson();
  }
}
