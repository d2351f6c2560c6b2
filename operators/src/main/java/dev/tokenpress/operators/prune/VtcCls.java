package dev.tokenpress.operators.prune;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.api.VtcClsConfig;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * VTC-CLS: Wang et al., "[CLS] Token Tells Everything Needed for Training-free Efficient MLLMs"
 * (arXiv 2412.05819), reference code {@code THU-MIG/VTC-CLS} @e41ac9b ({@code
 * clip_encoder.py::cls_token_only}, {@code llava_arch.py::encode_images}).
 *
 * <p><b>Score.</b> {@code s_j = Σ_{ℓ ∈ layers} mean_h softmax(q_CLS·kᵀ/√d)_ℓ,h[patch j]}, i.e. the
 * sum of {@link Signal.ClsAttention} over the configured ViT layers. The reference sums {@code
 * attentions[start_layer:-1]}: layers {@code start_layer..L-2} of the {@code L}-layer ViT, where
 * {@code --layer} (default 16) is the start. That end is also the last layer whose output LLaVA-1.5
 * uses ({@code vision_feature_layer = -2} takes {@code hidden_states[-2]}, the output of layer
 * {@code L-2}), so the score only reads layers the runtime runs anyway; layer {@code L-1} is
 * excluded. The default {@link VtcClsConfig#DEFAULT_LAYERS} is therefore {@code "16..L-2"}; for a
 * shallower ViT set {@code layers} (e.g. {@code "1..L-2"}).
 *
 * <p><b>Selection.</b> Keep the {@code budget.resolve(N)} tokens with the highest score (ties: the
 * lower visual index, see {@link Kernels#topK}; {@code torch.topk} leaves ties unspecified), then
 * restore spatial order (ascending index) before the LLM, as the reference does with its {@code
 * argsort} of the kept position ids. Nothing changes inside the LLM; the kept tokens get
 * consecutive positions ({@link PositionMode#REPACK}), as in Hugging Face LLaVA, which rebuilds
 * position ids from the attention mask.
 *
 * <p>Works after other {@code VISUAL_TOKENS} operators: token {@code i}'s score is read at its
 * visual index. Scores accumulate in double and are rounded to float once.
 */
public final class VtcCls implements TokenOperator {

  private static final Set<Hook> HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.VISUAL_TOKENS));

  private final VtcClsConfig config;

  /** An operator for {@code config}. */
  public VtcCls(VtcClsConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
  }

  @Override
  public VtcClsConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    return HOOKS;
  }

  @Override
  public void validate(ModelShape shape) {
    if (!shape.vitClsToken()) {
      throw new IllegalArgumentException(
          VtcClsConfig.NAME + " needs a ViT with a CLS token; this model has none");
    }
    config.layers().resolve(shape.vitLayers(), VtcClsConfig.NAME + ".layers");
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    int[] layers = config.layers().resolve(shape.vitLayers(), VtcClsConfig.NAME + ".layers");
    List<Signal> out = new ArrayList<>(layers.length);
    for (int l : layers) {
      out.add(new Signal.ClsAttention(l));
    }
    return List.copyOf(out);
  }

  /**
   * The VTC-CLS score of every patch ({@code [numPatches]}, indexed by visual index): the sum of
   * the CLS attention of the configured layers.
   */
  public float[] patchScores(ModelShape shape, SignalValues signals) {
    int np = shape.numPatches();
    double[] acc = new double[np];
    for (Signal s : signals(shape)) {
      FloatTensor a = signals.get(s);
      if (a.size() != np) {
        throw new IllegalArgumentException(
            "signal " + s + " has " + a.size() + " values, the model has " + np + " patches");
      }
      for (int j = 0; j < np; j++) {
        acc[j] += a.get(j);
      }
    }
    float[] out = new float[np];
    for (int j = 0; j < np; j++) {
      out[j] = (float) acc[j];
    }
    return out;
  }

  @Override
  public TokenSelection selectVisualTokens(VisualTokensContext context) {
    int n = context.count();
    int k = config.budget().resolve(n);
    if (k >= n) {
      return TokenSelection.keepAll(n);
    }
    float[] patch = patchScores(context.shape(), context.signals());
    float[] scores = new float[n];
    for (int i = 0; i < n; i++) {
      int v = context.visualIndex(i);
      if (v >= patch.length) {
        throw new IllegalArgumentException(
            "visual token "
                + i
                + " has visual index "
                + v
                + ", outside the "
                + patch.length
                + " patches that CLS attention covers");
      }
      scores[i] = patch[v];
    }
    return TokenSelection.of(n, Kernels.topKInIndexOrder(scores, k), PositionMode.REPACK);
  }

  @Override
  public String toString() {
    return "VtcCls" + config.toJson();
  }
}
