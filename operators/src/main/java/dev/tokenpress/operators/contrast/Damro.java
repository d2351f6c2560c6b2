package dev.tokenpress.operators.contrast;

import dev.tokenpress.operators.api.BranchInput;
import dev.tokenpress.operators.api.DamroConfig;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.LogitsContext;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisualTokensContext;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * DAMRO: Gong et al., "DAMRO: Dive into the Attention Mechanism of LVLM to Reduce Object
 * Hallucination" (EMNLP 2024, arXiv 2410.04514); as the code of {@code coder-gx/DAMRO} runs it
 * ({@code modeling_llava.py} / {@code modeling_instructblip.py} {@code '''DAMRO'''} blocks, {@code
 * sample_method/sample.py::_sample}).
 *
 * <p><b>Outliers</b> ({@link Hook#VISION_LAYER} of the vision feature layer, keeping every token):
 * the CLS row of that layer's attention, signal {@link Signal.VitClsLogits}, ranked by {@link
 * DamroConfig.Mode#CONCAT_LOGITS} ({@code Σ_h q_h(CLS)·k_h(j)}: LLaVA's softmax over the full width
 * without a head split, which ranks as its logits do) or {@link DamroConfig.Mode#HEAD_MEAN_PROB}
 * ({@link Kernels#headMeanSoftmax}, InstructBLIP's; the reference's off-by-one that can pick CLS is
 * not reproduced). The top {@code k} ({@link DamroConfig#resolveK}) are kept in score order, as
 * {@code torch.topk(sorted=True)} and the gather leave them; ties go to the lower patch.
 *
 * <p><b>Branch</b> ({@link Hook#BRANCH}): those tokens' projected features, in score order, with
 * the prompt's text: the runtime runs this "outlier-only" sequence beside the main one with its own
 * KV cache and compact positions (HF rebuilds them from the attention mask). The main sequence is
 * left alone, so DAMRO composes with token-reduction operators: they reduce the main sequence, the
 * outliers come from all visual tokens the projector produced.
 *
 * <p><b>Logits</b> ({@link Hook#LOGITS}), per step with {@code l} the main and {@code l_cd} the
 * branch logits: {@code s = (1+α)·l − α·l_cd}, and {@code s_i = −∞} where {@code l_i < ln β + max
 * l} (VCD's plausibility rule {@code p_i ≥ β·p_max}). Greedy decoding takes the largest {@code s};
 * with {@link DamroConfig.Decoding#SAMPLE} a token is drawn from {@code softmax(s)} (no temperature
 * or top-p: the reference skips the warpers) with a generator seeded by the record's seed, the
 * configured seed and the step, and every other logit is returned as {@code −∞} so the runtime's
 * argmax takes the draw.
 */
public final class Damro implements TokenOperator {

  private static final Set<Hook> HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.VISION_LAYER, Hook.BRANCH, Hook.LOGITS));

  private final DamroConfig config;

  /** Per-record state ({@link #forRecord}); null on the plan's shared instance. */
  private final RecordState record;

  /** What one record's ViT left: the outlier score of each patch at its representative index. */
  private static final class RecordState {
    float[] byPatch;
  }

  /** An operator for {@code config}. */
  public Damro(DamroConfig config) {
    this(config, null);
  }

  private Damro(DamroConfig config, RecordState record) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
    this.record = record;
  }

  @Override
  public DamroConfig config() {
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
          DamroConfig.NAME
              + " ranks tokens by the ViT's CLS attention; this model's ViT has no CLS token");
    }
    if (config.k() > shape.numPatches()) {
      throw new IllegalArgumentException(
          DamroConfig.NAME
              + ".k must be in [1, numPatches] = [1, "
              + shape.numPatches()
              + "] for this model, got "
              + config.k());
    }
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    return List.of(new Signal.VitClsLogits(shape.visionFeatureLayer()));
  }

  @Override
  public TokenOperator forRecord() {
    return new Damro(config, new RecordState());
  }

  /**
   * The outlier score of every patch row of a CLS row of logits {@code [heads, tokens]} (index 0 =
   * CLS): {@code [tokens-1]}, higher = more of an outlier.
   */
  public static float[] scores(float[] clsLogits, int heads, int tokens, DamroConfig.Mode mode) {
    if ((long) heads * tokens != clsLogits.length || tokens < 2) {
      throw new IllegalArgumentException(
          "CLS logits of "
              + clsLogits.length
              + " values are not [heads="
              + heads
              + ", tokens="
              + tokens
              + "] with at least one patch");
    }
    float[] s = new float[tokens - 1];
    if (mode == DamroConfig.Mode.HEAD_MEAN_PROB) {
      float[] mean = Kernels.headMeanSoftmax(clsLogits, heads, tokens);
      System.arraycopy(mean, 1, s, 0, s.length);
      return s;
    }
    for (int j = 1; j < tokens; j++) {
      double acc = 0;
      for (int h = 0; h < heads; h++) {
        acc += clsLogits[h * tokens + j];
      }
      s[j - 1] = (float) acc;
    }
    return s;
  }

  /**
   * The outliers: indices into {@code scores}, the top {@code k} in score order (ties: lower
   * index).
   */
  public static int[] outliers(float[] scores, int k) {
    return Kernels.topK(scores, k);
  }

  @Override
  public TokenReduction reduceVisionLayer(VisionLayerContext context) {
    int t = context.tokens();
    if (context.layer() != context.shape().visionFeatureLayer()) {
      return TokenReduction.keepAll(t);
    }
    RecordState rec = requireRecord();
    Signal.VitClsLogits signal = new Signal.VitClsLogits(context.layer());
    FloatTensor logits = context.signals().get(signal);
    int heads = context.shape().vitHeads();
    if (logits.rank() != 2 || logits.dim(0) != heads || logits.dim(1) != t) {
      throw new IllegalArgumentException(
          "signal "
              + signal
              + " must be ["
              + heads
              + ", "
              + t
              + "], got shape "
              + Arrays.toString(logits.shape()));
    }
    float[] s = scores(logits.toArray(), heads, t, config.mode());
    int[] reps = context.provenance().representatives();
    float[] byPatch = new float[context.shape().numPatches()];
    Arrays.fill(byPatch, Float.NaN);
    for (int r = 0; r < reps.length; r++) {
      byPatch[reps[r]] = s[r];
    }
    rec.byPatch = byPatch;
    return TokenReduction.keepAll(t);
  }

  @Override
  public BranchInput branch(VisualTokensContext context) {
    float[] byPatch = requireRecord().byPatch;
    if (byPatch == null) {
      throw new IllegalStateException(
          DamroConfig.NAME
              + ": no outlier scores for this record; the ViT's layer "
              + context.shape().visionFeatureLayer()
              + " did not run through the VISION_LAYER hook");
    }
    int n = context.count();
    float[] s = new float[n];
    for (int i = 0; i < n; i++) {
      s[i] = byPatch[context.visualIndex(i)];
      if (Float.isNaN(s[i])) {
        throw new IllegalStateException(
            DamroConfig.NAME
                + ": visual token "
                + i
                + " (patch "
                + context.visualIndex(i)
                + ") has no CLS score");
      }
    }
    int[] top = outliers(s, config.resolveK(context.shape().numPatches()));
    FloatTensor f = context.features();
    int dim = f.dim(1);
    float[] out = new float[top.length * dim];
    int[] vis = new int[top.length];
    float[] all = f.toArray();
    for (int i = 0; i < top.length; i++) {
      System.arraycopy(all, top[i] * dim, out, i * dim, dim);
      vis[i] = context.visualIndex(top[i]);
    }
    return new BranchInput(FloatTensor.wrap(out, top.length, dim), vis);
  }

  @Override
  public float[] logits(LogitsContext context) {
    FloatTensor cd = context.branchLogits();
    if (cd == null) {
      throw new IllegalStateException(
          DamroConfig.NAME
              + ": the runtime passed no outlier-branch logits at step "
              + context.step());
    }
    float[] s = contrast(context.logits().toArray(), cd.toArray(), config.alpha(), config.beta());
    if (config.decoding() == DamroConfig.Decoding.GREEDY) {
      return s;
    }
    long seed = Seeds.combine(Seeds.combine(context.seed(), config.seed()), context.step());
    int y = sample(s, new SplittableRandom(seed));
    float[] one = new float[s.length];
    Arrays.fill(one, Float.NEGATIVE_INFINITY);
    one[y] = s[y];
    return one;
  }

  /**
   * {@code (1+α)·l − α·l_cd}, with {@code −∞} where {@code l < ln β + max l}. In float from double
   * arithmetic; with {@code α = 0} the kept entries equal {@code l} exactly.
   */
  public static float[] contrast(float[] l, float[] lcd, double alpha, double beta) {
    if (l.length != lcd.length) {
      throw new IllegalArgumentException(
          "logits have " + l.length + " values, branch logits " + lcd.length);
    }
    float max = Float.NEGATIVE_INFINITY;
    for (float x : l) {
      max = Math.max(max, x);
    }
    double cut = Math.log(beta) + max;
    float[] s = new float[l.length];
    for (int i = 0; i < l.length; i++) {
      s[i] = l[i] < cut ? Float.NEGATIVE_INFINITY : (float) ((1 + alpha) * l[i] - alpha * lcd[i]);
    }
    return s;
  }

  /**
   * A draw from {@code softmax(s)} (entries of {@code −∞} have probability 0): inverse CDF of one
   * uniform.
   */
  static int sample(float[] s, SplittableRandom rng) {
    double max = Double.NEGATIVE_INFINITY;
    for (float x : s) {
      max = Math.max(max, x);
    }
    double total = 0;
    for (float x : s) {
      total += Math.exp(x - max);
    }
    double u = rng.nextDouble() * total;
    int last = -1;
    double acc = 0;
    for (int i = 0; i < s.length; i++) {
      if (s[i] == Float.NEGATIVE_INFINITY) {
        continue;
      }
      acc += Math.exp(s[i] - max);
      last = i;
      if (u < acc) {
        return i;
      }
    }
    return last;
  }

  private RecordState requireRecord() {
    if (record == null) {
      throw new IllegalStateException(
          DamroConfig.NAME + " keeps per-record state; call forRecord() first");
    }
    return record;
  }

  @Override
  public String toString() {
    return "Damro" + config.toJson();
  }
}
