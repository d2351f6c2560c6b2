package dev.tokenpress.operators.attention;

import dev.tokenpress.operators.api.AttentionContext;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorStat;
import dev.tokenpress.operators.api.PrefillContext;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.VarConfig;
import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * VAR, visual attention redistribution: Kang et al., "See What You Are Told: Visual Attention Sink
 * in Large Multimodal Models" (ICLR 2025, arXiv 2503.03321); steps as in {@code seilk/VisAttnSink}
 * ({@code src/logic/logic.py}: {@code DimProspector}, {@code HeadFork}, {@code VARProcessor}).
 *
 * <p><b>Sinks</b> ({@link Hook#PREFILL} of each layer {@code ℓ} in {@code layers}, from the layer's
 * input hidden states, signal {@link Signal.LmHiddenStates}): position {@code x} is a sink when
 * {@code φ(x) = max_{d∈D_sink} |h[x,d]| / sqrt(mean_d h[x,d]² + 1e-6) > τ} ({@link #sinkScores}; no
 * RMSNorm weight). All prefill positions are tested (text sinks such as BOS count); generated
 * tokens never are. {@code D_sink} comes from the config or the bundle ({@link
 * ModelShape#lmSinkDims()}).
 *
 * <p><b>Rows.</b> If no visual token is a sink at {@code ℓ}, the layer is left alone. Otherwise the
 * text rows after the image in prefill and every decode step's row, per head: the pair is selected
 * when its visual mass {@code Σ_{vis} A ≥ min_visual_mass} and its non-sink share {@code
 * Σ_{vis∖sinks} A / Σ_{vis} A ≥ ρ}; a selected row keeps {@code sink_keep} of each sink's
 * probability and gives the rest, {@code Ω = (1 - sink_keep) Σ_{sinks} A}, to the non-sink visual
 * tokens in proportion to their probabilities ({@link #redistribute}). Rows still sum to 1.
 *
 * <p><b>Exact.</b> The redistribution runs on the post-softmax probabilities ({@link
 * TokenOperator#rewriteAttention}); the runtime computes the changed rows' output from them ({@code
 * A'·V}). The reference's {@code +1e-6} per element in the visual-mass denominator is left out.
 * Prefill changes the instruction rows, so the KV cache of later layers differs from the empty
 * plan's (as in the reference).
 *
 * <p>One instance per record ({@link #forRecord()}) holds the sinks of each layer for decoding and
 * the counts reported by {@link #stats()}.
 */
public final class Var implements TokenOperator {

  private static final Set<Hook> HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.PREFILL, Hook.DECODE));

  private final VarConfig config;
  private final boolean perRecord;
  // per-record state
  private int[] layers;
  private int[] dims;
  private BitSet visual;
  private BitSet[] sinks;
  private int[] sinkCount;
  private int[] visualSinkCount;
  private long[] prefillPairs;
  private long[] decodePairs;

  /** An operator for {@code config}. */
  public Var(VarConfig config) {
    this(config, false);
  }

  private Var(VarConfig config, boolean perRecord) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
    this.perRecord = perRecord;
  }

  @Override
  public VarConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    return HOOKS;
  }

  @Override
  public boolean rewritesAttention() {
    return true;
  }

  @Override
  public TokenOperator forRecord() {
    return new Var(config, true);
  }

  @Override
  public void validate(ModelShape shape) {
    config.layers().resolve(shape.lmLayers(), VarConfig.NAME + ".layers");
    sinkDims(shape);
  }

  private int[] sinkDims(ModelShape shape) {
    List<Integer> d = config.sinkDims() != null ? config.sinkDims() : shape.lmSinkDims();
    if (d == null) {
      throw new IllegalArgumentException(
          VarConfig.NAME
              + ".sink_dims is \"bundle\", but this bundle's manifest has "
              + "no sink dimensions: run `tokenpress var sinks --bundle BUNDLE --write` or give var.sink_dims");
    }
    int[] out = new int[d.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = d.get(i);
      if (out[i] >= shape.lmHiddenSize()) {
        throw new IllegalArgumentException(
            VarConfig.NAME
                + ".sink_dims must lie in [0, lmHiddenSize-1] = [0, "
                + (shape.lmHiddenSize() - 1)
                + "], got "
                + d);
      }
    }
    return out;
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    List<Signal> s = new ArrayList<>();
    for (int l : config.layers().resolve(shape.lmLayers(), VarConfig.NAME + ".layers")) {
      s.add(new Signal.LmHiddenStates(l));
    }
    return s;
  }

  private void start(ModelShape shape, SequenceLayout layout) {
    if (!perRecord) {
      throw new IllegalStateException("var: call forRecord() before the hooks");
    }
    if (sinks != null) {
      return;
    }
    int n = shape.lmLayers();
    layers = config.layers().resolve(n, VarConfig.NAME + ".layers");
    dims = sinkDims(shape);
    visual = new BitSet();
    for (int r = 0; r < layout.length(); r++) {
      if (layout.isVisual(r)) {
        visual.set(layout.originalIndex(r));
      }
    }
    sinks = new BitSet[n];
    sinkCount = new int[n];
    visualSinkCount = new int[n];
    prefillPairs = new long[n];
    decodePairs = new long[n];
  }

  private boolean acts(int layer) {
    for (int l : layers) {
      if (l == layer) {
        return true;
      }
    }
    return false;
  }

  /** Detects the sinks of the layer; no bias. */
  @Override
  public FloatTensor prefillBias(PrefillContext context) {
    SequenceLayout layout = context.layout();
    start(context.shape(), layout);
    int l = context.layer();
    if (!acts(l)) {
      return null;
    }
    FloatTensor h = context.signals().get(new Signal.LmHiddenStates(l));
    int rows = h.dim(0);
    float[] phi = sinkScores(h.toArray(), rows, h.dim(1), dims);
    BitSet s = new BitSet();
    int vis = 0;
    for (int r = 0; r < rows; r++) {
      if (phi[r] > config.tau()) {
        int t = layout.originalIndex(r);
        s.set(t);
        vis += visual.get(t) ? 1 : 0;
      }
    }
    sinks[l] = s;
    sinkCount[l] = s.cardinality();
    visualSinkCount[l] = vis;
    return null;
  }

  @Override
  public int[] attentionRows(PrefillContext context) {
    int l = context.layer();
    if (sinks == null || sinks[l] == null || visualSinkCount[l] == 0) {
      return null;
    }
    int[] rows = QueryRows.TEXT_AFTER_VISUAL.resolve(context.layout());
    return rows.length == 0 ? null : rows;
  }

  @Override
  public float[] decodeBias(dev.tokenpress.operators.api.DecodeContext context) {
    return null;
  }

  @Override
  public boolean rewriteAttention(AttentionContext context) {
    int l = context.layer();
    if (sinks == null || sinks[l] == null || visualSinkCount[l] == 0) {
      return false;
    }
    int[] keys = context.keyTokenIndices();
    int len = keys.length;
    boolean[] isSink = new boolean[len];
    boolean[] isVisual = new boolean[len];
    BitSet s = sinks[l];
    for (int j = 0; j < len; j++) {
      isSink[j] = s.get(keys[j]);
      isVisual[j] = visual.get(keys[j]);
    }
    float[] p = context.probs();
    long pairs = 0;
    for (int r = 0; r < context.rows(); r++) {
      for (int h = 0; h < context.heads(); h++) {
        if (redistribute(
            p,
            context.offset(r, h),
            len,
            isSink,
            isVisual,
            config.rho(),
            config.minVisualMass(),
            config.sinkKeep())) {
          pairs++;
        }
      }
    }
    if (context.step() < 0) {
      prefillPairs[l] += pairs;
    } else {
      decodePairs[l] += pairs;
    }
    return pairs > 0;
  }

  /**
   * VAR's sink score of each row: {@code max_{d∈dims} |h[x,d]| / sqrt(mean_d h[x,d]² + 1e-6)}, in
   * double.
   *
   * @param hidden {@code [rows, dim]} row-major
   * @return {@code [rows]}
   */
  public static float[] sinkScores(float[] hidden, int rows, int dim, int[] dims) {
    if (hidden.length != rows * dim) {
      throw new IllegalArgumentException(
          "hidden has " + hidden.length + " values, expected " + rows + "x" + dim);
    }
    float[] out = new float[rows];
    for (int r = 0; r < rows; r++) {
      int o = r * dim;
      double ss = 0;
      for (int d = 0; d < dim; d++) {
        double v = hidden[o + d];
        ss += v * v;
      }
      double rms = Math.sqrt(ss / dim + 1e-6);
      double max = 0;
      for (int d : dims) {
        max = Math.max(max, Math.abs(hidden[o + d]));
      }
      out[r] = (float) (max / rms);
    }
    return out;
  }

  /**
   * Selects and redistributes one (head, query) row {@code p[off .. off+len)} in place.
   *
   * @param isSink whether each key is a sink at this layer (text or visual)
   * @param isVisual whether each key is a visual token
   * @return whether the pair was selected (visual mass {@code >= minMass} and non-sink visual share
   *     {@code >= rho}); an unselected row is left unchanged
   */
  public static boolean redistribute(
      float[] p,
      int off,
      int len,
      boolean[] isSink,
      boolean[] isVisual,
      double rho,
      double minMass,
      double keep) {
    double vis = 0;
    double nonSink = 0;
    double sink = 0;
    for (int j = 0; j < len; j++) {
      double a = p[off + j];
      if (isVisual[j]) {
        vis += a;
        if (!isSink[j]) {
          nonSink += a;
        }
      }
      if (isSink[j]) {
        sink += a;
      }
    }
    if (!(vis > 0) || vis < minMass || nonSink < rho * vis || !(nonSink > 0)) {
      return false;
    }
    double omega = (1 - keep) * sink;
    double gain = omega / nonSink;
    for (int j = 0; j < len; j++) {
      if (isSink[j]) {
        p[off + j] = (float) (keep * p[off + j]);
      } else if (isVisual[j]) {
        p[off + j] = (float) (p[off + j] * (1 + gain));
      }
    }
    return true;
  }

  @Override
  public List<OperatorStat> stats() {
    if (sinks == null) {
      return List.of();
    }
    List<OperatorStat> out = new ArrayList<>();
    long[] d = new long[dims.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = dims[i];
    }
    out.add(new OperatorStat(VarConfig.NAME, -1, "sink_dims", d));
    for (int l : layers) {
      out.add(new OperatorStat(VarConfig.NAME, l, "sinks", sinkCount[l]));
      out.add(new OperatorStat(VarConfig.NAME, l, "visual_sinks", visualSinkCount[l]));
      out.add(new OperatorStat(VarConfig.NAME, l, "prefill_pairs", prefillPairs[l]));
      out.add(new OperatorStat(VarConfig.NAME, l, "decode_pairs", decodePairs[l]));
    }
    return out;
  }

  /**
   * The sinks found at {@code layer} in this record (token indices), or null before prefill reached
   * it.
   */
  public BitSet sinksAt(int layer) {
    return sinks == null || sinks[layer] == null ? null : (BitSet) sinks[layer].clone();
  }

  @Override
  public String toString() {
    return "Var" + config.toJson();
  }
}
