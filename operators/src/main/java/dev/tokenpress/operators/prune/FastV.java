package dev.tokenpress.operators.prune;

import dev.tokenpress.operators.api.FastVConfig;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.PrefillLayerContext;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * FastV: Chen et al., "An Image is Worth 1/2 Tokens After Layer 2: Plug-and-Play Inference
 * Acceleration for Large Vision-Language Models" (ECCV 2024, arXiv 2403.06764); scoring as in the
 * {@code fast_v_*} code paths of the reference forks ({@code fast_v_agg_layer}, {@code
 * fast_v_attention_rank}, {@code fast_v_inplace}).
 *
 * <p><b>When.</b> "At the start of decoder layer {@code K}" is expressed as the {@link
 * Hook#PREFILL_AFTER} callback of layer {@code K-1}: the rows it keeps are the rows layer {@code K}
 * and every later layer run on. Layers {@code < K} have seen every token, so their KV caches stay
 * full; layers {@code >= K} hold only the kept tokens. At every other layer this operator keeps
 * everything.
 *
 * <p><b>Score.</b> The attention of layer {@code K-1}, averaged over heads, in the row of the
 * <em>last prompt token</em> (the last row of the prefill sequence), restricted to the image rows:
 * signal {@code QueryRowAttention(K-1, LAST_PROMPT_TOKEN)}. The paper describes this as the average
 * attention each image token receives; the code reads the last row, and so does this class.
 *
 * <p><b>Selection.</b> Of the {@code N} image rows present, keep the top {@code budget.resolve(N)}:
 * with the default {@code drop_ratio R = 0.5}, {@code roundHalfUp((1-R)·N)} (288 of 576); ties go
 * to the earlier row. All text rows (system prefix, prompt) are kept; kept rows stay in sequence
 * order.
 *
 * <p><b>Positions.</b> Inplace mode keeps the <em>original</em> position ids of the kept rows
 * ({@code position_ids = keep_indexs} in the reference), with {@link PositionMode#KEEP_ORIGINAL};
 * the next decode position is unchanged. Mask mode is not implemented (rejected by {@link
 * FastVConfig}).
 */
public final class FastV implements TokenOperator {

  private static final Set<Hook> HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.PREFILL_AFTER));

  private final FastVConfig config;
  private final Signal.QueryRowAttention signal;

  /** An operator for {@code config}. */
  public FastV(FastVConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
    this.signal = new Signal.QueryRowAttention(config.layer() - 1, QueryRows.LAST_PROMPT_TOKEN);
  }

  @Override
  public FastVConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    return HOOKS;
  }

  @Override
  public void validate(ModelShape shape) {
    int max = shape.lmLayers() - 1;
    if (config.layer() > max) {
      throw new IllegalArgumentException(
          FastVConfig.NAME
              + ".layer must be in [1, numLayers-1] = [1, "
              + max
              + "] for this model, got "
              + config.layer());
    }
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    return List.of(signal);
  }

  /** The scoring signal, {@code QueryRowAttention(K-1, LAST_PROMPT_TOKEN)}. */
  public Signal.QueryRowAttention scoringSignal() {
    return signal;
  }

  @Override
  public TokenSelection afterPrefillLayer(PrefillLayerContext context) {
    SequenceLayout layout = context.layout();
    int n = layout.length();
    if (context.layer() != config.layer() - 1) {
      return TokenSelection.keepAll(n);
    }
    int[] visualRows = layout.visualRows();
    int k = config.budget().resolve(visualRows.length);
    if (k >= visualRows.length) {
      return TokenSelection.keepAll(n);
    }
    FloatTensor attn = context.signals().get(signal);
    if (attn.rank() != 2 || attn.dim(0) != 1 || attn.dim(1) != n) {
      throw new IllegalArgumentException(
          "signal "
              + signal
              + " must be [1, "
              + n
              + "] for a "
              + n
              + "-row sequence, got shape "
              + java.util.Arrays.toString(attn.shape()));
    }
    float[] scores = new float[visualRows.length];
    for (int i = 0; i < visualRows.length; i++) {
      scores[i] = attn.get(visualRows[i]);
    }
    int[] top = Kernels.topK(scores, k);
    boolean[] keep = new boolean[n];
    for (int r = 0; r < n; r++) {
      keep[r] = !layout.isVisual(r);
    }
    for (int t : top) {
      keep[visualRows[t]] = true;
    }
    int[] kept = new int[n - visualRows.length + k];
    int j = 0;
    for (int r = 0; r < n; r++) {
      if (keep[r]) {
        kept[j++] = r;
      }
    }
    return TokenSelection.of(n, kept, PositionMode.KEEP_ORIGINAL);
  }

  @Override
  public String toString() {
    return "FastV" + config.toJson();
  }
}
