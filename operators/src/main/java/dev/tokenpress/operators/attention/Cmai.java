package dev.tokenpress.operators.attention;

import dev.tokenpress.operators.api.AttentionContext;
import dev.tokenpress.operators.api.CmaiConfig;
import dev.tokenpress.operators.api.DecodeContext;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorStat;
import dev.tokenpress.operators.api.PrefillContext;
import dev.tokenpress.operators.api.PrefillLayerContext;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * CMAI, cross-modal attention inhibition: the LM-side half of "Enhancing Instruction-Following
 * Capability of Visual-Language Models by Reducing Image Redundancy" (VMTC/CMAI, arXiv 2411.15453).
 * <b>A reconstruction</b>: no code exists and only the abstract could be read, which says
 * text-to-image attention is "aggregated by text-to-text attention" into a text-to-image focus
 * score and attention is inhibited for text–image pairs with low scores during generation. Every
 * unknown is an option of {@link CmaiConfig}; no result of the paper is known.
 *
 * <p><b>Focus</b> (at each layer of {@code focus_layers}, head-mean attention without operator
 * bias): {@code F[i,v] = Σ_t A_tt[i,t] · A_ti[t,v]} over the text tokens {@code t} that can see the
 * image (the rows after it, generated tokens included, {@code t = i} too); text before the image
 * has {@code A_ti = 0}. Averaged over the focus layers. In prefill from {@link
 * Signal.QueryRowAttention} of the text rows after the image at {@link Hook#PREFILL_AFTER}; in
 * decode from the step's own probabilities at the focus layers ({@link
 * TokenOperator#rewriteAttention}, read only), so each generated token gets its own row and its
 * {@code A_ti} row joins the sum of the tokens after it.
 *
 * <p><b>Two passes.</b> When an inhibited layer comes at or before a focus layer, the focus scores
 * come from a probe prefill ({@link TokenOperator#probeDepth}: the same rows, no bias) and decode
 * steps use the previous token's focus row at those layers.
 *
 * <p><b>Inhibition</b> (at each layer of {@code layers}): an additive {@code bias} on the pairs
 * {@code (i, v)} whose focus is low ({@link #inhibited}), for the text rows after the image in
 * prefill ({@link Hook#PREFILL}) and each decode step ({@link Hook#DECODE}). With threshold 0
 * nothing is inhibited and the output equals the empty plan's.
 */
public final class Cmai implements TokenOperator {

  private static final Set<Hook> HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.PREFILL, Hook.PREFILL_AFTER, Hook.DECODE));

  private final CmaiConfig config;
  private final boolean perRecord;
  // per-record state
  private int[] focus;
  private boolean[] isFocus;
  private boolean[] isInhibited;
  private boolean twoPass;
  private float[] lastF; // the latest complete focus row (prefill: its last text row)
  private int lastFStep = -2; // decode step of lastF; -1 for prefill
  private int[] slotOf; // original token index -> image slot, -1 for text
  private int slots;
  private List<Map<Integer, float[]>> ati; // per focus layer: text token index -> A_ti over slots
  private final Map<Integer, float[]> fSum = new HashMap<>();
  private int fCount;
  private float[] stepF;
  private int stepFLayers;
  private int stepOfF = -1;
  private long[] prefillPairs;
  private long[] decodePairs;

  /** An operator for {@code config}. */
  public Cmai(CmaiConfig config) {
    this(config, false);
  }

  private Cmai(CmaiConfig config, boolean perRecord) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
    this.perRecord = perRecord;
  }

  @Override
  public CmaiConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    return HOOKS;
  }

  @Override
  public boolean rewritesAttention() {
    return config.decode();
  }

  @Override
  public TokenOperator forRecord() {
    return new Cmai(config, true);
  }

  @Override
  public void validate(ModelShape shape) {
    int[] f = config.focusLayers().resolve(shape.lmLayers(), CmaiConfig.NAME + ".focus_layers");
    config.layers().resolve(shape.lmLayers(), CmaiConfig.NAME + ".layers");
  }

  /**
   * Whether some inhibited layer comes at or before the last focus layer (a probe prefill is
   * needed).
   */
  private boolean twoPass(ModelShape shape) {
    int[] f = config.focusLayers().resolve(shape.lmLayers(), CmaiConfig.NAME + ".focus_layers");
    int[] l = config.layers().resolve(shape.lmLayers(), CmaiConfig.NAME + ".layers");
    return l[0] <= f[f.length - 1];
  }

  /** The last focus layer when inhibition starts at or before it, else -1. */
  @Override
  public int probeDepth(ModelShape shape) {
    if (!twoPass(shape)) {
      return -1;
    }
    int[] f = config.focusLayers().resolve(shape.lmLayers(), CmaiConfig.NAME + ".focus_layers");
    return f[f.length - 1];
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    List<Signal> s = new ArrayList<>();
    for (int l :
        config.focusLayers().resolve(shape.lmLayers(), CmaiConfig.NAME + ".focus_layers")) {
      s.add(new Signal.QueryRowAttention(l, QueryRows.TEXT_AFTER_VISUAL));
    }
    return s;
  }

  private void start(ModelShape shape, SequenceLayout layout) {
    if (!perRecord) {
      throw new IllegalStateException("cmai: call forRecord() before the hooks");
    }
    if (focus != null) {
      return;
    }
    int n = shape.lmLayers();
    focus = config.focusLayers().resolve(n, CmaiConfig.NAME + ".focus_layers");
    twoPass = twoPass(shape);
    isFocus = new boolean[n];
    for (int l : focus) {
      isFocus[l] = true;
    }
    isInhibited = new boolean[n];
    for (int l : config.layers().resolve(n, CmaiConfig.NAME + ".layers")) {
      isInhibited[l] = true;
    }
    int max = 0;
    for (int r = 0; r < layout.length(); r++) {
      max = Math.max(max, layout.originalIndex(r));
    }
    slotOf = new int[max + 1];
    java.util.Arrays.fill(slotOf, -1);
    for (int r = 0; r < layout.length(); r++) {
      if (layout.isVisual(r)) {
        slotOf[layout.originalIndex(r)] = slots++;
      }
    }
    ati = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ati.add(new HashMap<>());
    }
    prefillPairs = new long[n];
    decodePairs = new long[n];
  }

  private int slot(int tokenIndex) {
    return tokenIndex < slotOf.length ? slotOf[tokenIndex] : -1;
  }

  /**
   * Focus rows of the text rows after the image, from this focus layer's attention (single pass).
   */
  @Override
  public TokenSelection afterPrefillLayer(PrefillLayerContext context) {
    TokenSelection all = TokenSelection.keepAll(context.layout().length());
    if (focus != null && !twoPass && isFocus[context.layer()]) {
      focusRows(context);
    }
    return all;
  }

  /** The same from the probe prefill, when inhibition starts at or before a focus layer. */
  @Override
  public void probeLayer(PrefillLayerContext context) {
    start(context.shape(), context.layout());
    if (isFocus[context.layer()]) {
      focusRows(context);
    }
  }

  private void focusRows(PrefillLayerContext context) {
    SequenceLayout layout = context.layout();
    int l = context.layer();
    FloatTensor a =
        context.signals().get(new Signal.QueryRowAttention(l, QueryRows.TEXT_AFTER_VISUAL));
    int[] q = QueryRows.TEXT_AFTER_VISUAL.resolve(layout);
    int keys = layout.length();
    float[] att = a.toArray();
    // A_ti rows of the text rows after the image
    Map<Integer, float[]> rowsTi = ati.get(l);
    for (int i = 0; i < q.length; i++) {
      float[] ti = new float[slots];
      for (int j = 0; j < keys; j++) {
        int s = slot(layout.originalIndex(j));
        if (s >= 0) {
          ti[s] = att[i * keys + j];
        }
      }
      rowsTi.put(layout.originalIndex(q[i]), ti);
    }
    // A_tt over those rows, then F = A_tt · A_ti
    float[] tt = new float[q.length * q.length];
    float[] ti = new float[q.length * slots];
    for (int i = 0; i < q.length; i++) {
      for (int t = 0; t < q.length; t++) {
        tt[i * q.length + t] = att[i * keys + q[t]];
      }
      System.arraycopy(rowsTi.get(layout.originalIndex(q[i])), 0, ti, i * slots, slots);
    }
    float[] f = focus(tt, ti, q.length, q.length, slots);
    for (int i = 0; i < q.length; i++) {
      float[] sum = fSum.computeIfAbsent(layout.originalIndex(q[i]), k -> new float[slots]);
      for (int s = 0; s < slots; s++) {
        sum[s] += f[i * slots + s];
      }
    }
    fCount++;
    if (q.length > 0) {
      lastF = fSum.get(layout.originalIndex(q[q.length - 1]));
      lastFStep = -1;
    }
  }

  @Override
  public FloatTensor prefillBias(PrefillContext context) {
    SequenceLayout layout = context.layout();
    start(context.shape(), layout);
    int l = context.layer();
    if (!isInhibited[l] || fSum.isEmpty()) {
      return null;
    }
    int n = layout.length();
    if (context.cacheLength() != n) {
      throw new IllegalStateException(
          "cmai needs a prefill over an empty cache; layer "
              + l
              + " has "
              + (context.cacheLength() - n)
              + " earlier entries");
    }
    int[] visRows = layout.visualRows();
    float[] bias = null;
    float[] row = new float[visRows.length];
    long pairs = 0;
    for (int r : QueryRows.TEXT_AFTER_VISUAL.resolve(layout)) {
      float[] sum = fSum.get(layout.originalIndex(r));
      if (sum == null) {
        continue;
      }
      for (int k = 0; k < visRows.length; k++) {
        row[k] = sum[slot(layout.originalIndex(visRows[k]))] / fCount;
      }
      boolean[] off = inhibited(row, config.rule(), config.threshold());
      for (int k = 0; k < visRows.length; k++) {
        if (off[k]) {
          if (bias == null) {
            bias = new float[n * n];
          }
          bias[r * n + visRows[k]] = (float) config.bias();
          pairs++;
        }
      }
    }
    prefillPairs[l] += pairs;
    return bias == null ? null : FloatTensor.wrap(bias, n, n);
  }

  /** Reads the decode step's probabilities at the focus layers (changes nothing). */
  @Override
  public boolean rewriteAttention(AttentionContext context) {
    int l = context.layer();
    if (context.step() < 0 || focus == null || !isFocus[l]) {
      return false;
    }
    int[] keys = context.keyTokenIndices();
    int len = keys.length;
    float[] mean =
        dev.tokenpress.operators.tensor.Kernels.meanOverHeads(
            context.probs(), context.heads(), len);
    int self = keys[len - 1];
    float[] own = new float[slots];
    for (int j = 0; j < len; j++) {
      int s = slot(keys[j]);
      if (s >= 0) {
        own[s] = mean[j];
      }
    }
    Map<Integer, float[]> rowsTi = ati.get(l);
    rowsTi.put(self, own);
    if (stepOfF != context.step()) {
      stepOfF = context.step();
      stepF = new float[slots];
      stepFLayers = 0;
    }
    for (int j = 0; j < len; j++) {
      float[] ti = rowsTi.get(keys[j]);
      if (ti == null || mean[j] == 0f) {
        continue;
      }
      double a = mean[j];
      for (int s = 0; s < slots; s++) {
        stepF[s] += (float) (a * ti[s]);
      }
    }
    stepFLayers++;
    if (stepFLayers == focus.length) {
      lastF = stepF;
      lastFStep = context.step();
    }
    return false;
  }

  @Override
  public float[] decodeBias(DecodeContext context) {
    int l = context.layer();
    if (!config.decode() || focus == null || !isInhibited[l] || lastF == null) {
      return null;
    }
    // the step's own focus row once its focus layers ran; before that (an inhibited layer at or
    // before a focus layer) the previous one: the last prompt token's, then the previous step's
    float[] f = lastF;
    float count = lastFStep == -1 ? fCount : focus.length;
    if (lastFStep != context.step() && !twoPass) {
      return null;
    }
    int[] keys = context.cache().tokenIndices();
    int vis = 0;
    for (int t : keys) {
      vis += slot(t) >= 0 ? 1 : 0;
    }
    float[] row = new float[vis];
    int[] at = new int[vis];
    int k = 0;
    for (int j = 0; j < keys.length; j++) {
      int s = slot(keys[j]);
      if (s >= 0) {
        row[k] = f[s] / count;
        at[k++] = j;
      }
    }
    boolean[] off = inhibited(row, config.rule(), config.threshold());
    float[] bias = null;
    long pairs = 0;
    for (int i = 0; i < vis; i++) {
      if (off[i]) {
        if (bias == null) {
          bias = new float[keys.length];
        }
        bias[at[i]] = (float) config.bias();
        pairs++;
      }
    }
    decodePairs[l] += pairs;
    return bias;
  }

  /**
   * The focus score {@code F = A_tt · A_ti} in double.
   *
   * @param tt {@code [m, t]}: query rows' attention to the text rows
   * @param ti {@code [t, v]}: the text rows' attention to the image tokens
   * @return {@code [m, v]}
   */
  public static float[] focus(float[] tt, float[] ti, int m, int t, int v) {
    if (tt.length != m * t || ti.length != t * v) {
      throw new IllegalArgumentException(
          "focus of ["
              + m
              + "x"
              + t
              + "]·["
              + t
              + "x"
              + v
              + "] got arrays of "
              + tt.length
              + " and "
              + ti.length);
    }
    float[] out = new float[m * v];
    double[] acc = new double[v];
    for (int i = 0; i < m; i++) {
      java.util.Arrays.fill(acc, 0);
      for (int k = 0; k < t; k++) {
        double a = tt[i * t + k];
        if (a == 0) {
          continue;
        }
        for (int j = 0; j < v; j++) {
          acc[j] += a * ti[k * v + j];
        }
      }
      for (int j = 0; j < v; j++) {
        out[i * v + j] = (float) acc[j];
      }
    }
    return out;
  }

  /**
   * Which image tokens of one focus row are inhibited: {@code RELATIVE}: {@code F < threshold·max
   * F}; {@code QUANTILE}: the {@code floor(threshold·n)} lowest (on equal scores the later token
   * goes first). Threshold 0 inhibits nothing.
   */
  public static boolean[] inhibited(float[] f, CmaiConfig.Rule rule, double threshold) {
    int n = f.length;
    boolean[] off = new boolean[n];
    if (n == 0 || threshold == 0) {
      return off;
    }
    if (rule == CmaiConfig.Rule.RELATIVE) {
      float max = Float.NEGATIVE_INFINITY;
      for (float x : f) {
        max = Math.max(max, x);
      }
      double cut = threshold * max;
      for (int i = 0; i < n; i++) {
        off[i] = f[i] < cut;
      }
      return off;
    }
    int k = (int) Math.floor(threshold * n);
    if (k == 0) {
      return off;
    }
    // the top n-k by (higher score, lower index) stay; the rest are inhibited
    int[] keep = dev.tokenpress.operators.tensor.Kernels.topK(f, n - k);
    java.util.Arrays.fill(off, true);
    for (int i : keep) {
      off[i] = false;
    }
    return off;
  }

  @Override
  public List<OperatorStat> stats() {
    if (focus == null) {
      return List.of();
    }
    List<OperatorStat> out = new ArrayList<>();
    for (int l = 0; l < isInhibited.length; l++) {
      if (isInhibited[l]) {
        out.add(new OperatorStat(CmaiConfig.NAME, l, "prefill_inhibited_pairs", prefillPairs[l]));
        out.add(new OperatorStat(CmaiConfig.NAME, l, "decode_inhibited_pairs", decodePairs[l]));
      }
    }
    return out;
  }

  @Override
  public String toString() {
    return "Cmai" + config.toJson();
  }
}
