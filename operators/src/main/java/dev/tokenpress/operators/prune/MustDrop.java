package dev.tokenpress.operators.prune;

import dev.tokenpress.operators.api.DecodeContext;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.KvFinalizeContext;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.MustDropConfig;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.PrefillLayerContext;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * MustDrop: Liu et al., "Multi-Stage Vision Token Dropping: Towards Efficient Multimodal Large
 * Language Model" (arXiv 2411.10803), as the authors' code ({@code liuting20/MustDrop}: {@code
 * local_merge.py}, {@code clip_encoder.py::custom_forward}, {@code modelling_sparse_llama.py}) runs
 * it: pure functions over {@code float[]}, and the plan operator {@code mustdrop} that calls them
 * at its hooks (stage A at {@link Hook#VISION_LAYER}, B at {@link Hook#PREFILL_AFTER}, C at {@link
 * Hook#KV_FINALIZE} and {@link Hook#DECODE}; see {@code operators/README.md}). The runtime hands
 * the LM the visual tokens in raster order of their smallest patch, not in the merged-first order
 * below.
 *
 * <p><b>Stage A, vision encoding.</b> {@link #mergeWindows}: right after ViT block 0, cut the patch
 * grid into non-overlapping {@code w×w} windows; a window whose mean pairwise cosine (over the
 * {@code w²(w²-1)} ordered pairs, self pairs excluded) is {@code >= threshold} becomes one token,
 * the plain mean of its patches (the code's {@code merge_wavg} starts from size 1 and does not pass
 * sizes on: no proportional attention). Output order: CLS (untouched), the merged tokens in
 * descending similarity, then every other patch in raster order; the spatial order is lost and the
 * LM later assigns positions in this order. {@link #keySet}: the top {@code ceil(key_share·N')} of
 * the merged patches by the head-mean CLS attention of the <em>last</em> ViT block (the code's
 * {@code idx==23} on a 24-block ViT; that block's output is discarded).
 *
 * <p><b>Stage B, prefill.</b> {@link #filter}: after each pruning layer (see {@link
 * MustDropConfig#pruningLayers(int)}), with {@code A} = head-mean attention of every row after the
 * vision block (question and template) over the current vision block, {@code g_j = Σ_i A[i,j]},
 * {@code m_j = max_i A[i,j]}: drop {@code j} iff {@code g_j < γ·Σ_k g_k} and {@code m_j < α} (both
 * strict); key tokens are never dropped. {@link #sequenceRows} gives the kept rows of the whole
 * sequence; the code then <em>re-packs</em> positions to {@code arange(newLength)} (the runtime's
 * job).
 *
 * <p><b>Stage C, output-aware KV.</b> {@link #kvPlan}: layers before the first pruning layer keep
 * their full cache; layers from the first to the last pruning layer keep only the entries of tokens
 * that survive to the last layer; later layers already hold only those. During decode each layer's
 * position is its own cache length plus the step ({@link #decodePosition}).
 *
 * <p><b>Where this port differs from the code (documented choices).</b>
 *
 * <ul>
 *   <li>Grids: the code asserts a square grid divisible by the window. Here any {@code rows×cols}
 *       grid with at least one full window is accepted: windows tile the top-left {@code (rows/w)·w
 *       × (cols/w)·w} block and the remaining bottom rows and right columns are never merged (they
 *       go with the other patches, in raster order). On every grid the code accepts, the result is
 *       the code's.
 *   <li>Ties: {@code torch.topk} leaves the order of equal values unspecified; here equal window
 *       similarities and equal CLS attentions go to the lower (window or patch) index.
 *   <li>Arithmetic: cosines, means and attention sums in double (the code: fp16 on GPU), so tokens
 *       within rounding of a threshold may flip (notes §1.6 pitfall 8). The cosine is {@code x·y /
 *       (max(|x|,1e-8)·max(|y|,1e-8))} as in {@code F.cosine_similarity}.
 *   <li>A one-element key set crashes the code ({@code squeeze()} gives a 0-d tensor); here it is a
 *       set of one. An empty key set ({@code key_share = 0}) protects nothing.
 *   <li>The code's KV loop hard-codes 32 layers and its ViT hooks 24 blocks; here the model's
 *       depths are used. Its pruning layers are scaled to the LM's depth.
 *   <li>The paper's text and code comments say 2×2 windows; the call uses 3×3, the default.
 *   <li>{@code retained_tokens} is the LightCompress variant (fixed number of merged windows), not
 *       the paper's method.
 * </ul>
 */
public final class MustDrop implements TokenOperator {

  /** {@code F.cosine_similarity}'s epsilon. */
  static final double COS_EPS = 1e-8;

  private final MustDropConfig config;

  /** Per-record state ({@link #forRecord}); null on the plan's shared instance. */
  private final RecordState state;

  /** The algorithm for {@code config}. */
  public MustDrop(MustDropConfig config) {
    this(config, null);
  }

  private MustDrop(MustDropConfig config, RecordState state) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
    this.state = state;
  }

  /**
   * What one record carries from hook to hook: the key set (original patch indices of key tokens).
   */
  private static final class RecordState {
    int[] keyPatches;
  }

  /** The configuration. */
  @Override
  public MustDropConfig config() {
    return config;
  }

  // ---------------------------------------------------------------- operator protocol

  /** A fresh instance holding this record's key set and pruning rows. */
  @Override
  public TokenOperator forRecord() {
    return new MustDrop(config, new RecordState());
  }

  /**
   * {@link Hook#VISION_LAYER} with stage A; {@link Hook#PREFILL_AFTER} with stage B; {@link
   * Hook#KV_FINALIZE} with stages B and C; {@link Hook#DECODE} (positions only) with stage B and
   * {@code decode_positions = own_cache_length}.
   */
  @Override
  public Set<Hook> hooks() {
    EnumSet<Hook> h = EnumSet.noneOf(Hook.class);
    if (config.stageA()) {
      h.add(Hook.VISION_LAYER);
    }
    if (config.stageB()) {
      h.add(Hook.PREFILL_AFTER);
      if (config.stageC()) {
        h.add(Hook.KV_FINALIZE);
      }
      if (config.decodePositions() == MustDropConfig.DecodePositions.OWN_CACHE_LENGTH) {
        h.add(Hook.DECODE);
      }
    }
    return Collections.unmodifiableSet(h);
  }

  /** Stage A merges after the whole of block 0 (the code's hook on {@code encoder.layers[0]}). */
  @Override
  public VisionPoint visionPoint() {
    return VisionPoint.AFTER_LAYER;
  }

  /**
   * {@link MustDropConfig#validate(ModelShape)}; stage A also needs at least two ViT layer runs
   * (block 0 merges, the last block run ranks the merged tokens).
   */
  @Override
  public void validate(ModelShape shape) {
    config.validate(shape);
    if (config.stageA() && shape.visionFeatureLayer() < 1) {
      throw new IllegalArgumentException(
          MustDropConfig.NAME
              + ".stage_a needs at least 2 ViT layer runs (merge"
              + " after block 0, key set from the last), this model runs "
              + (shape.visionFeatureLayer() + 1)
              + "; set stage_a to false");
    }
  }

  /**
   * Stage A: block 0's output ({@link Signal.VitLayerOutput}) and the CLS attention of the last ViT
   * layer run over the merged sequence ({@link Signal.VitClsAttention}).
   */
  @Override
  public List<Signal> signals(ModelShape shape) {
    List<Signal> out = new ArrayList<>();
    if (config.stageA()) {
      out.add(new Signal.VitLayerOutput(0));
      out.add(new Signal.VitClsAttention(shape.visionFeatureLayer()));
    }
    if (config.stageB()) {
      for (int l : config.pruningLayers(shape.lmLayers())) {
        out.add(new Signal.QueryRowAttention(l, QueryRows.TEXT_AFTER_VISUAL));
      }
    }
    return List.copyOf(out);
  }

  /**
   * Stage B after each pruning layer: {@link #filter} on the head-mean attention of the rows after
   * the vision block over the current vision block (softmax over every key of the layer, {@link
   * Signal.QueryRowAttention} with {@link QueryRows#TEXT_AFTER_VISUAL}), key tokens (the visual
   * rows whose patch is in this record's key set) never dropped, and the kept rows of {@link
   * #sequenceRows} with positions re-packed to {@code 0..n-1} ({@link PositionMode#REPACK}), as the
   * code's {@code position_ids = arange(len)}. Other layers, and a sequence without visual rows,
   * keep everything.
   */
  @Override
  public TokenSelection afterPrefillLayer(PrefillLayerContext context) {
    SequenceLayout layout = context.layout();
    int n = layout.length();
    if (Arrays.binarySearch(config.pruningLayers(context.shape().lmLayers()), context.layer())
        < 0) {
      return TokenSelection.keepAll(n);
    }
    int[] vis = layout.visualRows();
    int visual = vis.length;
    if (visual == 0) {
      return TokenSelection.keepAll(n);
    }
    int prefix = vis[0];
    if (vis[visual - 1] != prefix + visual - 1) {
      throw new IllegalStateException(
          MustDropConfig.NAME
              + " needs one contiguous vision block at LM layer "
              + context.layer()
              + ", found visual rows "
              + prefix
              + ".."
              + vis[visual - 1]
              + " with gaps");
    }
    int suffix = n - prefix - visual;
    Signal sig = new Signal.QueryRowAttention(context.layer(), QueryRows.TEXT_AFTER_VISUAL);
    FloatTensor a = context.signals().get(sig);
    if (a.rank() != 2 || a.dim(0) != suffix || a.dim(1) != n) {
      throw new IllegalArgumentException(
          "signal "
              + sig
              + " must be ["
              + suffix
              + ", "
              + n
              + "], got shape "
              + Arrays.toString(a.shape()));
    }
    float[] all = a.toArray();
    float[] block = new float[suffix * visual];
    for (int i = 0; i < suffix; i++) {
      System.arraycopy(all, i * n + prefix, block, i * visual, visual);
    }
    int[] keyPatches = state == null ? null : state.keyPatches;
    int[] keys = new int[visual];
    int nk = 0;
    if (keyPatches != null) {
      for (int j = 0; j < visual; j++) {
        if (Arrays.binarySearch(keyPatches, layout.visualIndex(vis[j])) >= 0) {
          keys[nk++] = j;
        }
      }
    }
    Filter f = filter(block, suffix, visual, Arrays.copyOf(keys, nk));
    if (f.kept().length == visual) {
      return TokenSelection.keepAll(n);
    }
    return TokenSelection.of(
        n, sequenceRows(prefix, visual, suffix, f.kept()), PositionMode.REPACK);
  }

  /**
   * Stage C at the end of prefill: every layer from the first to the last pruning layer keeps only
   * the cache entries of tokens present in the final layout (those that survive to the last layer),
   * which is {@link #kvPlan}'s composed map; earlier layers keep their full cache and later ones
   * hold only survivors already.
   */
  @Override
  public void finalizeKv(KvFinalizeContext context) {
    int[] p = config.pruningLayers(context.shape().lmLayers());
    int[] survivors = context.layout().originalIndices();
    for (int l = p[0]; l <= p[p.length - 1]; l++) {
      LayerKvCache lc = context.cache().layer(l);
      int[] tokens = lc.tokenIndices();
      int[] keep = new int[tokens.length];
      int k = 0;
      for (int e = 0; e < tokens.length; e++) {
        if (Arrays.binarySearch(survivors, tokens[e]) >= 0) {
          keep[k++] = e;
        }
      }
      if (k < tokens.length) {
        lc.retain(Arrays.copyOf(keep, k));
      }
    }
  }

  /**
   * The code's decode positions ({@code own_cache_length}): each layer's own cache length before
   * the step's token is appended, see {@link #decodePosition(MustDropConfig.DecodePositions, int,
   * int, int)}.
   */
  @Override
  public int decodePosition(DecodeContext context, int position) {
    return context.cache().length();
  }

  /** No decode bias: MustDrop acts at {@link Hook#DECODE} for positions only. */
  @Override
  public float[] decodeBias(DecodeContext context) {
    return null;
  }

  /**
   * Stage A at the two ViT layers it acts on. After block 0: {@link #mergeWindows} on the layer's
   * output, as a reduction (CLS first, merged windows in descending similarity with equal member
   * weights, then the other patches in raster order). At the last layer run: the key set ({@link
   * #keySet}) from the CLS attention over the current merged sequence, kept as original patch
   * indices (each token's representative) for the LM hooks; nothing is reduced. Elsewhere nothing
   * happens.
   *
   * <p>Where the code's key set comes from block 23's attention (the block after LLaVA's feature
   * layer, whose output is discarded), the runtime runs blocks only up to the feature layer, so the
   * last block run is used: its attention over its input, one block earlier.
   */
  @Override
  public TokenReduction reduceVisionLayer(VisionLayerContext context) {
    ModelShape shape = context.shape();
    int t = context.tokens();
    if (context.layer() == 0) {
      if (context.provenance().merged() || t != shape.vitTokens()) {
        throw new IllegalStateException(
            MustDropConfig.NAME
                + " merges windows of the full patch grid after"
                + " ViT block 0, but an earlier operator already reduced it to "
                + t
                + " rows");
      }
      FloatTensor h = context.signals().get(new Signal.VitLayerOutput(0));
      int dim = h.dim(1);
      WindowMerge m = mergeWindows(h.toArray(), shape.patchRows(), shape.patchCols(), dim, true);
      if (m.mergedWindows().length == 0) {
        return TokenReduction.keepAll(t);
      }
      int[][] groups = new int[m.tokens() + 1][];
      groups[0] = new int[] {0};
      for (int o = 0; o < m.tokens(); o++) {
        int[] src = m.sources(o);
        for (int j = 0; j < src.length; j++) {
          src[j] += 1;
        }
        groups[o + 1] = src;
      }
      return TokenReduction.of(t, groups, null, PositionMode.REPACK);
    }
    if (context.layer() == shape.visionFeatureLayer()) {
      float[] cls = context.signals().get(new Signal.VitClsAttention(context.layer())).toArray();
      int[] keys = keySet(Arrays.copyOfRange(cls, 1, cls.length));
      TokenProvenance prov = context.provenance();
      int[] reps = prov.representatives();
      int[] patches = new int[keys.length];
      for (int i = 0; i < keys.length; i++) {
        patches[i] = reps[keys[i]];
      }
      Arrays.sort(patches);
      requireState().keyPatches = patches;
    }
    return TokenReduction.keepAll(t);
  }

  /**
   * The key set of this record as original patch indices (the representatives of the key tokens),
   * ascending; null before the ViT's last layer ran or on the plan's shared instance.
   */
  public int[] keyPatches() {
    return state == null || state.keyPatches == null ? null : state.keyPatches.clone();
  }

  private RecordState requireState() {
    if (state == null) {
      throw new IllegalStateException(
          MustDropConfig.NAME
              + " keeps per-record state: call forRecord() first"
              + " (HookRunner does)");
    }
    return state;
  }

  @Override
  public String toString() {
    return "MustDrop" + config.toJson();
  }

  /**
   * The result of the stage-A merge.
   *
   * @param hidden the new hidden states, {@code [(cls?1:0) + tokens] × dim}, CLS first if present
   * @param tokens the number of patch tokens after the merge ({@code N' - 1} in the notes)
   * @param mergedWindows the merged window ids (raster order of windows, {@code wy·(cols/w)+wx}) in
   *     output order, i.e. descending similarity; output patch token {@code t < r} is window {@code
   *     mergedWindows[t]}
   * @param similarity the mean pairwise cosine of every full window, by window id
   * @param sourceOffsets provenance in CSR form: output patch token {@code t} stands for original
   *     patches {@code sourcePatches[sourceOffsets[t] .. sourceOffsets[t+1])} (ascending raster
   *     index), with weights {@code sourceWeights[...]} (each {@code 1/w²} for a merged token, 1
   *     otherwise); length {@code tokens + 1}
   * @param sourcePatches original patch indices (raster, without CLS)
   * @param sourceWeights weight of each source patch
   */
  public record WindowMerge(
      float[] hidden,
      int tokens,
      int[] mergedWindows,
      double[] similarity,
      int[] sourceOffsets,
      int[] sourcePatches,
      float[] sourceWeights) {

    /** The original patch indices output patch token {@code t} stands for. */
    public int[] sources(int t) {
      return Arrays.copyOfRange(sourcePatches, sourceOffsets[t], sourceOffsets[t + 1]);
    }

    /** The weights of {@link #sources(int)}. */
    public float[] weights(int t) {
      return Arrays.copyOfRange(sourceWeights, sourceOffsets[t], sourceOffsets[t + 1]);
    }
  }

  /**
   * Stage A (a): the window merge on ViT block 0's output. {@code hidden} is {@code [(hasCls?1:0) +
   * rows·cols] × dim}, row-major, patches in raster order after the optional CLS row; it is not
   * modified. With stage A off this is the identity (nothing merged, each token its own source).
   */
  public WindowMerge mergeWindows(float[] hidden, int rows, int cols, int dim, boolean hasCls) {
    int w = config.window();
    int c = hasCls ? 1 : 0;
    int patches = rows * cols;
    if (rows < 1 || cols < 1 || dim < 1) {
      throw new IllegalArgumentException(
          "grid and dim must be >= 1, got " + rows + "x" + cols + ", dim " + dim);
    }
    if (hidden == null || hidden.length != (long) (c + patches) * dim) {
      throw new IllegalArgumentException(
          "hidden must hold "
              + (c + patches)
              + " x "
              + dim
              + " floats, got "
              + (hidden == null ? "null" : hidden.length));
    }
    int gh = rows / w;
    int gw = cols / w;
    int windows = gh * gw;
    if (config.stageA() && windows == 0) {
      throw new IllegalArgumentException(
          MustDropConfig.NAME
              + ".window must be at most the patch grid's smaller"
              + " side "
              + Math.min(rows, cols)
              + " ("
              + rows
              + "x"
              + cols
              + "), got "
              + w);
    }
    double[] sim = new double[config.stageA() ? windows : 0];
    int[] order = new int[0];
    if (config.stageA()) {
      double[] norm = new double[patches];
      for (int p = 0; p < patches; p++) {
        int off = (c + p) * dim;
        double s = 0;
        for (int d = 0; d < dim; d++) {
          double x = hidden[off + d];
          s += x * x;
        }
        norm[p] = Math.max(Math.sqrt(s), COS_EPS);
      }
      int n = w * w;
      int[] members = new int[n];
      for (int win = 0; win < windows; win++) {
        windowMembers(win, gw, w, cols, members);
        double sum = 0;
        for (int a = 0; a < n; a++) {
          int offA = (c + members[a]) * dim;
          for (int b = a + 1; b < n; b++) {
            int offB = (c + members[b]) * dim;
            double dot = 0;
            for (int d = 0; d < dim; d++) {
              dot += (double) hidden[offA + d] * hidden[offB + d];
            }
            sum += dot / (norm[members[a]] * norm[members[b]]);
          }
        }
        sim[win] = 2 * sum / ((double) n * (n - 1));
      }
      order = descending(sim);
      int r;
      if (config.thresholdMode()) {
        r = 0;
        for (int win = 0; win < windows; win++) {
          if (sim[win] >= config.threshold()) {
            r++;
          }
        }
      } else {
        r = Math.max(0, Math.min(windows, (patches + 1 - config.retainedTokens()) / (n - 1)));
      }
      order = Arrays.copyOf(order, r);
    }
    return assemble(hidden, rows, cols, dim, c, order, sim);
  }

  private WindowMerge assemble(
      float[] hidden, int rows, int cols, int dim, int c, int[] merged, double[] sim) {
    int w = config.window();
    int gw = cols / w;
    int n = w * w;
    int patches = rows * cols;
    int r = merged.length;
    int tokens = patches - r * (n - 1);
    boolean[] inMerged = new boolean[patches];
    int[] members = new int[n];
    int[] offsets = new int[tokens + 1];
    int[] sources = new int[patches];
    float[] weights = new float[patches];
    float[] out = new float[(c + tokens) * dim];
    if (c == 1) {
      System.arraycopy(hidden, 0, out, 0, dim);
    }
    double[] acc = new double[dim];
    int s = 0;
    for (int t = 0; t < r; t++) {
      windowMembers(merged[t], gw, w, cols, members);
      Arrays.fill(acc, 0);
      for (int m = 0; m < n; m++) {
        int p = members[m];
        inMerged[p] = true;
        sources[s] = p;
        weights[s] = 1f / n;
        s++;
        int off = (c + p) * dim;
        for (int d = 0; d < dim; d++) {
          acc[d] += hidden[off + d];
        }
      }
      int o = (c + t) * dim;
      for (int d = 0; d < dim; d++) {
        out[o + d] = (float) (acc[d] / n);
      }
      offsets[t + 1] = s;
    }
    int t = r;
    for (int p = 0; p < patches; p++) {
      if (!inMerged[p]) {
        System.arraycopy(hidden, (c + p) * dim, out, (c + t) * dim, dim);
        sources[s] = p;
        weights[s] = 1f;
        s++;
        offsets[++t] = s;
      }
    }
    return new WindowMerge(out, tokens, merged, sim, offsets, sources, weights);
  }

  /** The raster patch indices of window {@code win}, in raster order. */
  private static void windowMembers(int win, int gw, int w, int cols, int[] out) {
    int r0 = (win / gw) * w;
    int c0 = (win % gw) * w;
    int i = 0;
    for (int dr = 0; dr < w; dr++) {
      for (int dc = 0; dc < w; dc++) {
        out[i++] = (r0 + dr) * cols + c0 + dc;
      }
    }
  }

  /** Indices sorted by descending value, ties to the lower index; NaN is rejected. */
  private static int[] descending(double[] v) {
    int[] idx = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      if (Double.isNaN(v[i])) {
        throw new IllegalArgumentException(
            "window " + i + " has a NaN similarity (NaN in the hidden states)");
      }
      int j = i;
      while (j > 0 && v[idx[j - 1]] < v[i]) {
        idx[j] = idx[j - 1];
        j--;
      }
      idx[j] = i;
    }
    return idx;
  }

  /**
   * Stage A (b): the key set, ascending indices into the merged patch sequence. {@code
   * clsAttention} is the head-mean CLS attention of the last ViT block over the {@code N'} merged
   * patches (CLS column removed, probabilities from a softmax over CLS and all patches). Size
   * {@code ceil(key_share·N')} in double arithmetic as Python's {@code math.ceil} (0.08·576 → 47);
   * ties go to the lower index; the code returns {@code topk} order, but the set is all that is
   * used (needs a ViT with CLS: SigLIP-style towers have none, pitfall 9). The last block's input
   * without CLS is the LLaVA feature ({@code hidden_states[-2][:, 1:]}), in the same order, so the
   * positions index the vision block the LM receives. Empty with stage A off.
   */
  public int[] keySet(float[] clsAttention) {
    if (!config.stageA()) {
      return new int[0];
    }
    int n = clsAttention.length;
    int k = (int) Math.min(n, Math.ceil(config.keyShare() * n));
    return Kernels.topKInIndexOrder(clsAttention, k);
  }

  /**
   * The result of one stage-B filter.
   *
   * @param kept kept indices into the current vision block, ascending
   * @param keyPositions the key tokens' positions inside {@code kept}, ascending
   */
  public record Filter(int[] kept, int[] keyPositions) {}

  /**
   * Stage B: the dual-attention filter at one pruning layer. {@code attention} is {@code [textRows
   * × visual]} row-major: the layer's attention probabilities averaged over heads, for every query
   * row after the vision block, over the current vision block's columns; the softmax must run over
   * <em>all</em> causal keys (system, vision, text) before the vision columns are sliced. {@code
   * keys} are ascending positions in the current vision block that must survive. With stage B off
   * everything is kept. Inputs are not modified.
   */
  public Filter filter(float[] attention, int textRows, int visual, int[] keys) {
    if (textRows < 0
        || visual < 0
        || attention == null
        || attention.length != (long) textRows * visual) {
      throw new IllegalArgumentException(
          "attention must hold textRows x visual = "
              + textRows
              + " x "
              + visual
              + " floats, got "
              + (attention == null ? "null" : attention.length));
    }
    boolean[] keep = new boolean[visual];
    for (int k : keys) {
      if (k < 0 || k >= visual) {
        throw new IllegalArgumentException(
            "key position " + k + " outside the vision block [0, " + visual + ")");
      }
      keep[k] = true;
    }
    if (!config.stageB()) {
      Arrays.fill(keep, true);
    } else {
      double[] g = new double[visual];
      double[] m = new double[visual];
      Arrays.fill(m, Double.NEGATIVE_INFINITY);
      for (int i = 0; i < textRows; i++) {
        int off = i * visual;
        for (int j = 0; j < visual; j++) {
          double a = attention[off + j];
          g[j] += a;
          if (a > m[j]) {
            m[j] = a;
          }
        }
      }
      double total = 0;
      for (int j = 0; j < visual; j++) {
        total += g[j];
      }
      double bound = total * config.globalThr();
      for (int j = 0; j < visual; j++) {
        // with no text rows the code's max over an empty dim is undefined; nothing is dropped
        boolean drop = textRows > 0 && g[j] < bound && m[j] < config.individualThr();
        keep[j] |= !drop;
      }
    }
    int count = 0;
    for (boolean b : keep) {
      if (b) {
        count++;
      }
    }
    int[] kept = new int[count];
    boolean[] isKey = new boolean[visual];
    for (int k : keys) {
      isKey[k] = true;
    }
    int[] keyPos = new int[visual];
    int nk = 0;
    int i = 0;
    for (int j = 0; j < visual; j++) {
      if (keep[j]) {
        if (isKey[j]) {
          keyPos[nk++] = i;
        }
        kept[i++] = j;
      }
    }
    return new Filter(kept, Arrays.copyOf(keyPos, nk));
  }

  /**
   * Stage B's input from per-head probabilities as {@code kernels.AttentionRows.compute} returns
   * them ({@code [rows × heads × keys]}, softmax over all causal keys; compute only the rows after
   * the vision block, which avoids the code's full eager attention maps, pitfall 4): the head mean
   * ({@link Kernels#meanOverHeads}) of each row, sliced to the vision columns {@code [visualStart,
   * visualStart + visual)}. Returns {@code [rows × visual]}.
   */
  public static float[] visionBlockAttention(
      float[] probs, int rows, int heads, int keys, int visualStart, int visual) {
    if (rows < 0
        || heads < 1
        || keys < 0
        || probs.length != (long) rows * heads * keys
        || visualStart < 0
        || visual < 0
        || visualStart + visual > keys) {
      throw new IllegalArgumentException(
          "probs of "
              + probs.length
              + " floats is not [rows="
              + rows
              + ", heads="
              + heads
              + ", keys="
              + keys
              + "] with vision columns ["
              + visualStart
              + ", "
              + (visualStart + visual)
              + ")");
    }
    float[] out = new float[rows * visual];
    for (int i = 0; i < rows; i++) {
      float[] mean =
          Kernels.meanOverHeads(
              Arrays.copyOfRange(probs, i * heads * keys, (i + 1) * heads * keys), heads, keys);
      System.arraycopy(mean, visualStart, out, i * visual, visual);
    }
    return out;
  }

  /**
   * The kept rows of the whole prefill sequence for a stage-B result, the code's {@code
   * merged_indices}: {@code [0, prefix) ∪ (prefix + keptVisual) ∪ [prefix + visual, prefix + visual
   * + suffix)}. The new sequence's positions are {@code 0 .. length-1} (re-packed, not the original
   * ones).
   */
  public static int[] sequenceRows(int prefix, int visual, int suffix, int[] keptVisual) {
    int[] rows = new int[prefix + keptVisual.length + suffix];
    int i = 0;
    for (int p = 0; p < prefix; p++) {
      rows[i++] = p;
    }
    for (int v : keptVisual) {
      if (v < 0 || v >= visual) {
        throw new IllegalArgumentException(
            "kept visual index " + v + " outside [0, " + visual + ")");
      }
      rows[i++] = prefix + v;
    }
    for (int t = 0; t < suffix; t++) {
      rows[i++] = prefix + visual + t;
    }
    return rows;
  }

  /**
   * The per-layer KV cache at the end of prefill.
   *
   * @param keep for each layer, the indices into that layer's own prefill sequence of the entries
   *     it keeps (ascending)
   * @param tokens for each layer, the original prefill row ({@code 0 .. L0-1}) of each kept entry
   * @param decodePositions how {@link #decodePosition} works
   * @param finalLength the length of the sequence the last layer ran on
   */
  public record KvPlan(
      int[][] keep,
      int[][] tokens,
      MustDropConfig.DecodePositions decodePositions,
      int finalLength) {

    /** Layer {@code layer}'s cache length after prefill. */
    public int cacheLength(int layer) {
      return keep[layer].length;
    }

    /** See {@link MustDrop#decodePosition}. */
    public int decodePosition(int layer, int step) {
      return MustDrop.decodePosition(decodePositions, cacheLength(layer), finalLength, step);
    }
  }

  /**
   * Stage C. {@code stageRows[s]} are the rows kept at pruning point {@code s} (after layer {@code
   * pruningLayers[s]}), as indices into the sequence that entered that point (the {@link
   * #sequenceRows} of each stage-B call); {@code initialLength} is the prefill length {@code L0}.
   * The maps are composed backwards as in the code ({@code final_indices[s-1] =
   * final_indices[s-1][final_indices[s]]}). Layers before {@code pruningLayers[0]} keep all {@code
   * L0} entries; a layer {@code l <= pruningLayers[S-1]} that ran on the sequence entering point
   * {@code s} (the number of pruning layers below {@code l}) keeps the composed map {@code
   * final[s]}; later layers keep their (already final) sequence. With stage C off every layer keeps
   * its whole own sequence (a plain cache).
   */
  public KvPlan kvPlan(int lmLayers, int[] pruningLayers, int initialLength, int[][] stageRows) {
    int stages = stageRows.length;
    if (pruningLayers.length < stages) {
      throw new IllegalArgumentException(
          stages + " pruning stages but only " + pruningLayers.length + " pruning layers");
    }
    int[] length = new int[stages + 1];
    length[0] = initialLength;
    for (int s = 0; s < stages; s++) {
      int[] rows = stageRows[s];
      if (pruningLayers[s] < 0
          || pruningLayers[s] >= lmLayers
          || (s > 0 && pruningLayers[s] <= pruningLayers[s - 1])) {
        throw new IllegalArgumentException(
            "pruning layers must be strictly increasing in [0, "
                + (lmLayers - 1)
                + "], got "
                + Arrays.toString(pruningLayers));
      }
      for (int i = 0; i < rows.length; i++) {
        if (rows[i] < 0 || rows[i] >= length[s] || (i > 0 && rows[i] <= rows[i - 1])) {
          throw new IllegalArgumentException(
              "stage "
                  + s
                  + " rows must be strictly increasing in [0, "
                  + length[s]
                  + "), got "
                  + Arrays.toString(rows));
        }
      }
      length[s + 1] = rows.length;
    }
    // composed[s]: final tokens -> indices into the sequence entering stage s
    int[][] composed = new int[stages + 1][];
    composed[stages] = identity(length[stages]);
    for (int s = stages - 1; s >= 0; s--) {
      composed[s] = gather(stageRows[s], composed[s + 1]);
    }
    // original[s]: sequence entering stage s -> original prefill rows
    int[][] original = new int[stages + 1][];
    original[0] = identity(initialLength);
    for (int s = 0; s < stages; s++) {
      original[s + 1] = gather(original[s], stageRows[s]);
    }
    int[][] keep = new int[lmLayers][];
    int[][] tokens = new int[lmLayers][];
    int s = 0;
    for (int l = 0; l < lmLayers; l++) {
      // s = number of pruning layers strictly below l: the sequence this layer ran on
      while (s < stages && pruningLayers[s] < l) {
        s++;
      }
      boolean between = stages > 0 && l >= pruningLayers[0] && s < stages;
      keep[l] = config.stageC() && between ? composed[s] : identity(length[s]);
      tokens[l] = gather(original[s], keep[l]);
    }
    return new KvPlan(keep, tokens, config.decodePositions(), length[stages]);
  }

  /**
   * The position of decode step {@code step} (0 = the first generated token) at a layer whose cache
   * held {@code cacheLength} entries after prefill: the code ({@code LlamaDynamicvitSdpaAttention})
   * reads it from the layer's own cache before appending, i.e. {@code cacheLength + step}, so with
   * stage C layers before the first pruning layer use {@code L0 + step} and every other layer
   * {@code L_final + step}, although layers between the pruning points hold keys rotated with their
   * own stage's re-packed positions (their relative RoPE distances are slightly inconsistent:
   * reproduced, not fixed). With {@code FINAL_LENGTH} every layer uses {@code finalLength + step}.
   */
  public static int decodePosition(
      MustDropConfig.DecodePositions mode, int cacheLength, int finalLength, int step) {
    if (step < 0) {
      throw new IllegalArgumentException("step must be >= 0, got " + step);
    }
    return (mode == MustDropConfig.DecodePositions.OWN_CACHE_LENGTH ? cacheLength : finalLength)
        + step;
  }

  /**
   * The paper's token count: the number of vision tokens after each LM layer (after that layer's
   * pruning, if any), averaged over all {@code lmLayers} layers, as the code's {@code
   * num_token_pool} (the SparseVLM convention). {@code keptPerStage[s]} is the vision count after
   * pruning point {@code s}.
   */
  public static double meanVisualTokens(
      int lmLayers, int[] pruningLayers, int initialVisual, int[] keptPerStage) {
    long sum = 0;
    int current = initialVisual;
    int s = 0;
    for (int l = 0; l < lmLayers; l++) {
      if (s < keptPerStage.length && pruningLayers[s] == l) {
        current = keptPerStage[s++];
      }
      sum += current;
    }
    return (double) sum / lmLayers;
  }

  private static int[] identity(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  private static int[] gather(int[] src, int[] idx) {
    int[] out = new int[idx.length];
    for (int i = 0; i < idx.length; i++) {
      out[i] = src[idx[i]];
    }
    return out;
  }
}
