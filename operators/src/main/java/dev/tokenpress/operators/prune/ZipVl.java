package dev.tokenpress.operators.prune;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.KvAppendContext;
import dev.tokenpress.operators.api.KvFinalizeContext;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PrefillContext;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SparseAttention;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.ZipVlConfig;
import dev.tokenpress.operators.kernels.AttentionRows;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.kv.MixedPrecisionEncoder;
import dev.tokenpress.operators.kv.ZipCacheCodec;
import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * ZipVL (Wang et al., "ZipVL: Efficient Large Vision-Language Models with Dynamic Token
 * Sparsification", arXiv 2410.08584 v1, Alg. 1): per LM layer, a dynamic share of important tokens
 * gets sparse prefill attention and 4-bit KV storage, the rest 2-bit.
 *
 * <p><b>Prefill, per layer</b> ({@link Hook#PREFILL}, from the layer's post-RoPE {@link
 * Signal.LmQueries} and {@link Signal.LmKeys}; {@code n} rows):
 *
 * <ol>
 *   <li>probe rows {@link #probes}: the last {@code min(probes_recent, n)} rows and {@code
 *       min(probes_random, n - recent)} rows drawn without replacement from the earlier ones,
 *       seeded per record and layer ({@link #probeSeed}, stored in the output); for {@code n <=
 *       probes_recent + probes_random} every row is a probe;
 *   <li>{@code a_j = Σ_{h, i∈P} softmax(q_i·Kᵀ/√d + causal)[h, j]} over every query head ({@link
 *       #accumulate});
 *   <li>Eq. 6 ({@link #dynamicCount}): {@code p} = the smallest count whose largest {@code a_j}
 *       hold {@code τ} of {@code Σ_j a_j} ({@code p = n} for {@code τ = 1});
 *   <li>Eq. 7 ({@link #normalise}): {@code ã_j = a_j / (n - j)}, {@code n - j} being the queries
 *       that can see row {@code j}; it decides <em>which</em> tokens, Eq. 6 <em>how many</em>;
 *   <li>{@link #select}: the first row (the attention sink every row sees) and the last (whose
 *       output gives the logits) always, then the top {@code ã} (lower row first on ties) up to
 *       {@code max(p, 2)} rows.
 * </ol>
 *
 * In {@code sparse} mode the layer's attention runs among the important rows only ({@link
 * SparseAttention}: gathered rows and columns); what the unimportant rows' attention outputs are,
 * on which the paper is silent, is the {@code unimportant_rows} option ({@link
 * ZipVlConfig.UnimportantRows}). In {@code kv-only} mode attention stays dense and the hidden
 * states exact. {@code heads: shared} (default) takes one important set per layer, the attention
 * summed over every head (FlashAttention over gathered tokens needs one set); {@code heads:
 * per_kv_head} runs steps 2–5 per KV head on the attention of its query heads ({@link
 * #accumulatePerKvHead}), as ZipCache selects, and each KV head is then quantised on its own
 * ({@link MixedPrecisionEncoder#encodePerHead}); sparse prefill then attends over the union of the
 * heads' sets, and the layer's {@link KvCompressionInfo} records every head's {@code p_g} and set
 * size.
 *
 * <p><b>KV cache</b> ({@link Hook#KV_FINALIZE}): every layer's entries are re-encoded with the
 * ZipCache codecs ({@link MixedPrecisionEncoder}): important tokens at {@code bits_high}, the
 * others at {@code bits_low}, keys per channel per subset, values per token after channel scaling;
 * decode attention reads the codes in place. With {@code bits_high = 16} the important tokens stay
 * float16 and each run of unimportant tokens is one quantisation group. Entries are matched to the
 * prefill decision by original token index, so operators that drop cache entries before this one
 * (MustDrop stage C) compose.
 *
 * <p><b>Decode</b> ({@link Hook#KV_APPEND}): generated tokens stay in the cache's float append
 * precision; every {@code interval} steps the oldest {@code interval} float entries of each layer
 * are scored with that step's query of the layer ({@code a_j} summed over heads of the softmax over
 * those keys only; per KV head with {@code per_kv_head}), Eq. 6 gives their count, and they are
 * re-encoded as one mixed group. Eq. 7 is not applied there: one query sees every key of the
 * window.
 *
 * <p>Stateless as built; {@link #forRecord()} gives the per-record instance that carries each
 * layer's decision from prefill to the cache.
 */
public final class ZipVl implements TokenOperator {
  private final ZipVlConfig config;
  private final boolean record;
  // per-record state, allocated at the record's first LM layer (never in the shared instance)
  private int[][][]
      important; // [layer][set]: token indices at bits_high (one set, or one per KV head)
  private KvCompressionInfo[] info;
  private int[] encodedEnd;

  public ZipVl(ZipVlConfig config) {
    this(config, false);
  }

  private ZipVl(ZipVlConfig config, boolean record) {
    if (config == null) {
      throw new IllegalArgumentException("zipvl: config must not be null");
    }
    this.config = config;
    this.record = record;
  }

  @Override
  public ZipVlConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    EnumSet<Hook> h = EnumSet.of(Hook.PREFILL, Hook.KV_FINALIZE);
    if (config.interval() > 0) {
      h.add(Hook.KV_APPEND);
    }
    return h;
  }

  @Override
  public void validate(ModelShape shape) {
    // every layer is scored; nothing depends on the model beyond the signals' own checks
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    List<Signal> s = new ArrayList<>(2 * shape.lmLayers());
    for (int l = 0; l < shape.lmLayers(); l++) {
      s.add(new Signal.LmQueries(l));
      s.add(new Signal.LmKeys(l));
    }
    return s;
  }

  @Override
  public boolean quantizesKv() {
    return true;
  }

  /** A fresh instance holding this record's per-layer decisions. */
  @Override
  public TokenOperator forRecord() {
    return new ZipVl(config, true);
  }

  /** No bias: ZipVL acts at PREFILL through {@link #prefillSparse}. */
  @Override
  public FloatTensor prefillBias(PrefillContext context) {
    return null;
  }

  @Override
  public SparseAttention prefillSparse(PrefillContext context) {
    requireRecord(context.shape().lmLayers());
    int l = context.layer();
    FloatTensor q = context.signals().get(new Signal.LmQueries(l));
    FloatTensor k = context.signals().get(new Signal.LmKeys(l));
    int n = context.layout().length();
    int heads = context.shape().lmHeads();
    int kvHeads = context.shape().lmKvHeads();
    int headDim = q.dim(1) / heads;
    int[] order = context.layout().originalIndices();
    long seed = probeSeed(context.seed(), config.seed(), l);
    int[] probes = probes(n, config.probesRecent(), config.probesRandom(), seed);
    int sets = config.heads() == ZipVlConfig.Heads.PER_KV_HEAD ? kvHeads : 1;
    double[][] a =
        accumulatePerGroup(q.toArray(), k.toArray(), order, probes, heads, kvHeads, headDim, sets);
    int[] counts = new int[sets];
    int[] sizes = new int[sets];
    boolean[] union = new boolean[n];
    important[l] = new int[sets][];
    for (int g = 0; g < sets; g++) {
      counts[g] = dynamicCount(a[g], config.tau());
      int[] rows = select(normalise(a[g]), counts[g]);
      sizes[g] = rows.length;
      int[] tokens = new int[rows.length];
      for (int i = 0; i < rows.length; i++) {
        tokens[i] = order[rows[i]];
        union[rows[i]] = true;
      }
      Arrays.sort(tokens);
      important[l][g] = tokens;
    }
    int[] rows = trueRows(union);
    // Eq. 6's count of the layer: p, or with one set per KV head the largest p_g
    int ratioCount = 0;
    for (int c : counts) {
      ratioCount = Math.max(ratioCount, c);
    }
    boolean perHead = sets > 1;
    info[l] =
        new KvCompressionInfo(
            config.name(),
            config.mode().jsonName(),
            config.tau(),
            n,
            ratioCount,
            rows.length,
            seed,
            config.bitsHigh(),
            config.bitsLow(),
            config.heads().jsonName(),
            perHead ? counts : new int[0],
            perHead ? sizes : new int[0]);
    if (config.mode() == ZipVlConfig.Mode.KV_ONLY) {
      return null;
    }
    return new SparseAttention(
        n, rows, config.unimportantRows() == ZipVlConfig.UnimportantRows.IMPORTANT_KEYS);
  }

  @Override
  public void finalizeKv(KvFinalizeContext context) {
    requireRecord(context.cache().numLayers());
    for (int l = 0; l < context.cache().numLayers(); l++) {
      if (important[l] == null) {
        throw new IllegalStateException(
            "zipvl: no prefill decision for LM layer "
                + l
                + " (the runtime did not call PREFILL there)");
      }
      LayerKvCache lc = context.cache().layer(l);
      int[] tokens = lc.tokenIndices();
      boolean[][] masks = new boolean[important[l].length][tokens.length];
      for (int g = 0; g < masks.length; g++) {
        for (int i = 0; i < tokens.length; i++) {
          masks[g][i] = Arrays.binarySearch(important[l][g], tokens[i]) >= 0;
        }
      }
      encode(lc, 0, tokens.length, masks);
      lc.setCompressionInfo(info[l]);
      encodedEnd[l] = tokens.length;
    }
  }

  @Override
  public void kvAppended(KvAppendContext context) {
    requireRecord(context.cache().numLayers());
    int interval = config.interval();
    for (int l = 0; l < context.cache().numLayers(); l++) {
      LayerKvCache lc = context.cache().layer(l);
      if (lc.length() - encodedEnd[l] < interval) {
        continue;
      }
      if (context.queries() == null) {
        throw new IllegalStateException(
            "zipvl: re-encoding at KV_APPEND needs the step's queries, which the"
                + " runtime did not supply");
      }
      int from = encodedEnd[l];
      int to = from + interval;
      int w = lc.layout().width();
      float[] keys = Arrays.copyOfRange(lc.keys(), from * w, to * w);
      int[] order = Arrays.copyOfRange(lc.tokenIndices(), from, to);
      int sets = important[l].length;
      double[][] a =
          windowScoresPerGroup(
              context.queries()[l],
              keys,
              order,
              context.shape().lmHeads(),
              lc.layout().numKvHeads(),
              lc.layout().headDim(),
              sets);
      boolean[][] masks = new boolean[sets][interval];
      for (int g = 0; g < sets; g++) {
        for (int r : topRows(a[g], dynamicCount(a[g], config.tau()))) {
          masks[g][r] = true;
        }
      }
      encode(lc, from, to, masks);
      encodedEnd[l] = to;
    }
  }

  /**
   * Re-encodes entries [from, to) of {@code lc}: {@code masks[0][i]} at bits_high, the others at
   * bits_low; with one mask per KV head ({@code per_kv_head}) each head on its own.
   */
  private void encode(LayerKvCache lc, int from, int to, boolean[][] masks) {
    if (masks.length > 1) {
      lc.recodeMixedPerHead(
          from, to, masks, new MixedPrecisionEncoder(config.bitsHigh(), config.bitsLow()));
      return;
    }
    boolean[] mask = masks[0];
    if (config.bitsHigh() <= 8) {
      lc.recodeMixed(
          from, to, mask, new MixedPrecisionEncoder(config.bitsHigh(), config.bitsLow()));
      return;
    }
    KvCodec high = KvCodec.of(KvPrecision.FP16);
    KvCodec low = ZipCacheCodec.ofBits(config.bitsLow());
    int start = from;
    while (start < to) {
      int end = start + 1;
      while (end < to && mask[end - from] == mask[start - from]) {
        end++;
      }
      lc.recode(start, end, mask[start - from] ? high : low);
      start = end;
    }
  }

  private static int[] trueRows(boolean[] b) {
    int c = 0;
    for (boolean x : b) {
      if (x) {
        c++;
      }
    }
    int[] out = new int[c];
    c = 0;
    for (int r = 0; r < b.length; r++) {
      if (b[r]) {
        out[c++] = r;
      }
    }
    return out;
  }

  private void requireRecord(int layers) {
    if (!record) {
      throw new IllegalStateException(
          "zipvl keeps per-record state: call forRecord() first (HookRunner does)");
    }
    if (important == null) {
      important = new int[layers][][];
      info = new KvCompressionInfo[layers];
      encodedEnd = new int[layers];
    }
  }

  // ---------------------------------------------------------------- the algorithm, step by step

  /**
   * The seed of layer {@code layer}'s random probes: {@code combine(combine(recordSeed,
   * configSeed), layer)} ({@link Seeds#combine}).
   */
  public static long probeSeed(long recordSeed, long configSeed, int layer) {
    return Seeds.combine(Seeds.combine(recordSeed, configSeed), layer);
  }

  /**
   * Probe rows of {@code n}, ascending: the last {@code min(recent, n)} rows, plus {@code m =
   * min(random, n - recent)} of the earlier {@code E = n - recent} rows drawn by a partial
   * Fisher–Yates shuffle of {@code [0, E)}: for {@code i < m}, swap {@code i} with {@code i +
   * (mix64(seed + (i+1)·0x9E3779B97F4A7C15) mod (E - i))} (unsigned 64-bit, Seeds' SplitMix64
   * finaliser), then take the first {@code m}.
   */
  public static int[] probes(int n, int recent, int random, long seed) {
    if (n < 1) {
      throw new IllegalArgumentException("probes need at least one row, got n = " + n);
    }
    int r = Math.min(recent, n);
    int e = n - r;
    int m = Math.min(random, e);
    int[] pool = new int[e];
    for (int i = 0; i < e; i++) {
      pool[i] = i;
    }
    for (int i = 0; i < m; i++) {
      long u = Seeds.mix64(seed + (i + 1L) * 0x9E3779B97F4A7C15L);
      int j = i + (int) Long.remainderUnsigned(u, e - i);
      int t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
    }
    int[] out = new int[m + r];
    System.arraycopy(pool, 0, out, 0, m);
    Arrays.sort(out, 0, m);
    for (int i = 0; i < r; i++) {
      out[m + i] = e + i;
    }
    return out;
  }

  /**
   * {@code a_j = Σ_{i∈probes} Σ_h A[h, i, j]}: each probe row's causal softmax per query head
   * ({@link AttentionRows#compute}, the one attention-row kernel), summed in double.
   *
   * @param q {@code [n, heads*headDim]} post-RoPE queries
   * @param k {@code [n, kvHeads*headDim]} post-RoPE keys of the same rows
   * @param order token index of each row (causality)
   */
  public static double[] accumulate(
      float[] q, float[] k, int[] order, int[] probes, int heads, int kvHeads, int headDim) {
    return accumulatePerGroup(q, k, order, probes, heads, kvHeads, headDim, 1)[0];
  }

  /**
   * {@link #accumulate} per KV head ({@code per_kv_head}): {@code a[g]_j} sums only the query heads
   * {@code h} of KV head {@code g} ({@code h / (heads / kvHeads) == g}, grouped-query attention).
   */
  public static double[][] accumulatePerKvHead(
      float[] q, float[] k, int[] order, int[] probes, int heads, int kvHeads, int headDim) {
    return accumulatePerGroup(q, k, order, probes, heads, kvHeads, headDim, kvHeads);
  }

  /**
   * The sums over probe rows and over the query heads of each of {@code groups} equal head groups.
   */
  private static double[][] accumulatePerGroup(
      float[] q,
      float[] k,
      int[] order,
      int[] probes,
      int heads,
      int kvHeads,
      int headDim,
      int groups) {
    float[] probs =
        AttentionRows.compute(
            q,
            probes,
            order,
            k,
            order,
            heads,
            kvHeads,
            headDim,
            (float) (1.0 / Math.sqrt(headDim)),
            null);
    return sumHeads(probs, probes.length, heads, order.length, groups);
  }

  /** {@code out[g][j] = Σ_{row, h in group g} probs[(row·heads + h)·n + j]}, rows in order. */
  private static double[][] sumHeads(float[] probs, int rowCount, int heads, int n, int groups) {
    double[][] out = new double[groups][n];
    int perGroup = heads / groups;
    for (int row = 0; row < rowCount * heads; row++) {
      double[] a = out[(row % heads) / perGroup];
      int o = row * n;
      for (int j = 0; j < n; j++) {
        a[j] += probs[o + j];
      }
    }
    return out;
  }

  /**
   * Eq. 6: the smallest {@code p} such that the {@code p} largest scores sum to at least {@code
   * tau} of all scores (double sums in descending order); {@code a.length} when {@code tau >= 1}.
   */
  public static int dynamicCount(double[] a, double tau) {
    int n = a.length;
    if (tau >= 1 || n == 0) {
      return n;
    }
    double[] s = a.clone();
    Arrays.sort(s);
    double total = 0;
    for (int i = n - 1; i >= 0; i--) {
      total += s[i];
    }
    double target = tau * total;
    double acc = 0;
    for (int i = n - 1; i >= 0; i--) {
      acc += s[i];
      if (acc >= target) {
        return n - i;
      }
    }
    return n;
  }

  /** Eq. 7: {@code ã_j = a_j / (n - j)}, the number of rows that can see row {@code j}. */
  public static double[] normalise(double[] a) {
    int n = a.length;
    double[] out = new double[n];
    for (int j = 0; j < n; j++) {
      out[j] = a[j] / (n - j);
    }
    return out;
  }

  /**
   * The important rows, ascending: rows 0 and {@code n-1}, then the highest {@code scores} (lower
   * row first on ties) until {@code max(p, min(n, 2))} rows are chosen.
   */
  public static int[] select(double[] scores, int p) {
    int n = scores.length;
    int want = Math.min(n, Math.max(p, 2));
    boolean[] chosen = new boolean[n];
    chosen[0] = true;
    chosen[n - 1] = true;
    int count = n == 1 ? 1 : 2;
    for (int r : rank(scores)) {
      if (count >= want) {
        break;
      }
      if (!chosen[r]) {
        chosen[r] = true;
        count++;
      }
    }
    int[] out = new int[count];
    int c = 0;
    for (int r = 0; r < n; r++) {
      if (chosen[r]) {
        out[c++] = r;
      }
    }
    return out;
  }

  /** The {@code p} highest scores' rows (lower row first on ties), in rank order. */
  static int[] topRows(double[] scores, int p) {
    return Arrays.copyOf(rank(scores), p);
  }

  private static int[] rank(double[] scores) {
    Integer[] idx = new Integer[scores.length];
    for (int i = 0; i < idx.length; i++) {
      idx[i] = i;
    }
    Arrays.sort(
        idx,
        (x, y) -> {
          int c = Double.compare(scores[y], scores[x]);
          return c != 0 ? c : Integer.compare(x, y);
        });
    int[] out = new int[idx.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = idx[i];
    }
    return out;
  }

  /**
   * Decode-time scores of a window of keys: {@code a_j = Σ_h softmax_j(q_h·k_j/√d)} over the
   * window's keys only.
   */
  public static double[] windowScores(
      float[] q, float[] keys, int[] order, int heads, int kvHeads, int headDim) {
    return windowScoresPerGroup(q, keys, order, heads, kvHeads, headDim, 1)[0];
  }

  /**
   * {@link #windowScores} per KV head: {@code a[g]_j} sums only the query heads of KV head {@code
   * g}.
   */
  public static double[][] windowScoresPerKvHead(
      float[] q, float[] keys, int[] order, int heads, int kvHeads, int headDim) {
    return windowScoresPerGroup(q, keys, order, heads, kvHeads, headDim, kvHeads);
  }

  private static double[][] windowScoresPerGroup(
      float[] q, float[] keys, int[] order, int heads, int kvHeads, int headDim, int groups) {
    float[] probs =
        AttentionRows.compute(
            q,
            new int[] {0},
            new int[] {Integer.MAX_VALUE},
            keys,
            order,
            heads,
            kvHeads,
            headDim,
            (float) (1.0 / Math.sqrt(headDim)),
            null);
    return sumHeads(probs, 1, heads, order.length, groups);
  }

  @Override
  public String toString() {
    return "ZipVl(" + config.toJson() + ")";
  }
}
