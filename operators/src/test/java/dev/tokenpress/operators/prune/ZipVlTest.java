package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.KvAppendContext;
import dev.tokenpress.operators.api.KvFinalizeContext;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PrefillContext;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.SparseAttention;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.ZipVlConfig;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.kv.MixedPrecisionEncoder;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.testing.Golden;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** ZipVL against {@code src/test/python/gen_golden_zipvl.py}, plus config and plan rules. */
class ZipVlTest {
  private static final Map<String, Object> G = Golden.load("zipvl/zipvl.json");
  private static final int N = Golden.integer(G.get("n"));
  private static final int HEADS = Golden.integer(G.get("heads"));
  private static final int KV_HEADS = Golden.integer(G.get("kv_heads"));
  private static final int D = Golden.integer(G.get("head_dim"));
  private static final long SEED = ((Number) G.get("probe_seed")).longValue();
  private static final float[] Q = Golden.floats(G.get("q"));
  private static final float[] K = Golden.floats(G.get("k"));
  private static final float[] V = Golden.floats(G.get("v"));
  private static final int[] ORDER = Golden.ints(G.get("order"));

  /** One LM layer, so the golden tensors are layer 0. */
  private static final ModelShape SHAPE =
      new ModelShape(2, 2, 2, 2, true, 0, 1, HEADS, KV_HEADS, HEADS * D);

  @Test
  void probesAreTheRecentRowsPlusAShuffleDrawnFromTheSeed() {
    int recent = Golden.integer(G.get("probes_recent"));
    int random = Golden.integer(G.get("probes_random"));
    assertThat(ZipVl.probes(N, recent, random, SEED)).containsExactly(Golden.ints(G.get("probes")));
    assertThat(ZipVl.probes(N, recent, random, SEED + 1))
        .containsExactly(Golden.ints(G.get("probes_other_seed")));
    // short sequences: every row is a probe
    assertThat(ZipVl.probes(7, recent, random, SEED))
        .containsExactly(Golden.ints(G.get("probes_small")));
    assertThat(ZipVl.probes(1, 64, 64, SEED)).containsExactly(0);
    assertThat(ZipVl.probes(300, 64, 64, 3L)).hasSize(128).isSorted().doesNotHaveDuplicates();
  }

  @Test
  void accumulatedAttentionDynamicRatioAndNormalisationMatchNumpy() {
    int[] probes = Golden.ints(G.get("probes"));
    double[] a = ZipVl.accumulate(Q, K, ORDER, probes, HEADS, KV_HEADS, D);
    double[] want = Golden.doubles(G.get("a"));
    for (int j = 0; j < N; j++) {
      assertThat(a[j]).as("a[%d]", j).isCloseTo(want[j], within(1e-5));
    }
    // each probe row and head sums to 1
    assertThat(Arrays.stream(a).sum()).isCloseTo(probes.length * HEADS, within(1e-4));
    double[] norm = ZipVl.normalise(want);
    double[] wantNorm = Golden.doubles(G.get("normalised"));
    for (int j = 0; j < N; j++) {
      assertThat(norm[j]).isCloseTo(wantNorm[j], within(1e-12));
    }
    for (Map<String, Object> c : Golden.objects(G.get("cases"))) {
      double tau = Golden.number(c.get("tau"));
      int p = ZipVl.dynamicCount(a, tau);
      assertThat(p).as("Eq. 6 at tau %s", tau).isEqualTo(Golden.integer(c.get("p")));
      assertThat(ZipVl.select(ZipVl.normalise(a), p))
          .as("selection at tau %s", tau)
          .containsExactly(Golden.ints(c.get("important")));
    }
  }

  @Test
  void dynamicCountAndSelectionInvariants() {
    assertThat(ZipVl.dynamicCount(new double[] {0.7, 0.1, 0.2}, 0.7)).isEqualTo(1);
    assertThat(ZipVl.dynamicCount(new double[] {0.7, 0.1, 0.2}, 0.71)).isEqualTo(2);
    assertThat(ZipVl.dynamicCount(new double[] {0.7, 0.1, 0.2}, 1.0)).isEqualTo(3);
    // rows 0 and n-1 always, then the best scores, lower row on ties
    assertThat(ZipVl.select(new double[] {0, 5, 5, 1, 0}, 3)).containsExactly(0, 1, 4);
    assertThat(ZipVl.select(new double[] {0, 5, 5, 1, 0}, 1)).containsExactly(0, 4);
    assertThat(ZipVl.select(new double[] {3}, 1)).containsExactly(0);
  }

  private static PrefillContext context(int layer) {
    int[] pos = ORDER.clone();
    SequenceLayout layout = SequenceLayout.of(ORDER, pos, filled(N, -1));
    SignalValues sv =
        SignalValues.builder()
            .put(new Signal.LmQueries(layer), FloatTensor.wrap(Q.clone(), N, HEADS * D))
            .put(new Signal.LmKeys(layer), FloatTensor.wrap(K.clone(), N, KV_HEADS * D))
            .build();
    return new PrefillContext(SHAPE, layer, layout, N, sv, 77L);
  }

  private static int[] filled(int n, int v) {
    int[] a = new int[n];
    Arrays.fill(a, v);
    return a;
  }

  private static ZipVlConfig config(double tau, int bitsHigh, ZipVlConfig.Mode mode, int interval) {
    return config(tau, bitsHigh, mode, interval, ZipVlConfig.Heads.SHARED);
  }

  private static ZipVlConfig config(
      double tau, int bitsHigh, ZipVlConfig.Mode mode, int interval, ZipVlConfig.Heads heads) {
    return new ZipVlConfig(
        tau,
        Golden.integer(G.get("probes_recent")),
        Golden.integer(G.get("probes_random")),
        bitsHigh,
        2,
        interval,
        mode,
        ZipVlConfig.UnimportantRows.IMPORTANT_KEYS,
        heads,
        5L);
  }

  /**
   * Per (entry, KV head) precision read from the exported chunks: every pair in exactly one chunk.
   */
  private static KvPrecision[][] headPrecisions(LayerKvCache lc) {
    KvPrecision[][] out = new KvPrecision[lc.layout().numKvHeads()][lc.length()];
    for (KvChunk ch : lc.chunks()) {
      int first = ch.kvHead() < 0 ? 0 : ch.kvHead();
      int last = ch.kvHead() < 0 ? lc.layout().numKvHeads() - 1 : ch.kvHead();
      for (int e : ch.entries()) {
        for (int g = first; g <= last; g++) {
          assertThat(out[g][e]).as("entry %d head %d in two chunks", e, g).isNull();
          out[g][e] = ch.precision();
        }
      }
    }
    return out;
  }

  @Test
  void perKvHeadScoresSelectionAndCacheMatchNumpy() {
    int[] probes = Golden.ints(G.get("probes"));
    double[][] a = ZipVl.accumulatePerKvHead(Q, K, ORDER, probes, HEADS, KV_HEADS, D);
    List<Object> wantA = Golden.list(G.get("per_head_a"));
    double[] shared = ZipVl.accumulate(Q, K, ORDER, probes, HEADS, KV_HEADS, D);
    for (int g = 0; g < KV_HEADS; g++) {
      double[] want = Golden.doubles(wantA.get(g));
      for (int j = 0; j < N; j++) {
        assertThat(a[g][j]).as("a[%d][%d]", g, j).isCloseTo(want[j], within(1e-5));
      }
    }
    for (int j = 0; j < N; j++) {
      assertThat(a[0][j] + a[1][j])
          .as("the heads' sums add up to the shared sum")
          .isCloseTo(shared[j], within(1e-9));
    }
    for (Map<String, Object> c : Golden.objects(G.get("per_head"))) {
      double tau = Golden.number(c.get("tau"));
      int[] wantP = Golden.ints(c.get("p"));
      List<Object> wantSets = Golden.list(c.get("important"));
      boolean[][] masks = new boolean[KV_HEADS][N];
      for (int g = 0; g < KV_HEADS; g++) {
        int p = ZipVl.dynamicCount(a[g], tau);
        assertThat(p).as("Eq. 6 of head %d at tau %s", g, tau).isEqualTo(wantP[g]);
        int[] rows = ZipVl.select(ZipVl.normalise(a[g]), p);
        assertThat(rows)
            .as("head %d at tau %s", g, tau)
            .containsExactly(Golden.ints(wantSets.get(g)));
        for (int r : rows) {
          masks[g][r] = true;
        }
      }
      KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP32));
      cache.layer(0).appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
      cache.layer(0).recodeMixedPerHead(0, N, masks, MixedPrecisionEncoder.ZIPVL);
      assertClose(
          cache.layer(0).keys(), Golden.floats(c.get("k_deq")), "per-head keys at tau " + tau);
      assertClose(
          cache.layer(0).values(), Golden.floats(c.get("v_deq")), "per-head values at tau " + tau);
    }
  }

  @Test
  void perKvHeadOperatorStoresEachHeadsSetAndAttendsOverTheirUnion() {
    ZipVlConfig cfg = config(0.9, 4, ZipVlConfig.Mode.SPARSE, 0, ZipVlConfig.Heads.PER_KV_HEAD);
    TokenOperator op = cfg.build().forRecord();
    SparseAttention s = op.prefillSparse(context(0));
    long seed = ZipVl.probeSeed(77L, 5L, 0);
    int[] probes = ZipVl.probes(N, cfg.probesRecent(), cfg.probesRandom(), seed);
    double[][] a = ZipVl.accumulatePerKvHead(Q, K, ORDER, probes, HEADS, KV_HEADS, D);
    int[][] sets = new int[KV_HEADS][];
    int[] ps = new int[KV_HEADS];
    java.util.TreeSet<Integer> union = new java.util.TreeSet<>();
    for (int g = 0; g < KV_HEADS; g++) {
      ps[g] = ZipVl.dynamicCount(a[g], 0.9);
      sets[g] = ZipVl.select(ZipVl.normalise(a[g]), ps[g]);
      for (int r : sets[g]) {
        union.add(r);
      }
    }
    assertThat(sets[0]).as("the heads choose differently on this input").isNotEqualTo(sets[1]);
    assertThat(s.rows()).containsExactly(union.stream().mapToInt(Integer::intValue).toArray());

    KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP16));
    cache.layer(0).appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
    op.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), cache, 77L));
    KvPrecision[][] prec = headPrecisions(cache.layer(0));
    for (int g = 0; g < KV_HEADS; g++) {
      for (int r = 0; r < N; r++) {
        assertThat(prec[g][r])
            .as("entry %d head %d", r, g)
            .isEqualTo(Arrays.binarySearch(sets[g], r) >= 0 ? KvPrecision.INT4 : KvPrecision.INT2);
      }
    }
    KvCompressionInfo info = cache.layer(0).compressionInfo();
    assertThat(info.heads()).isEqualTo("per_kv_head");
    assertThat(info.headRatioCounts()).containsExactly(ps);
    assertThat(info.headImportant()).containsExactly(sets[0].length, sets[1].length);
    assertThat(info.ratioCount()).isEqualTo(Math.max(ps[0], ps[1]));
    assertThat(info.important()).isEqualTo(union.size());
    assertThat(info.importantRatio())
        .isCloseTo((sets[0].length + sets[1].length) / (2.0 * N), within(1e-12));

    // kv-only: the same per-head storage, dense attention
    TokenOperator kvOnly =
        config(0.9, 4, ZipVlConfig.Mode.KV_ONLY, 0, ZipVlConfig.Heads.PER_KV_HEAD)
            .build()
            .forRecord();
    assertThat(kvOnly.prefillSparse(context(0))).isNull();
  }

  @Test
  void perKvHeadDecodeReEncodesEachHeadsWindowAsNumpyDoes() {
    @SuppressWarnings("unchecked")
    Map<String, Object> dec = (Map<String, Object>) G.get("decode");
    @SuppressWarnings("unchecked")
    Map<String, Object> ph = (Map<String, Object>) dec.get("per_head");
    float[] kw = Golden.floats(dec.get("k"));
    float[] vw = Golden.floats(dec.get("v"));
    int[] worder = Golden.ints(dec.get("order"));
    int m = worder.length;
    float[] qd = Golden.floats(dec.get("q"));
    double[][] scores = ZipVl.windowScoresPerKvHead(qd, kw, worder, HEADS, KV_HEADS, D);
    double[] shared = ZipVl.windowScores(qd, kw, worder, HEADS, KV_HEADS, D);
    for (int j = 0; j < m; j++) {
      assertThat(scores[0][j] + scores[1][j]).isCloseTo(shared[j], within(1e-9));
    }
    ZipVlConfig cfg =
        config(
            Golden.number(dec.get("tau")),
            4,
            ZipVlConfig.Mode.KV_ONLY,
            m,
            ZipVlConfig.Heads.PER_KV_HEAD);
    TokenOperator op = cfg.build().forRecord();
    op.prefillSparse(context(0));
    KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP32));
    LayerKvCache lc = cache.layer(0);
    lc.appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
    op.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), cache, 77L));
    int w = KV_HEADS * D;
    for (int step = 0; step < m; step++) {
      lc.append(kw, step * w, vw, step * w, worder[step], worder[step]);
      op.kvAppended(new KvAppendContext(SHAPE, step, cache, 77L, new float[][] {qd}));
    }
    assertThat(lc.trailingFloatEntries()).isZero();
    KvPrecision[][] prec = headPrecisions(lc);
    int[] wantP = Golden.ints(ph.get("p"));
    List<Object> wantSets = Golden.list(ph.get("important"));
    for (int g = 0; g < KV_HEADS; g++) {
      assertThat(ZipVl.dynamicCount(scores[g], cfg.tau())).isEqualTo(wantP[g]);
      int[] set = Golden.ints(wantSets.get(g));
      for (int j = 0; j < m; j++) {
        assertThat(prec[g][N + j])
            .as("entry %d head %d", N + j, g)
            .isEqualTo(Arrays.binarySearch(set, j) >= 0 ? KvPrecision.INT4 : KvPrecision.INT2);
      }
    }
    assertClose(
        Arrays.copyOfRange(lc.keys(), N * w, (N + m) * w),
        Golden.floats(ph.get("k_deq")),
        "per-head window keys");
    assertClose(
        Arrays.copyOfRange(lc.values(), N * w, (N + m) * w),
        Golden.floats(ph.get("v_deq")),
        "per-head window values");
  }

  @Test
  void sparseSetAndMixedPrecisionCacheMatchNumpy() {
    for (Map<String, Object> c : Golden.objects(G.get("cases"))) {
      double tau = Golden.number(c.get("tau"));
      ZipVlConfig cfg = config(tau, 4, ZipVlConfig.Mode.SPARSE, 0);
      // the golden's probes: drive the pieces with SEED, then check the operator end to end
      int[] probes = ZipVl.probes(N, cfg.probesRecent(), cfg.probesRandom(), SEED);
      double[] a = ZipVl.accumulate(Q, K, ORDER, probes, HEADS, KV_HEADS, D);
      int[] important = ZipVl.select(ZipVl.normalise(a), ZipVl.dynamicCount(a, tau));
      assertThat(important).containsExactly(Golden.ints(c.get("important")));

      KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP32));
      cache.layer(0).appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
      boolean[] mask = new boolean[N];
      for (int r : important) {
        mask[r] = true;
      }
      cache
          .layer(0)
          .recodeMixed(0, N, mask, dev.tokenpress.operators.kv.MixedPrecisionEncoder.ZIPVL);
      assertClose(cache.layer(0).keys(), Golden.floats(c.get("k_deq")), "keys at tau " + tau);
      assertClose(cache.layer(0).values(), Golden.floats(c.get("v_deq")), "values at tau " + tau);
    }
  }

  @Test
  void operatorDecidesAtPrefillAndQuantisesAtKvFinalize() {
    ZipVlConfig cfg = config(0.9, 4, ZipVlConfig.Mode.SPARSE, 0);
    TokenOperator op = cfg.build().forRecord();
    assertThat(op.hooks()).containsExactlyInAnyOrder(Hook.PREFILL, Hook.KV_FINALIZE);
    SparseAttention s = op.prefillSparse(context(0));
    long seed = ZipVl.probeSeed(77L, 5L, 0);
    int[] probes = ZipVl.probes(N, cfg.probesRecent(), cfg.probesRandom(), seed);
    double[] a = ZipVl.accumulate(Q, K, ORDER, probes, HEADS, KV_HEADS, D);
    int p = ZipVl.dynamicCount(a, 0.9);
    int[] important = ZipVl.select(ZipVl.normalise(a), p);
    assertThat(s.rows()).containsExactly(important);
    assertThat(s.othersAttend()).isTrue();
    assertThat(s.inputCount()).isEqualTo(N);

    KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP16));
    int[] tokens = ORDER;
    cache.layer(0).appendRows(K, 0, V, 0, N, tokens, tokens, 0);
    op.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), cache, 77L));
    KvPrecision[] prec = cache.layer(0).precisions();
    for (int r = 0; r < N; r++) {
      assertThat(prec[r])
          .isEqualTo(Arrays.binarySearch(important, r) >= 0 ? KvPrecision.INT4 : KvPrecision.INT2);
    }
    KvCompressionInfo info = cache.layer(0).compressionInfo();
    assertThat(info.probeSeed()).isEqualTo(seed);
    assertThat(info.ratioCount()).isEqualTo(p);
    assertThat(info.important()).isEqualTo(important.length);
    assertThat(info.scored()).isEqualTo(N);
    assertThat(info.mode()).isEqualTo("sparse");
    assertThat(cache.layer(0).trailingFloatEntries()).isZero();

    // kv-only: the same decision, dense attention
    TokenOperator kvOnly = config(0.9, 4, ZipVlConfig.Mode.KV_ONLY, 0).build().forRecord();
    assertThat(kvOnly.prefillSparse(context(0))).isNull();
  }

  @Test
  void finalizeMatchesEntriesByTokenIndexAfterAnEarlierOperatorDroppedSome() {
    ZipVlConfig cfg = config(0.9, 4, ZipVlConfig.Mode.KV_ONLY, 0);
    TokenOperator op = cfg.build().forRecord();
    op.prefillSparse(context(0));
    KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP32));
    cache.layer(0).appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
    KvPrecision[] before = new KvPrecision[N];
    {
      KvCache full = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP32));
      full.layer(0).appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
      TokenOperator op2 = cfg.build().forRecord();
      op2.prefillSparse(context(0));
      op2.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), full, 77L));
      before = full.layer(0).precisions();
    }
    int[] keep = {0, 2, 3, 7, 11, 23};
    cache.layer(0).retain(keep);
    op.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), cache, 77L));
    KvPrecision[] after = cache.layer(0).precisions();
    for (int i = 0; i < keep.length; i++) {
      assertThat(after[i]).isEqualTo(before[keep[i]]);
    }
  }

  @Test
  void tauOneWithSixteenBitImportantStorageKeepsEveryEntryInFloat16() {
    TokenOperator op = config(1.0, 16, ZipVlConfig.Mode.SPARSE, 0).build().forRecord();
    assertThat(op.prefillSparse(context(0)).dense()).isTrue();
    KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP16));
    cache.layer(0).appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
    float[] k = cache.layer(0).keys();
    op.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), cache, 77L));
    assertThat(cache.layer(0).precisions()).containsOnly(KvPrecision.FP16);
    assertThat(cache.layer(0).keys()).containsExactly(k);
  }

  @Test
  void decodeReEncodesEachIntervalWithTheStepQueryAsNumpyDoes() {
    @SuppressWarnings("unchecked")
    Map<String, Object> dec = (Map<String, Object>) G.get("decode");
    float[] kw = Golden.floats(dec.get("k"));
    float[] vw = Golden.floats(dec.get("v"));
    int[] worder = Golden.ints(dec.get("order"));
    int m = worder.length;
    double[] scores =
        ZipVl.windowScores(Golden.floats(dec.get("q")), kw, worder, HEADS, KV_HEADS, D);
    double[] want = Golden.doubles(dec.get("scores"));
    for (int j = 0; j < m; j++) {
      assertThat(scores[j]).isCloseTo(want[j], within(1e-5));
    }

    ZipVlConfig cfg = config(Golden.number(dec.get("tau")), 4, ZipVlConfig.Mode.KV_ONLY, m);
    TokenOperator op = cfg.build().forRecord();
    assertThat(op.hooks()).contains(Hook.KV_APPEND);
    op.prefillSparse(context(0));
    KvCache cache = new KvCache(1, new KvLayout(KV_HEADS, D), KvCodec.of(KvPrecision.FP32));
    LayerKvCache lc = cache.layer(0);
    lc.appendRows(K, 0, V, 0, N, ORDER, ORDER, 0);
    op.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), cache, 77L));
    float[][] queries = {Golden.floats(dec.get("q"))};
    int w = KV_HEADS * D;
    for (int step = 0; step < m; step++) {
      lc.append(kw, step * w, vw, step * w, worder[step], worder[step]);
      if (step < m - 1) {
        op.kvAppended(
            new KvAppendContext(SHAPE, step, cache, 77L, new float[][] {new float[HEADS * D]}));
        assertThat(lc.trailingFloatEntries()).isEqualTo(step + 1);
      }
    }
    op.kvAppended(new KvAppendContext(SHAPE, m - 1, cache, 77L, queries));
    assertThat(lc.trailingFloatEntries()).isZero();
    KvPrecision[] prec = lc.precisions();
    int[] important = Golden.ints(dec.get("important"));
    for (int j = 0; j < m; j++) {
      assertThat(prec[N + j])
          .as("entry %d", N + j)
          .isEqualTo(Arrays.binarySearch(important, j) >= 0 ? KvPrecision.INT4 : KvPrecision.INT2);
    }
    assertClose(
        Arrays.copyOfRange(lc.keys(), N * w, (N + m) * w),
        Golden.floats(dec.get("k_deq")),
        "window keys");
    assertClose(
        Arrays.copyOfRange(lc.values(), N * w, (N + m) * w),
        Golden.floats(dec.get("v_deq")),
        "window values");
    // without the runtime's queries the operator refuses rather than guessing
    lc.append(kw, 0, vw, 0, 100, 100);
    TokenOperator op2 = config(0.9, 4, ZipVlConfig.Mode.KV_ONLY, 1).build().forRecord();
    op2.prefillSparse(context(0));
    op2.finalizeKv(new KvFinalizeContext(SHAPE, context(0).layout(), cache, 77L));
    lc.append(kw, 0, vw, 0, 101, 101);
    assertThatThrownBy(() -> op2.kvAppended(new KvAppendContext(SHAPE, 0, cache, 77L)))
        .hasMessageContaining("queries");
  }

  private static void assertClose(float[] got, float[] want, String what) {
    assertThat(got).hasSameSizeAs(want);
    for (int i = 0; i < got.length; i++) {
      assertThat(got[i])
          .as("%s[%d]", what, i)
          .isCloseTo(want[i], within(1e-5f * Math.max(1f, Math.abs(want[i]))));
    }
  }

  @Test
  void configParsesValidatesAndRoundTrips() {
    CompressionPlan p = CompressionPlan.parse("[{\"op\":\"zipvl\"}]");
    assertThat(p.operators().get(0)).isEqualTo(ZipVlConfig.defaults());
    assertThat(CompressionPlan.parse(p.toJson())).isEqualTo(p);
    CompressionPlan q =
        CompressionPlan.parse(
            "[{\"op\":\"zipvl\",\"tau\":0.975,\"probes_recent\":32,"
                + "\"probes_random\":0,\"bits_high\":8,\"bits_low\":4,\"interval\":0,\"mode\":\"kv-only\","
                + "\"unimportant_rows\":\"zero\",\"seed\":9}]");
    ZipVlConfig c = (ZipVlConfig) q.operators().get(0);
    assertThat(c.mode()).isEqualTo(ZipVlConfig.Mode.KV_ONLY);
    assertThat(c.unimportantRows()).isEqualTo(ZipVlConfig.UnimportantRows.ZERO);
    assertThat(c.build().hooks()).doesNotContain(Hook.KV_APPEND);
    assertThat(CompressionPlan.parse(q.toJson())).isEqualTo(q);
    ZipVlConfig perHead =
        (ZipVlConfig)
            CompressionPlan.parse("[{\"op\":\"zipvl\",\"heads\":\"per_kv_head\"}]")
                .operators()
                .get(0);
    assertThat(perHead.heads()).isEqualTo(ZipVlConfig.Heads.PER_KV_HEAD);
    assertThat(perHead.toJsonObject()).containsEntry("heads", "per_kv_head");
    for (String[] bad :
        new String[][] {
          {"\"tau\":0", "zipvl.tau must be in (0, 1]"},
          {"\"tau\":1.5", "zipvl.tau must be in (0, 1]"},
          {"\"probes_recent\":0,\"probes_random\":0", "probes_recent + probes_random must be >= 1"},
          {"\"bits_high\":3", "zipvl.bits_high must be one of [16, 8, 4, 2]"},
          {"\"bits_low\":16", "zipvl.bits_low must be one of [8, 4, 2]"},
          {"\"bits_high\":2,\"bits_low\":4", "bits_low must not exceed bits_high"},
          {"\"interval\":-1", "zipvl.interval must be >= 0"},
          {"\"mode\":\"dense\"", "must be one of [sparse, kv-only]"},
          {"\"heads\":\"per_kv_head\",\"bits_high\":16", "needs bits_high in [8, 4, 2]"},
          {"\"heads\":\"per_head\"", "per_kv_head"},
          {"\"taus\":1", "taus"}
        }) {
      assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"zipvl\"," + bad[0] + "}]"))
          .as(bad[0])
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("plan[0]")
          .hasMessageContaining(bad[1]);
    }
  }

  @Test
  void compositionsBindAndAPlanThatQuantisesTwiceIsRejected() {
    ModelShape shape = new ModelShape(4, 2, 16, 16, true, 2, 4, 4, 2, 128);
    for (String plan :
        List.of(
            "[{\"op\":\"mustdrop\"},{\"op\":\"zipvl\"}]",
            "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"0..0\"},{\"op\":\"zipvl\"}]",
            "[{\"op\":\"fastv\",\"layer\":2,\"keep\":64},{\"op\":\"zipvl\"}]")) {
      List<TokenOperator> ops = CompressionPlan.parse(plan).bind(shape);
      assertThat(ops).hasSize(2);
    }
    assertThatThrownBy(
            () ->
                CompressionPlan.parse("[{\"op\":\"zipvl\"},{\"op\":\"zipvl\",\"tau\":0.9}]")
                    .bind(shape))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("plan[1]")
        .hasMessageContaining("quantise the KV cache once");
  }

  @Test
  void theSharedInstanceRefusesPerRecordWork() {
    ZipVl shared = ZipVlConfig.defaults().build();
    assertThatThrownBy(() -> shared.prefillSparse(context(0)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("forRecord");
    assertThat(shared.signals(SHAPE))
        .containsExactly(new Signal.LmQueries(0), new Signal.LmKeys(0));
    assertThat(shared.quantizesKv()).isTrue();
  }
}
