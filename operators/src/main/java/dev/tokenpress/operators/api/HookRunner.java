package dev.tokenpress.operators.api;

import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The operator protocol of {@link TokenOperator} for one record: the single path by which a runtime
 * calls a plan's operators, at every {@link Hook}, generically. The runtime computes signals on
 * request (through a {@link SignalSource}) and applies the results this class returns (reductions,
 * biases, kept rows, logits); this class builds every context, calls the operators acting at the
 * hook in plan order, feeds each the state the earlier ones left, composes their results, checks
 * them, and records {@link KeptMap}s, ViT token sizes and the provenance of every visual token.
 *
 * <p>Not thread-safe: one instance per record (per generation). Operators must be validated against
 * {@code shape} first ({@link CompressionPlan#bind}).
 */
public final class HookRunner {

  /** Computes the value of a requested signal for the runtime's current state at one hook call. */
  @FunctionalInterface
  public interface SignalSource {
    /**
     * @param signal a signal delivered at the current hook and layer
     * @param layout LM hooks: the current layout (after earlier operators at this hook); null in
     *     the ViT
     * @param rows LM hooks: for each row of {@code layout}, its row index in the runtime's view of
     *     the layer (the rows the layer ran on); null in the ViT
     * @return the value, shaped as the signal's record documents
     */
    FloatTensor compute(Signal signal, SequenceLayout layout, int[] rows);
  }

  private final ModelShape shape;
  private final long seed;
  private final Map<Hook, List<TokenOperator>> byHook = new EnumMap<>(Hook.class);
  private final Map<TokenOperator, List<Signal>> signalsOf = new HashMap<>();
  private final Set<Signal> signals;
  private final boolean proportional;
  private final List<KeptMap> kept = new ArrayList<>();
  private final List<TokenOperator> recordOps = new ArrayList<>();
  private final boolean rewrites;
  private final int probeDepth;
  private final boolean visionShareable;

  private float[] vitSizes;
  private TokenProvenance vitProvenance;
  private final Map<Integer, float[]> clsAttention = new HashMap<>();
  private int vitLayer = -1;
  private Map<Signal, FloatTensor> vitBase;
  private TokenReduction vitLayerTotal;
  private Map<Signal, FloatTensor> vitOutputBase;
  private TokenReduction vitOutputTotal;
  private TokenProvenance visualProvenance;
  private SequenceLayout layout;
  private final List<BranchInput> branches = new ArrayList<>();
  private final Map<TokenOperator, Integer> branchOf = new HashMap<>();

  /**
   * @param operators the plan's operators, validated against {@code shape}, in plan order
   * @param seed the record's seed ({@link Seeds#recordSeed})
   */
  public HookRunner(List<TokenOperator> operators, ModelShape shape, long seed) {
    this.shape = shape;
    this.seed = seed;
    for (Hook h : Hook.values()) {
      byHook.put(h, new ArrayList<>());
    }
    Set<Signal> all = new LinkedHashSet<>();
    boolean prop = false;
    boolean rw = false;
    int probe = -1;
    boolean share = true;
    for (TokenOperator plan : operators) {
      TokenOperator op = plan.forRecord();
      if (op.hooks().contains(Hook.VISION_LAYER) && (op != plan || op.usesRecordSeed())) {
        share = false;
      }
      recordOps.add(op);
      probe = Math.max(probe, op.probeDepth(shape));
      rw |=
          op.rewritesAttention()
              && (op.hooks().contains(Hook.PREFILL) || op.hooks().contains(Hook.DECODE));
      for (Hook h : op.hooks()) {
        byHook.get(h).add(op);
      }
      List<Signal> s = op.signals(shape);
      signalsOf.put(op, s);
      all.addAll(s);
      prop |= op.hooks().contains(Hook.VISION_LAYER) && op.proportionalAttention();
    }
    this.signals = Collections.unmodifiableSet(all);
    this.proportional = prop;
    this.rewrites = rw;
    this.probeDepth = probe;
    this.visionShareable = share;
  }

  /** Whether some operator acts at {@code hook}. */
  public boolean acts(Hook hook) {
    return !byHook.get(hook).isEmpty();
  }

  /**
   * Whether some operator acts at one of the LM hooks (everything after {@link
   * Hook#VISUAL_TOKENS}).
   */
  public boolean actsInLm() {
    return acts(Hook.PREFILL)
        || acts(Hook.PREFILL_AFTER)
        || acts(Hook.KV_FINALIZE)
        || acts(Hook.DECODE)
        || acts(Hook.LOGITS)
        || acts(Hook.KV_APPEND);
  }

  /** The union of the requested signals. */
  public Set<Signal> signals() {
    return signals;
  }

  /** The requested signals computed at {@code layer} for delivery at {@code hook}. */
  public Set<Signal> signals(Hook hook, int layer) {
    Set<Signal> out = new LinkedHashSet<>();
    for (Signal s : signals) {
      if (s.deliveredAt() == hook && s.layer() == layer) {
        out.add(s);
      }
    }
    return out;
  }

  /**
   * Whether the ViT adds {@code log(size)} to its attention logits (ToMe's proportional attention).
   */
  public boolean proportionalAttention() {
    return proportional;
  }

  /** Every selection and reduction applied so far, in order. */
  public List<KeptMap> keptMaps() {
    return List.copyOf(kept);
  }

  // ---------------------------------------------------------------- ViT

  /**
   * Starts the ViT of this record with {@code tokens} rows (CLS first when the model has one), each
   * of size 1.
   */
  public void startVision(int tokens) {
    int cls = shape.vitClsToken() ? 1 : 0;
    if (tokens - cls < 1) {
      throw new IllegalArgumentException(
          "the ViT sequence needs at least one patch token, got " + tokens + " rows");
    }
    vitSizes = new float[tokens];
    Arrays.fill(vitSizes, 1f);
    vitProvenance = TokenProvenance.identity(tokens - cls);
    clsAttention.clear();
    vitLayer = -1;
  }

  /** Sizes of the current ViT rows (copy); all 1 until something merged. */
  public float[] visionSizes() {
    requireVision();
    return vitSizes.clone();
  }

  /**
   * Whether this record's ViT stage can be given to another record of the same image and plan
   * ({@link #adoptVision}): every operator acting at {@link Hook#VISION_LAYER} is the plan's shared
   * instance (keeps no per-record state) and does not use the record seed ({@link
   * TokenOperator#usesRecordSeed}), so the ViT computes the same for every record.
   */
  public boolean visionShareable() {
    return visionShareable;
  }

  /**
   * Takes the ViT stage of {@code done}, a record of the same image and plan whose ViT ran: its
   * sizes, provenance, CLS attention rows and {@link Hook#VISION_LAYER} kept maps, as if this
   * record's ViT had run (it would have computed the same, see {@link #visionShareable}).
   *
   * @throws IllegalArgumentException when either record is not {@link #visionShareable}, the plans'
   *     ViT operators differ, or {@code done}'s ViT did not run
   */
  public void adoptVision(HookRunner done) {
    if (!visionShareable || !done.visionShareable) {
      throw new IllegalArgumentException(
          "a ViT stage is shared only between records whose ViT operators keep "
              + "no per-record state and use no seed");
    }
    List<TokenOperator> mine = byHook.get(Hook.VISION_LAYER);
    List<TokenOperator> theirs = done.byHook.get(Hook.VISION_LAYER);
    boolean same = mine.size() == theirs.size();
    for (int i = 0; same && i < mine.size(); i++) {
      same = mine.get(i) == theirs.get(i);
    }
    if (!same || !signals.equals(done.signals)) {
      throw new IllegalArgumentException("the ViT stage of another plan cannot be adopted");
    }
    if (done.vitSizes == null) {
      throw new IllegalArgumentException("the record to adopt from has not run its ViT");
    }
    vitSizes = done.vitSizes.clone();
    vitProvenance = done.vitProvenance;
    clsAttention.clear();
    for (Map.Entry<Integer, float[]> e : done.clsAttention.entrySet()) {
      clsAttention.put(e.getKey(), e.getValue().clone());
    }
    vitLayer = -1;
    kept.clear();
    for (KeptMap m : done.kept) {
      if (m.hook() == Hook.VISION_LAYER) {
        kept.add(m);
      }
    }
  }

  /** Whether some current ViT row stands for more than one patch. */
  public boolean visionMerged() {
    requireVision();
    return vitProvenance.merged();
  }

  /**
   * The additive attention bias of the current ViT rows under proportional attention, one value per
   * key ({@code log(size)}), or null when {@link #proportionalAttention()} is off or nothing is
   * merged (every bias would be 0).
   */
  public float[] visionKeyBias() {
    requireVision();
    if (!proportional || !vitProvenance.merged()) {
      return null;
    }
    float[] b = new float[vitSizes.length];
    for (int j = 0; j < b.length; j++) {
      b[j] = (float) Math.log(vitSizes[j]);
    }
    return b;
  }

  /**
   * Stores the CLS attention row of ViT layer {@code layer} over the current rows ({@code [T]}, CLS
   * first) as the value of {@link Signal.ClsAttention} for {@link Hook#VISUAL_TOKENS}: {@code
   * [numPatches]}, each row's value at its representative patch.
   */
  public void putClsAttention(int layer, float[] row) {
    requireVision();
    if (row.length != vitSizes.length) {
      throw new IllegalArgumentException(
          "CLS attention row has "
              + row.length
              + " values, the ViT has "
              + vitSizes.length
              + " rows");
    }
    float[] patches = new float[shape.numPatches()];
    int[] rep = vitProvenance.representatives();
    for (int t = 0; t < rep.length; t++) {
      patches[rep[t]] = row[t + 1];
    }
    clsAttention.put(layer, patches);
  }

  /** Whether some operator acts at {@code point} of the ViT layers. */
  public boolean actsAt(VisionPoint point) {
    for (TokenOperator op : byHook.get(Hook.VISION_LAYER)) {
      if (op.visionPoint() == point) {
        return true;
      }
    }
    return false;
  }

  /**
   * {@link Hook#VISION_LAYER} at {@code point} of ViT layer {@code layer}: runs the operators
   * acting there and returns their composed reduction over the current rows, or null when every row
   * is kept. Sizes and provenance advance. Signals are computed once per layer, from the layer's
   * input rows, through {@code source}.
   */
  public TokenReduction visionLayer(int layer, VisionPoint point, SignalSource source) {
    requireVision();
    if (layer != vitLayer) {
      vitLayer = layer;
      vitBase = new HashMap<>();
      vitLayerTotal = null;
      vitOutputBase = new HashMap<>();
      vitOutputTotal = null;
    }
    TokenReduction total = null;
    for (TokenOperator op : byHook.get(Hook.VISION_LAYER)) {
      if (op.visionPoint() != point) {
        continue;
      }
      SignalValues.Builder b = SignalValues.builder();
      for (Signal s : signalsOf.get(op)) {
        if (s.deliveredAt() != Hook.VISION_LAYER || s.layer() != layer) {
          continue;
        }
        if (s instanceof Signal.VitLayerOutput) {
          // computed at this point, from rows the AFTER_ATTENTION reductions already reduced
          if (point != VisionPoint.AFTER_LAYER) {
            throw new IllegalStateException(
                op.name() + " asks for " + s + ", which exists only at " + VisionPoint.AFTER_LAYER);
          }
          FloatTensor v = vitOutputBase.computeIfAbsent(s, x -> source.compute(x, null, null));
          b.put(s, vitOutputTotal == null ? v : reduceSignal(s, v, vitOutputTotal));
          continue;
        }
        FloatTensor v = vitBase.computeIfAbsent(s, x -> source.compute(x, null, null));
        b.put(s, vitLayerTotal == null ? v : reduceSignal(s, v, vitLayerTotal));
      }
      VisionLayerContext ctx =
          new VisionLayerContext(shape, layer, point, vitSizes, vitProvenance, b.build(), seed);
      TokenReduction r = op.reduceVisionLayer(ctx);
      checkVision(op, layer, r);
      if (r.keepsAll()) {
        continue;
      }
      TokenReduction patchPart = patchPart(r);
      kept.add(
          KeptMap.ofReduction(
              op.name(), Hook.VISION_LAYER, layer, patchPart, vitProvenance.representatives()));
      vitSizes = r.sumSizes(vitSizes);
      vitProvenance = vitProvenance.apply(patchPart);
      total = total == null ? r : total.then(r);
      vitLayerTotal = vitLayerTotal == null ? r : vitLayerTotal.then(r);
      if (point == VisionPoint.AFTER_LAYER) {
        vitOutputTotal = vitOutputTotal == null ? r : vitOutputTotal.then(r);
      }
    }
    return total;
  }

  private void checkVision(TokenOperator op, int layer, TokenReduction r) {
    if (r == null || r.inputCount() != vitSizes.length) {
      throw new IllegalStateException(
          op.name()
              + " returned a reduction over "
              + (r == null ? "null" : r.inputCount())
              + " rows at ViT layer "
              + layer
              + ", the ViT has "
              + vitSizes.length);
    }
    if (shape.vitClsToken()
        && (r.outputCount() == 0 || r.representative(0) != 0 || r.groupSize(0) != 1)) {
      throw new IllegalStateException(
          op.name() + " must keep the CLS token (row 0) alone at ViT layer " + layer);
    }
    if (r.outputCount() - (shape.vitClsToken() ? 1 : 0) < 1) {
      throw new IllegalStateException(op.name() + " left no patch token at ViT layer " + layer);
    }
  }

  /** The reduction restricted to the patch rows (without CLS), renumbered from 0. */
  private TokenReduction patchPart(TokenReduction r) {
    int cls = shape.vitClsToken() ? 1 : 0;
    if (cls == 0) {
      return r;
    }
    int n = r.outputCount() - 1;
    int[][] g = new int[n][];
    float[][] w = new float[n][];
    for (int o = 0; o < n; o++) {
      int[] m = r.group(o + 1);
      for (int j = 0; j < m.length; j++) {
        m[j] -= 1;
      }
      g[o] = m;
      w[o] = r.weights(o + 1);
    }
    TokenReduction p = TokenReduction.of(r.inputCount() - 1, g, w, r.positions());
    int[] labels = r.labels();
    return labels == null ? p : p.withLabels(Arrays.copyOfRange(labels, 1, labels.length));
  }

  /**
   * A ViT signal value after {@code r}: rows merged (hidden states, keys) or attention summed per
   * group (per head for {@link Signal.VitClsHeadAttention}).
   */
  private static FloatTensor reduceSignal(Signal s, FloatTensor v, TokenReduction r) {
    if (s instanceof Signal.VitClsAttention) {
      float[] x = v.toArray();
      float[] sum = new float[r.outputCount()];
      for (int o = 0; o < sum.length; o++) {
        double acc = 0;
        for (int i : r.group(o)) {
          acc += x[i];
        }
        sum[o] = (float) acc;
      }
      return FloatTensor.wrap(sum, sum.length);
    }
    if (s instanceof Signal.VitClsHeadAttention) {
      int heads = v.dim(0);
      int t = v.dim(1);
      float[] x = v.toArray();
      int out = r.outputCount();
      float[] sum = new float[heads * out];
      for (int h = 0; h < heads; h++) {
        for (int o = 0; o < out; o++) {
          double acc = 0;
          for (int i : r.group(o)) {
            acc += x[h * t + i];
          }
          sum[h * out + o] = (float) acc;
        }
      }
      return FloatTensor.wrap(sum, heads, out);
    }
    if (s instanceof Signal.VitClsLogits) {
      // the softmax of a group's log-sum-exp is the group's summed attention
      int heads = v.dim(0);
      int t = v.dim(1);
      float[] x = v.toArray();
      int out = r.outputCount();
      float[] lse = new float[heads * out];
      for (int h = 0; h < heads; h++) {
        for (int o = 0; o < out; o++) {
          int[] g = r.group(o);
          double m = Double.NEGATIVE_INFINITY;
          for (int i : g) {
            m = Math.max(m, x[h * t + i]);
          }
          double acc = 0;
          for (int i : g) {
            acc += Math.exp(x[h * t + i] - m);
          }
          lse[h * out + o] = (float) (m + Math.log(acc));
        }
      }
      return FloatTensor.wrap(lse, heads, out);
    }
    int dim = v.dim(1);
    return FloatTensor.wrap(r.apply(v.toArray(), dim), r.outputCount(), dim);
  }

  private void requireVision() {
    if (vitSizes == null) {
      throw new IllegalStateException("startVision was not called for this record");
    }
  }

  // ---------------------------------------------------------------- visual tokens

  /**
   * {@link Hook#VISUAL_TOKENS}: runs the operators acting there on the projected features {@code
   * [n, dim]} and builds the prefill layout {@code prefix + visual tokens + suffix} ({@link
   * #layout()}). The original numbering counts {@code numPatches} visual tokens (numPatches = n
   * when the ViT did not run through this record).
   *
   * @return the features of the visual tokens that enter the LM, {@code [k, dim]}, in layout order
   */
  public float[] visualTokens(float[] features, int n, int dim, int prefix, int suffix) {
    TokenProvenance prov = vitProvenance != null ? vitProvenance : TokenProvenance.identity(n);
    if (prov.count() != n) {
      throw new IllegalArgumentException(
          "the projector returned "
              + n
              + " tokens, the ViT ended with "
              + prov.count()
              + " patch tokens");
    }
    int total = vitProvenance != null ? shape.numPatches() : n;
    int[] reps = prov.representatives();
    float[] inOrder = features;
    if (!Kernels.isStrictlyIncreasing(reps)) {
      // the ViT reordered tokens (e.g. ToMe): the LM gets them in raster order of their
      // representatives
      TokenReduction sort = sortByRepresentative(reps);
      inOrder = sort.apply(features, dim);
      prov = prov.apply(sort);
    }
    features = inOrder;
    List<TokenSelection> selections = new ArrayList<>();
    if (n != total || prov.merged()) {
      selections.add(TokenSelection.of(total, prov.representatives(), PositionMode.REPACK));
    }
    List<TokenOperator> ops = byHook.get(Hook.VISUAL_TOKENS);
    FloatTensor f = FloatTensor.wrap(features, n, dim);
    if (ops.isEmpty() && byHook.get(Hook.BRANCH).isEmpty()) {
      visualProvenance = prov;
      layout = SequenceLayout.prefill(prefix, total, suffix, selections);
      return features;
    }
    SignalValues.Builder b = SignalValues.builder();
    for (Signal s : signals) {
      if (s.deliveredAt() == Hook.VISUAL_TOKENS) {
        float[] row = clsAttention.get(s.layer());
        if (row == null) {
          throw new IllegalStateException("signal " + s + " was not computed by the ViT");
        }
        b.put(s, FloatTensor.wrap(row, row.length));
      }
    }
    VisualTokensContext ctx = new VisualTokensContext(shape, f, prov, b.build(), seed);
    branches(ctx, dim);
    for (TokenOperator op : ops) {
      TokenReduction r = op.reduceVisualTokens(ctx);
      if (r == null || r.inputCount() != ctx.count()) {
        throw new IllegalStateException(
            op.name()
                + " returned a reduction over "
                + (r == null ? "null" : r.inputCount())
                + " visual tokens, the context has "
                + ctx.count());
      }
      if (!r.isOrdered()) {
        throw new IllegalStateException(
            op.name()
                + " reordered visual tokens; at VISUAL_TOKENS merged "
                + "tokens must take their representative's place");
      }
      kept.add(KeptMap.ofReduction(op.name(), Hook.VISUAL_TOKENS, -1, r, ctx.visualIndices()));
      selections.add(r.representatives());
      ctx = ctx.next(r);
    }
    visualProvenance = ctx.provenance();
    layout = SequenceLayout.prefill(prefix, total, suffix, selections);
    return ctx.features().toArray();
  }

  /**
   * {@link Hook#BRANCH}: every operator acting there, on the tokens before the VISUAL_TOKENS
   * operators.
   */
  private void branches(VisualTokensContext ctx, int dim) {
    branches.clear();
    branchOf.clear();
    for (TokenOperator op : byHook.get(Hook.BRANCH)) {
      BranchInput in = op.branch(ctx);
      if (in == null) {
        continue;
      }
      if (in.features().dim(1) != dim) {
        throw new IllegalStateException(
            op.name()
                + " returned branch features of width "
                + in.features().dim(1)
                + ", the visual tokens have "
                + dim);
      }
      kept.add(KeptMap.ofBranch(op.name(), ctx, in));
      branchOf.put(op, branches.size());
      branches.add(in);
    }
  }

  /**
   * The {@link Hook#BRANCH} sequences of this record (after {@link #visualTokens}), in plan order:
   * the runtime runs each through the LM beside the main sequence and passes their logits to {@link
   * #logits(int, float[], int[], float[][])} in this order.
   */
  public List<BranchInput> branches() {
    return List.copyOf(branches);
  }

  private static TokenReduction sortByRepresentative(int[] reps) {
    long[] keyed = new long[reps.length];
    for (int i = 0; i < reps.length; i++) {
      keyed[i] = ((long) reps[i] << 32) | i;
    }
    Arrays.sort(keyed);
    int[][] g = new int[reps.length][];
    for (int i = 0; i < reps.length; i++) {
      g[i] = new int[] {(int) keyed[i]};
    }
    return TokenReduction.of(reps.length, g, null, PositionMode.KEEP_ORIGINAL);
  }

  /** The patches each visual token entering the LM stands for (after {@link #visualTokens}). */
  public TokenProvenance visualProvenance() {
    if (visualProvenance == null) {
      throw new IllegalStateException("visualTokens was not called for this record");
    }
    return visualProvenance;
  }

  // ---------------------------------------------------------------- LM

  /**
   * Sets the prefill layout for an LM-only generation (a VLM record gets it from {@link
   * #visualTokens}).
   */
  public void startPrefill(SequenceLayout initial) {
    if (initial == null) {
      throw new IllegalArgumentException("layout must not be null");
    }
    layout = initial;
  }

  /** Whether a prefill layout is set. */
  public boolean hasLayout() {
    return layout != null;
  }

  /** The current LM layout (after the drops applied so far). */
  public SequenceLayout layout() {
    if (layout == null) {
      throw new IllegalStateException("no prefill layout yet: call visualTokens or startPrefill");
    }
    return layout;
  }

  /**
   * {@link Hook#PREFILL} of LM layer {@code layer}: the sum of the operators' attention biases,
   * {@code [rows, cacheLength]} row-major, or null when none returned one.
   */
  public float[] prefillBias(int layer, int cacheLength, SignalSource source) {
    List<TokenOperator> ops = byHook.get(Hook.PREFILL);
    if (ops.isEmpty()) {
      return null;
    }
    SequenceLayout l = layout();
    int[] rows = identity(l.length());
    Map<Signal, FloatTensor> cache = new HashMap<>();
    float[] sum = null;
    for (TokenOperator op : ops) {
      SignalValues sv = values(op, Hook.PREFILL, layer, l, rows, source, cache);
      FloatTensor b = op.prefillBias(new PrefillContext(shape, layer, l, cacheLength, sv, seed));
      if (b == null) {
        continue;
      }
      if (b.rank() != 2 || b.dim(0) != l.length() || b.dim(1) != cacheLength) {
        throw new IllegalStateException(
            op.name()
                + " returned a prefill bias of shape "
                + Arrays.toString(b.shape())
                + " at layer "
                + layer
                + ", expected ["
                + l.length()
                + ", "
                + cacheLength
                + "]");
      }
      if (sum == null) {
        sum = b.toArray();
      } else {
        for (int i = 0; i < sum.length; i++) {
          sum[i] += b.get(i);
        }
      }
    }
    return sum;
  }

  /**
   * {@link Hook#PREFILL} of LM layer {@code layer}, after {@link #prefillBias}: the intersection of
   * the operators' sparse attention sets over the layout's rows, or null for dense attention.
   */
  public SparseAttention prefillSparse(int layer, int cacheLength, SignalSource source) {
    List<TokenOperator> ops = byHook.get(Hook.PREFILL);
    if (ops.isEmpty()) {
      return null;
    }
    SequenceLayout l = layout();
    int[] rows = identity(l.length());
    Map<Signal, FloatTensor> cache = new HashMap<>();
    SparseAttention out = null;
    for (TokenOperator op : ops) {
      SignalValues sv = values(op, Hook.PREFILL, layer, l, rows, source, cache);
      SparseAttention s =
          op.prefillSparse(new PrefillContext(shape, layer, l, cacheLength, sv, seed));
      if (s == null) {
        continue;
      }
      if (s.inputCount() != l.length()) {
        throw new IllegalStateException(
            op.name()
                + " returned a sparse attention set over "
                + s.inputCount()
                + " rows at layer "
                + layer
                + ", the layout has "
                + l.length());
      }
      out = out == null ? s : out.intersect(s);
    }
    return out == null || out.dense() ? null : out;
  }

  /**
   * {@link Hook#PREFILL_AFTER} of LM layer {@code layer}: the rows to keep for the next layers,
   * ascending indices into the rows the layer ran on, or null to keep all. The layout advances.
   */
  public int[] afterPrefillLayer(int layer, SignalSource source) {
    List<TokenOperator> ops = byHook.get(Hook.PREFILL_AFTER);
    if (ops.isEmpty()) {
      return null;
    }
    SequenceLayout l = layout();
    int[] rows = identity(l.length());
    boolean changed = false;
    Map<Signal, FloatTensor> cache = new HashMap<>();
    for (TokenOperator op : ops) {
      SignalValues sv = values(op, Hook.PREFILL_AFTER, layer, l, rows, source, cache);
      TokenSelection sel = op.afterPrefillLayer(new PrefillLayerContext(shape, layer, l, sv, seed));
      if (sel == null || sel.inputCount() != l.length()) {
        throw new IllegalStateException(
            op.name()
                + " returned a selection over "
                + (sel == null ? "null" : sel.inputCount())
                + " rows at layer "
                + layer
                + ", the layout has "
                + l.length());
      }
      if (sel.keepsAll()) {
        continue;
      }
      kept.add(KeptMap.ofPrefill(op.name(), layer, l, sel));
      l = l.apply(sel);
      int[] k = sel.kept();
      int[] next = new int[k.length];
      for (int i = 0; i < k.length; i++) {
        next[i] = rows[k[i]];
      }
      rows = next;
      cache.clear();
      changed = true;
    }
    layout = l;
    return changed ? rows : null;
  }

  private SignalValues values(
      TokenOperator op,
      Hook hook,
      int layer,
      SequenceLayout l,
      int[] rows,
      SignalSource source,
      Map<Signal, FloatTensor> cache) {
    SignalValues.Builder b = null;
    for (Signal s : signalsOf.get(op)) {
      if (s.deliveredAt() == hook && s.layer() == layer) {
        if (b == null) {
          b = SignalValues.builder();
        }
        b.put(s, cache.computeIfAbsent(s, x -> source.compute(x, l, rows)));
      }
    }
    return b == null ? SignalValues.empty() : b.build();
  }

  /**
   * Whether some operator rewrites attention probabilities after the softmax ({@link
   * TokenOperator#rewritesAttention()}) at {@link Hook#PREFILL} or {@link Hook#DECODE}.
   */
  public boolean rewritesAttention() {
    return rewrites;
  }

  /**
   * {@link Hook#PREFILL} of {@code layer}, after its bias: the union of the layout rows whose
   * probabilities the rewriting operators ask for, ascending, or null for none.
   */
  public int[] prefillAttentionRows(int layer, int cacheLength) {
    if (!rewrites) {
      return null;
    }
    SequenceLayout l = layout();
    boolean[] want = null;
    for (TokenOperator op : byHook.get(Hook.PREFILL)) {
      if (!op.rewritesAttention()) {
        continue;
      }
      int[] rows =
          op.attentionRows(
              new PrefillContext(shape, layer, l, cacheLength, SignalValues.empty(), seed));
      if (rows == null) {
        continue;
      }
      if (want == null) {
        want = new boolean[l.length()];
      }
      for (int r : rows) {
        if (r < 0 || r >= l.length()) {
          throw new IllegalStateException(
              op.name()
                  + " asked for attention row "
                  + r
                  + " at layer "
                  + layer
                  + ", the layout has "
                  + l.length()
                  + " rows");
        }
        want[r] = true;
      }
    }
    if (want == null) {
      return null;
    }
    int n = 0;
    for (boolean w : want) {
      n += w ? 1 : 0;
    }
    int[] out = new int[n];
    int j = 0;
    for (int r = 0; r < want.length; r++) {
      if (want[r]) {
        out[j++] = r;
      }
    }
    return n == 0 ? null : out;
  }

  /**
   * {@link Hook#PREFILL} of {@code layer}, after its attention: the rewriting operators change
   * {@code probs} ({@code [rows.length, heads, keys]}) in place, in plan order.
   *
   * @return whether some operator changed a probability
   */
  public boolean rewritePrefillAttention(
      int layer, int[] rows, int[] keyTokenIndices, int heads, float[] probs) {
    return rewrite(
        Hook.PREFILL,
        new AttentionContext(
            shape, layer, -1, layout(), rows, keyTokenIndices, heads, probs, seed));
  }

  /**
   * {@link Hook#DECODE} of {@code layer} in decode step {@code step}: the rewriting operators
   * change the step's probabilities {@code [heads, keys]} in place, in plan order.
   *
   * @return whether some operator changed a probability
   */
  public boolean rewriteDecodeAttention(
      int layer, int step, int[] keyTokenIndices, int heads, float[] probs) {
    return rewrite(
        Hook.DECODE,
        new AttentionContext(
            shape, layer, step, null, new int[0], keyTokenIndices, heads, probs, seed));
  }

  private boolean rewrite(Hook hook, AttentionContext ctx) {
    boolean changed = false;
    for (TokenOperator op : byHook.get(hook)) {
      if (op.rewritesAttention()) {
        changed |= op.rewriteAttention(ctx);
      }
    }
    return changed;
  }

  /**
   * The deepest LM layer some operator needs a probe prefill through ({@link
   * TokenOperator#probeDepth}), or -1: the runtime then runs layers {@code 0..probeDepth()} once on
   * the prefill rows with the causal mask only, calling {@link #probeLayer} after each, before the
   * real prefill.
   */
  public int probeDepth() {
    return probeDepth;
  }

  /**
   * The probe prefill after LM layer {@code layer}, over the current layout (nothing dropped): the
   * operators whose {@link TokenOperator#probeDepth} reaches the layer get their {@link
   * Hook#PREFILL_AFTER} signals of that layer, computed through {@code source}.
   */
  public void probeLayer(int layer, SignalSource source) {
    SequenceLayout l = layout();
    int[] rows = identity(l.length());
    Map<Signal, FloatTensor> cache = new HashMap<>();
    for (TokenOperator op : recordOps) {
      if (op.probeDepth(shape) >= layer) {
        SignalValues sv = values(op, Hook.PREFILL_AFTER, layer, l, rows, source, cache);
        op.probeLayer(new PrefillLayerContext(shape, layer, l, sv, seed));
      }
    }
  }

  /** What the record's operators report they did ({@link TokenOperator#stats()}), in plan order. */
  public List<OperatorStat> stats() {
    List<OperatorStat> out = new ArrayList<>();
    for (TokenOperator op : recordOps) {
      out.addAll(op.stats());
    }
    return out;
  }

  /** {@link Hook#KV_FINALIZE}: after prefill, before decoding. */
  public void kvFinalize(KvCache cache) {
    for (TokenOperator op : byHook.get(Hook.KV_FINALIZE)) {
      op.finalizeKv(new KvFinalizeContext(shape, layout(), cache, seed));
    }
  }

  /**
   * {@link Hook#DECODE} of {@code layer} in decode step {@code step}: the sum of the operators'
   * biases over {@code cache.length()} entries, or null.
   */
  public float[] decodeBias(int layer, int step, LayerKvCache cache) {
    float[] sum = null;
    for (TokenOperator op : byHook.get(Hook.DECODE)) {
      float[] b = op.decodeBias(new DecodeContext(shape, layer, step, cache, seed));
      if (b == null) {
        continue;
      }
      if (b.length != cache.length()) {
        throw new IllegalStateException(
            op.name()
                + " returned a decode bias of "
                + b.length
                + " values at layer "
                + layer
                + ", the cache has "
                + cache.length()
                + " entries");
      }
      if (sum == null) {
        sum = b.clone();
      } else {
        for (int i = 0; i < sum.length; i++) {
          sum[i] += b[i];
        }
      }
    }
    return sum;
  }

  /**
   * The position of decode step {@code step} at {@code layer}, before the new token is appended to
   * {@code cache}: {@code position} (the sequence's next position) passed through the {@link
   * TokenOperator#decodePosition} of every operator acting at {@link Hook#DECODE}, in plan order.
   * The runtime rotates the layer's query and key with it and stores it with the entry.
   */
  public int decodePosition(int layer, int step, int position, LayerKvCache cache) {
    int p = position;
    for (TokenOperator op : byHook.get(Hook.DECODE)) {
      p = op.decodePosition(new DecodeContext(shape, layer, step, cache, seed), p);
      if (p < 0) {
        throw new IllegalStateException(
            op.name() + " returned decode position " + p + " at layer " + layer);
      }
    }
    return p;
  }

  /**
   * {@link Hook#LOGITS} at generation step {@code step}: each operator in plan order on the
   * previous one's logits. Returns {@code logits} itself when no operator changed them.
   */
  public float[] logits(int step, float[] logits, int[] generated) {
    return logits(step, logits, generated, new float[0][]);
  }

  /**
   * {@link #logits(int, float[], int[])} with the logits of the {@link #branches()} at the same
   * step, in their order: each operator sees its own branch's in {@link
   * LogitsContext#branchLogits()}.
   */
  public float[] logits(int step, float[] logits, int[] generated, float[][] branchLogits) {
    if (branchLogits.length != branches.size()) {
      throw new IllegalArgumentException(
          branchLogits.length + " branch logits for " + branches.size() + " branches");
    }
    float[] cur = logits;
    for (TokenOperator op : byHook.get(Hook.LOGITS)) {
      Integer bi = branchOf.get(op);
      FloatTensor bl =
          bi == null ? null : FloatTensor.copyOf(branchLogits[bi], branchLogits[bi].length);
      float[] next =
          op.logits(
              new LogitsContext(
                  shape, step, FloatTensor.copyOf(cur, cur.length), generated, seed, bl));
      if (next == null) {
        continue;
      }
      if (next.length != cur.length) {
        throw new IllegalStateException(
            op.name()
                + " returned "
                + next.length
                + " logits at step "
                + step
                + ", expected "
                + cur.length);
      }
      cur = next.clone();
    }
    return cur;
  }

  /** {@link Hook#KV_APPEND} after decode step {@code step}. */
  public void kvAppended(int step, KvCache cache) {
    kvAppended(step, cache, null);
  }

  /**
   * {@link Hook#KV_APPEND} after decode step {@code step}, with the step's query of every layer
   * ({@code [layers][lmHeads * headDim]}, RoPE applied; null if not kept).
   */
  public void kvAppended(int step, KvCache cache, float[][] queries) {
    for (TokenOperator op : byHook.get(Hook.KV_APPEND)) {
      op.kvAppended(new KvAppendContext(shape, step, cache, seed, queries));
    }
  }

  /**
   * Whether some operator of the plan quantises the KV cache ({@link TokenOperator#quantizesKv}).
   */
  public boolean quantizesKv() {
    for (TokenOperator op : byHook.get(Hook.KV_FINALIZE)) {
      if (op.quantizesKv()) {
        return true;
      }
    }
    return false;
  }

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }
}
