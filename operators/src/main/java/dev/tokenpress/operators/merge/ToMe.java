package dev.tokenpress.operators.merge;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.ToMeConfig;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * ToMe: Bolya, Fu, Dai, Zhang, Feichtenhofer, Hoffman, "Token Merging: Your ViT But Faster" (ICLR
 * 2023, arXiv 2210.09461), as the authors' code runs it ({@code facebookresearch/ToMe}, {@code
 * tome/merge.py::bipartite_soft_matching}, {@code merge_wavg}, {@code tome/patch/timm.py}).
 *
 * <p><b>Where.</b> In every ViT layer run, between the attention residual and the MLP ({@link
 * VisionPoint#AFTER_ATTENTION}), {@code r} tokens are merged away ({@code r} per layer: {@link
 * ToMeConfig#perLayer}).
 *
 * <p><b>Metric.</b> The layer's attention keys averaged over heads ({@link Signal.VitKeys}),
 * L2-normalised; similarity is the cosine, computed in double.
 *
 * <p><b>Bipartite soft matching.</b> Rows {@code 0, 2, 4, ..} form set A, rows {@code 1, 3, ..} set
 * B. Each A row is matched to its most similar B row; the CLS row (row 0, in A) never is. The
 * {@code r} A rows with the most similar match are merged into their B rows (several may merge into
 * one). {@code r} is capped at {@code (T - 1) // 2} with a CLS token ({@code T // 2} without), as
 * in the reference; {@link #validate} rejects larger values at plan start. Ties, which {@code
 * torch.max}/{@code argsort} leave unspecified, go to the lower index: the lowest B row for a
 * match, the lower A row in the edge order.
 *
 * <p><b>Merge.</b> Size-weighted means ({@code merge_wavg}): each merged token is {@code Σ size_i
 * x_i / Σ size_i} and its size the sum of the sizes, tracked through later layers; with {@code
 * prop_attn} (the original's default for off-the-shelf models) {@code log(size)} is added to the
 * attention logits of every later layer. Popular re-implementations (e.g. ModelTC/LightCompress
 * {@code tome.py}) reset sizes to 1 at every layer and drop proportional attention; this class does
 * not.
 *
 * <p><b>Order.</b> As in the reference, the output is the unmerged A rows (ascending when there is
 * a CLS token, which stays first; otherwise in edge order), then the B rows; this order feeds the
 * next layer's A/B split. Before the LM the runtime puts the visual tokens in raster order of their
 * smallest patch (ToMe itself defines no LM order), with re-packed positions.
 */
public final class ToMe implements TokenOperator {

  private static final Set<Hook> HOOKS = Collections.unmodifiableSet(EnumSet.of(Hook.VISION_LAYER));

  private final ToMeConfig config;

  /** An operator for {@code config}. */
  public ToMe(ToMeConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
  }

  @Override
  public ToMeConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    return HOOKS;
  }

  /** Bipartite matching on the keys alone: no randomness. */
  @Override
  public boolean usesRecordSeed() {
    return false;
  }

  @Override
  public boolean proportionalAttention() {
    return config.proportionalAttention();
  }

  @Override
  public VisionPoint visionPoint() {
    return VisionPoint.AFTER_ATTENTION;
  }

  /**
   * Checks {@code r} against the ViT: one value or one per layer run, and in every layer at most
   * half of the tokens that remain (CLS excluded).
   */
  @Override
  public void validate(ModelShape shape) {
    int layers = shape.visionFeatureLayer() + 1;
    int[] r = config.perLayer(layers);
    int cls = shape.vitClsToken() ? 1 : 0;
    int t = shape.numPatches() + cls;
    for (int l = 0; l < layers; l++) {
      int max = (t - cls) / 2;
      if (r[l] > max) {
        String field = ToMeConfig.NAME + ".r" + (config.r().size() > 1 ? "[" + l + "]" : "");
        throw new IllegalArgumentException(
            field
                + " must be in [0, "
                + max
                + "] at ViT layer "
                + l
                + ", where "
                + t
                + " tokens remain (at most half of the non-CLS tokens merge per layer), got "
                + r[l]);
      }
      t -= r[l];
    }
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    int[] r = config.perLayer(shape.visionFeatureLayer() + 1);
    List<Signal> out = new ArrayList<>();
    for (int l = 0; l < r.length; l++) {
      if (r[l] > 0) {
        out.add(new Signal.VitKeys(l));
      }
    }
    return List.copyOf(out);
  }

  @Override
  public TokenReduction reduceVisionLayer(VisionLayerContext context) {
    int t = context.tokens();
    int r = config.perLayer(context.shape().visionFeatureLayer() + 1)[context.layer()];
    boolean cls = context.shape().vitClsToken();
    r = Math.min(r, (t - (cls ? 1 : 0)) / 2);
    if (r <= 0) {
      return TokenReduction.keepAll(t);
    }
    FloatTensor keys = context.signals().get(new Signal.VitKeys(context.layer()));
    if (keys.rank() != 2 || keys.dim(0) != t) {
      throw new IllegalArgumentException(
          "signal VitKeys("
              + context.layer()
              + ") must be ["
              + t
              + ", headDim], got shape "
              + Arrays.toString(keys.shape()));
    }
    float[] sizes = context.sizes();
    return match(keys.toArray(), t, keys.dim(1), r, cls, sizes);
  }

  /**
   * Bipartite soft matching of {@code t} rows of the metric {@code [t, c]}, merging {@code r} rows,
   * as a reduction whose member weights are {@code sizes}.
   */
  static TokenReduction match(float[] metric, int t, int c, int r, boolean cls, float[] sizes) {
    double[] unit = new double[t * c];
    for (int i = 0; i < t; i++) {
      double norm = 0;
      for (int k = 0; k < c; k++) {
        double v = metric[i * c + k];
        norm += v * v;
      }
      norm = Math.sqrt(norm);
      for (int k = 0; k < c; k++) {
        unit[i * c + k] = metric[i * c + k] / norm;
      }
    }
    int na = (t + 1) / 2;
    int nb = t / 2;
    double[] nodeMax = new double[na];
    int[] nodeIdx = new int[na];
    for (int i = 0; i < na; i++) {
      int a = 2 * i;
      double best = Double.NEGATIVE_INFINITY;
      int arg = 0;
      for (int j = 0; j < nb; j++) {
        int b = 2 * j + 1;
        double s = 0;
        for (int k = 0; k < c; k++) {
          s += unit[a * c + k] * unit[b * c + k];
        }
        if (s > best) {
          best = s;
          arg = j;
        }
      }
      nodeMax[i] = cls && i == 0 ? Double.NEGATIVE_INFINITY : best;
      nodeIdx[i] = arg;
    }
    Integer[] edges = new Integer[na];
    for (int i = 0; i < na; i++) {
      edges[i] = i;
    }
    Arrays.sort(
        edges,
        (x, y) -> {
          int cmp = Double.compare(nodeMax[y], nodeMax[x]);
          return cmp != 0 ? cmp : Integer.compare(x, y);
        });
    int[] unm = new int[na - r];
    for (int i = r; i < na; i++) {
      unm[i - r] = edges[i];
    }
    if (cls) {
      Arrays.sort(unm);
    }
    int[] count = new int[nb];
    for (int e = 0; e < r; e++) {
      count[nodeIdx[edges[e]]]++;
    }
    int outputs = unm.length + nb;
    int[][] groups = new int[outputs][];
    float[][] weights = new float[outputs][];
    for (int o = 0; o < unm.length; o++) {
      int row = 2 * unm[o];
      groups[o] = new int[] {row};
      weights[o] = new float[] {sizes[row]};
    }
    int[] fill = new int[nb];
    for (int j = 0; j < nb; j++) {
      groups[unm.length + j] = new int[count[j] + 1];
      groups[unm.length + j][fill[j]++] = 2 * j + 1;
    }
    for (int e = 0; e < r; e++) {
      int i = edges[e];
      int j = nodeIdx[i];
      groups[unm.length + j][fill[j]++] = 2 * i;
    }
    for (int j = 0; j < nb; j++) {
      int[] m = groups[unm.length + j];
      Arrays.sort(m);
      float[] w = new float[m.length];
      for (int k = 0; k < m.length; k++) {
        w[k] = sizes[m[k]];
      }
      weights[unm.length + j] = w;
    }
    return TokenReduction.of(t, groups, weights, PositionMode.REPACK);
  }

  @Override
  public String toString() {
    return "ToMe" + config.toJson();
  }
}
