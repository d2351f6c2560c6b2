package dev.tokenpress.runtime.lm;

import static dev.tokenpress.runtime.lm.LmGraphNames.ATTN;
import static dev.tokenpress.runtime.lm.LmGraphNames.BIAS;
import static dev.tokenpress.runtime.lm.LmGraphNames.HIDDEN;
import static dev.tokenpress.runtime.lm.LmGraphNames.HIDDEN_OUT;
import static dev.tokenpress.runtime.lm.LmGraphNames.K;
import static dev.tokenpress.runtime.lm.LmGraphNames.LOGITS;
import static dev.tokenpress.runtime.lm.LmGraphNames.POSITION_IDS;
import static dev.tokenpress.runtime.lm.LmGraphNames.Q;
import static dev.tokenpress.runtime.lm.LmGraphNames.V;

import ai.onnxruntime.OnnxTensor;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.SparseAttention;
import dev.tokenpress.operators.kernels.DecodeAttention;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.onnx.DirectTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One generation on the split runtime. Calling sequence per token (L layers, L+1 ORT calls):
 *
 * <pre>
 * embed (Java) -> pre_0 -> q,k,v
 * for layer l: store k,v in the cache; attention (prefill: ORT graph with causal + hook bias;
 *              decode: Java kernel over the stored cache)
 *              [PREFILL hook: bias]
 *              -> l &lt; L-1: mid_l (post l + pre l+1) -> hidden, q,k,v  [PREFILL_AFTER hook: drop rows]
 *              -> l = L-1: tail (post + norm + LM head; prefill: last row only) -> logits
 * </pre>
 *
 * <p>Decode-step tensors have fixed shapes, so they are allocated once (direct buffers, pinned
 * outputs) and every call reuses them; the hidden state ping-pongs between two buffers without
 * leaving native memory.
 */
final class SplitGeneration implements AutoCloseable {
  private static final float MASKED = -1e9f;

  private final LlamaRuntime rt;
  private final LmSpec spec;
  private final LmRequest req;
  private final HookRunner hooks;
  private final boolean hooked;
  private final boolean prefillView;
  private final boolean rewrites;
  private final KvCache cache;
  private final DecodeAttention decodeAttention = new DecodeAttention();
  private float[] invFreq;
  private final float scale;
  private final int layers;
  private final int d;
  private final int qW;
  private final int kvW;

  // decode-step buffers (T = 1), reused by every step
  private final DirectTensor hidA;
  private final DirectTensor hidB;
  private final DirectTensor pos1;
  private final DirectTensor q1;
  private final DirectTensor k1;
  private final DirectTensor v1;
  private final DirectTensor attn1;
  private final DirectTensor logits1;
  private final Map<String, OnnxTensor> pre0In;
  private final Map<String, OnnxTensor> qkvOut;
  private final List<Map<String, OnnxTensor>> midIn = new ArrayList<>();
  private final List<Map<String, OnnxTensor>> midOut = new ArrayList<>();
  private final Map<String, OnnxTensor> tailIn;
  private final Map<String, OnnxTensor> tailOut;
  private final DirectTensor tailHidden;
  private final float[] qRow;
  private final float[] kRow;
  private final float[] vRow;
  private final float[] attnRow;
  private final float[] embRow;
  private final float[][] stepQueries;

  private final long[] prefillFlops;
  private long prefillHeadFlops;
  private long decodeFlops;
  private long decodeOrtNanos;
  private long decodeAttentionNanos;

  /**
   * Requests of the plan's {@code BRANCH} sequences (e.g. DAMRO's outlier-only sequence), run in
   * step.
   */
  private final List<LmRequest> branchRequests;

  /** The prefilled rows this generation continues, or null. */
  private final LmPrefix prefix;

  /** Prefix prefill ({@link #prefillPrefix}): every layer's float32 keys and values, else null. */
  private float[][] capturedKeys;

  private float[][] capturedValues;

  SplitGeneration(LlamaRuntime rt, LmRequest req, HookRunner hooks) {
    this(rt, req, hooks, List.of());
  }

  /**
   * A generation that continues {@code prefix} (no operator: the rows of {@code req} are prefilled
   * as one chunk against the prefix's keys and values, then decoding runs as usual).
   */
  SplitGeneration(LlamaRuntime rt, LmPrefix prefix, LmRequest req) {
    this(rt, req, null, List.of(), prefix);
  }

  /**
   * A generation with {@code branches}: sequences run beside the main one, each with its own KV
   * cache, fed the token the main sequence chose at every step; their logits reach the {@code
   * LOGITS} operators ({@link HookRunner#logits(int, float[], int[], float[][])}) and their FLOPs
   * and time count in the result's prefill and decode.
   */
  SplitGeneration(LlamaRuntime rt, LmRequest req, HookRunner hooks, List<LmRequest> branches) {
    this(rt, req, hooks, branches, null);
  }

  private SplitGeneration(
      LlamaRuntime rt, LmRequest req, HookRunner hooks, List<LmRequest> branches, LmPrefix prefix) {
    this.branchRequests = List.copyOf(branches);
    this.prefix = prefix;
    if (prefix != null && prefix.layers() != rt.spec().numLayers()) {
      throw new IllegalArgumentException(
          "the prefix holds "
              + prefix.layers()
              + " layers, the model has "
              + rt.spec().numLayers());
    }
    if (!branches.isEmpty() && (hooks == null || !hooks.acts(Hook.LOGITS))) {
      throw new IllegalArgumentException(
          "branch sequences need an operator acting at LOGITS to read them");
    }
    this.rt = rt;
    this.spec = rt.spec();
    this.req = req;
    this.hooks = hooks;
    this.hooked = hooks != null && hooks.actsInLm();
    this.prefillView = hooked && (hooks.acts(Hook.PREFILL) || hooks.acts(Hook.PREFILL_AFTER));
    this.rewrites = hooked && hooks.rewritesAttention();
    this.layers = spec.numLayers();
    this.d = spec.hiddenSize();
    this.qW = spec.qWidth();
    this.kvW = spec.kvWidth();
    this.scale = (float) (1.0 / Math.sqrt(spec.headDim()));
    this.cache =
        new KvCache(
            layers,
            new KvLayout(spec.numKvHeads(), spec.headDim()),
            UniformKvQuantization.appendCodec(req.kvPrecision()));
    if (req.kvPrecision().quantized() && hooks != null && hooks.quantizesKv()) {
      throw new IllegalArgumentException(
          "kv.dtype "
              + req.kvPrecision().name().toLowerCase(java.util.Locale.ROOT)
              + " quantises the KV cache"
              + " and so does the plan; use a float kv.dtype (float32, float16) with a KV-quantising plan");
    }
    this.prefillFlops = new long[layers];

    hidA = DirectTensor.floats(1, 1, d);
    hidB = DirectTensor.floats(1, 1, d);
    pos1 = DirectTensor.longs(1, 1);
    q1 = DirectTensor.floats(1, 1, qW);
    k1 = DirectTensor.floats(1, 1, kvW);
    v1 = DirectTensor.floats(1, 1, kvW);
    attn1 = DirectTensor.floats(1, 1, qW);
    logits1 = DirectTensor.floats(1, 1, spec.vocabSize());
    pre0In = Map.of(HIDDEN, hidA.tensor(), POSITION_IDS, pos1.tensor());
    qkvOut = Map.of(Q, q1.tensor(), K, k1.tensor(), V, v1.tensor());
    for (int l = 0; l < layers - 1; l++) {
      DirectTensor in = l % 2 == 0 ? hidA : hidB;
      DirectTensor out = l % 2 == 0 ? hidB : hidA;
      midIn.add(Map.of(ATTN, attn1.tensor(), HIDDEN, in.tensor(), POSITION_IDS, pos1.tensor()));
      midOut.add(Map.of(HIDDEN_OUT, out.tensor(), Q, q1.tensor(), K, k1.tensor(), V, v1.tensor()));
    }
    tailHidden = (layers - 1) % 2 == 0 ? hidA : hidB;
    tailIn = Map.of(ATTN, attn1.tensor(), HIDDEN, tailHidden.tensor());
    tailOut = Map.of(LOGITS, logits1.tensor());
    qRow = new float[qW];
    kRow = new float[kvW];
    vRow = new float[kvW];
    attnRow = new float[qW];
    embRow = new float[d];
    stepQueries = hooked && hooks.acts(Hook.KV_APPEND) ? new float[layers][] : null;
  }

  GenerationResult run() {
    int rows = req.rows();
    if (req.inputEmbedsShared().length != rows * d) {
      throw new IllegalArgumentException(
          "inputEmbeds has "
              + req.inputEmbedsShared().length / rows
              + " floats per row, the model's hidden size is "
              + d);
    }
    int maxPos = 0;
    for (int p : req.positionsShared()) {
      maxPos = Math.max(maxPos, p);
    }
    if (maxPos >= spec.maxPositionEmbeddings()) {
      throw new IllegalArgumentException(
          "prompt reaches position "
              + maxPos
              + ", beyond the model's context of "
              + spec.maxPositionEmbeddings()
              + " positions");
    }
    if (hooked) {
      if (!hooks.hasLayout()) {
        int[] text = new int[rows];
        java.util.Arrays.fill(text, -1);
        hooks.startPrefill(
            SequenceLayout.of(req.tokenIndicesShared(), req.positionsShared(), text));
      }
      if (hooks.layout().length() != rows) {
        throw new IllegalArgumentException(
            "the plan's prefill layout has "
                + hooks.layout().length()
                + " rows, the request "
                + rows);
      }
    }
    List<SplitGeneration> side = new ArrayList<>();
    try {
      return run(side);
    } finally {
      for (SplitGeneration g : side) {
        g.close();
      }
    }
  }

  /**
   * Prefills the request's rows only (no operator, no logits kept) and returns them as a prefix
   * that {@link #SplitGeneration(LlamaRuntime, LmPrefix, LmRequest)} continues.
   */
  LmPrefix prefillPrefix() {
    if (hooks != null || prefix != null) {
      throw new IllegalStateException(
          "a prefix prefill runs without operators and from an empty cache");
    }
    long t0 = System.nanoTime();
    capturedKeys = new float[layers][];
    capturedValues = new float[layers][];
    prefill(req.inputEmbedsShared(), req.positionsShared(), req.tokenIndicesShared());
    return new LmPrefix(
        capturedKeys,
        capturedValues,
        req.tokenIndicesShared(),
        req.positionsShared(),
        cache.nextTokenIndex(),
        cache.nextPosition(),
        System.nanoTime() - t0);
  }

  private GenerationResult run(List<SplitGeneration> side) {
    int rows = req.rows();
    long t0 = System.nanoTime();
    if (prefix != null) {
      for (int l = 0; l < layers; l++) {
        prefix.appendTo(cache.layer(l), l);
      }
      cache.advance(prefix.nextTokenIndex(), prefix.nextPosition());
    }
    if (hooked && hooks.probeDepth() >= 0) {
      ProbePrefill.run(
          rt,
          hooks,
          req.inputEmbedsShared(),
          req.positionsShared(),
          req.tokenIndicesShared(),
          hooks.probeDepth());
    }
    float[] logits =
        prefill(req.inputEmbedsShared(), req.positionsShared(), req.tokenIndicesShared());
    float[][] sideLogits = new float[branchRequests.size()][];
    for (int b = 0; b < sideLogits.length; b++) {
      SplitGeneration g = new SplitGeneration(rt, branchRequests.get(b), null);
      side.add(g);
      sideLogits[b] =
          g.prefill(g.req.inputEmbedsShared(), g.req.positionsShared(), g.req.tokenIndicesShared());
    }
    long prefillNanos = System.nanoTime() - t0;
    if (prefix != null) {
      // the record's FLOPs as one prefill of the whole sequence (what it costs alone)
      for (int l = 0; l < layers; l++) {
        prefillFlops[l] = LmFlops.layer(spec, prefix.rows() + rows, prefix.rows() + rows);
      }
      rows += prefix.rows();
    }
    if (hooked) {
      hooks.kvFinalize(cache);
    }
    UniformKvQuantization.afterPrefill(cache, req.kvPrecision());

    long t1 = System.nanoTime();
    List<float[]> recorded = req.recordLogits() ? new ArrayList<>() : null;
    int[] out = new int[Math.max(req.maxNewTokens(), 0)];
    int n = 0;
    int steps = 0;
    StopReason reason = StopReason.MAX_NEW_TOKENS;
    while (n < req.maxNewTokens()) {
      if (hooked) {
        int[] sofar = java.util.Arrays.copyOf(out, n);
        logits =
            side.isEmpty()
                ? hooks.logits(steps, logits, sofar)
                : hooks.logits(steps, logits, sofar, sideLogits);
      }
      if (recorded != null) {
        recorded.add(logits.clone());
      }
      int next = Greedy.argmax(logits);
      if (req.isStop(next)) {
        reason = StopReason.STOP_TOKEN;
        break;
      }
      out[n++] = next;
      if (n == req.maxNewTokens()) {
        break;
      }
      if (cache.nextPosition() >= spec.maxPositionEmbeddings()) {
        reason = StopReason.CONTEXT_LIMIT;
        break;
      }
      logits = decodeStep(next, steps);
      for (int b = 0; b < side.size(); b++) {
        sideLogits[b] = side.get(b).decodeStep(next, steps);
      }
      if (hooked) {
        hooks.kvAppended(steps, cache, stepQueries);
      }
      steps++;
    }
    long decodeNanos = System.nanoTime() - t1;
    for (SplitGeneration g : side) {
      for (int l = 0; l < layers; l++) {
        prefillFlops[l] += g.prefillFlops[l];
      }
      prefillHeadFlops += g.prefillHeadFlops;
      decodeFlops += g.decodeFlops;
      decodeOrtNanos += g.decodeOrtNanos;
      decodeAttentionNanos += g.decodeAttentionNanos;
    }
    StageTimings timings =
        new StageTimings(prefillNanos, decodeNanos, steps, decodeOrtNanos, decodeAttentionNanos);
    LmFlops flops = new LmFlops(prefillFlops, prefillHeadFlops, decodeFlops, steps);
    return new GenerationResult(
        java.util.Arrays.copyOf(out, n), reason, rows, flops, timings, cache, recorded);
  }

  // ---------------------------------------------------------------- prefill

  /** Per-row prefill buffers for {@code t} rows. */
  private static final class Rows implements AutoCloseable {
    final int t;
    DirectTensor hidCur;
    DirectTensor hidNext;
    final DirectTensor pos;
    final DirectTensor q;
    final DirectTensor k;
    final DirectTensor v;
    final DirectTensor attn;

    Rows(int t, int d, int qW, int kvW) {
      this.t = t;
      hidCur = DirectTensor.floats(1, t, d);
      hidNext = DirectTensor.floats(1, t, d);
      pos = DirectTensor.longs(1, t);
      q = DirectTensor.floats(1, t, qW);
      k = DirectTensor.floats(1, t, kvW);
      v = DirectTensor.floats(1, t, kvW);
      attn = DirectTensor.floats(1, t, qW);
    }

    @Override
    public void close() {
      hidCur.close();
      hidNext.close();
      pos.close();
      q.close();
      k.close();
      v.close();
      attn.close();
    }
  }

  private float[] prefill(float[] embeds, int[] positions, int[] tokenIndices) {
    int t = positions.length;
    int[] pos = positions.clone();
    int[] tok = tokenIndices.clone();
    if (tok[0] < cache.nextTokenIndex()) {
      throw new IllegalArgumentException(
          "token index " + tok[0] + " precedes the cache's next index " + cache.nextTokenIndex());
    }
    Rows r = new Rows(t, d, qW, kvW);
    DirectTensor bias = null;
    int biasT = -1;
    int biasS = -1;
    try {
      r.hidCur.put(embeds, 0, t * d);
      setPositions(r.pos, pos);
      rt.pre0()
          .runInto(
              Map.of(HIDDEN, r.hidCur.tensor(), POSITION_IDS, r.pos.tensor()),
              Map.of(Q, r.q.tensor(), K, r.k.tensor(), V, r.v.tensor()));
      for (int l = 0; l < layers; l++) {
        LayerKvCache lc = cache.layer(l);
        int before = lc.length();
        float[] kRows = new float[r.t * kvW];
        float[] vRows = new float[r.t * kvW];
        r.k.get(0, kRows, 0, kRows.length);
        r.v.get(0, vRows, 0, vRows.length);
        if (capturedKeys != null) {
          capturedKeys[l] = kRows;
          capturedValues[l] = vRows;
        }
        lc.appendRows(kRows, 0, vRows, 0, r.t, tok, pos, 0);
        int s = lc.length();

        PrefillLayer view = null;
        float[] qArr = null;
        if (prefillView) {
          float[] q = new float[r.t * qW];
          r.q.get(0, q, 0, q.length);
          qArr = q;
          DirectTensor in = r.hidCur;
          int rowsNow = r.t;
          view =
              new PrefillLayer(
                  l,
                  spec,
                  tok,
                  q,
                  lc,
                  () -> {
                    float[] h = new float[rowsNow * d];
                    in.get(0, h, 0, h.length);
                    return h;
                  });
        }
        float[] hookBias = prefillView ? hooks.prefillBias(l, s, view) : null;
        if (hookBias != null && hookBias.length != r.t * s) {
          throw new IllegalArgumentException(
              "prefill bias of layer "
                  + l
                  + " has "
                  + hookBias.length
                  + " values, expected "
                  + r.t
                  + "x"
                  + s);
        }
        SparseAttention sparse = prefillView ? hooks.prefillSparse(l, s, view) : null;
        if (sparse == null
            && (bias == null || biasT != r.t || biasS != s || before > 0 || hookBias != null)) {
          if (bias != null) {
            bias.close();
          }
          bias = causalBias(tok, lc.tokenIndices(), hookBias);
          biasT = hookBias == null && before == 0 ? r.t : -1;
          biasS = s;
        }
        DirectTensor kAll = null;
        DirectTensor vAll = null;
        float[] kFull = kRows;
        float[] vFull = vRows;
        if (sparse != null) {
          if (before > 0) {
            throw new IllegalStateException(
                "sparse prefill attention at layer "
                    + l
                    + " needs the prompt"
                    + " in one prefill chunk; the cache already held "
                    + before
                    + " entries");
          }
          if (rewrites) {
            throw new IllegalStateException(
                "layer "
                    + l
                    + ": a sparse prefill (zipvl mode sparse) and an"
                    + " attention rewrite (var) cannot share a layer; use zipvl mode kv-only");
          }
          int[] qk =
              SparsePrefillAttention.run(
                  rt.attention(), r.q, r.k, r.v, r.attn, tok, sparse, hookBias, qW, kvW);
          prefillFlops[l] = LmFlops.layer(spec, r.t, qk[0], qk[1]);
        } else
          try {
            OnnxTensor kIn = r.k.tensor();
            OnnxTensor vIn = r.v.tensor();
            if (before > 0) {
              kAll = DirectTensor.floats(1, s, kvW);
              vAll = DirectTensor.floats(1, s, kvW);
              float[] ka = new float[s * kvW];
              float[] va = new float[s * kvW];
              if (prefix != null && before == prefix.rows()) {
                // the prefix's float32 rows, as a prefill of the whole sequence sees them
                prefix.copyKeys(l, ka);
                prefix.copyValues(l, va);
              } else {
                lc.decodeKeys(ka, 0);
                lc.decodeValues(va, 0);
              }
              System.arraycopy(kRows, 0, ka, before * kvW, kRows.length);
              System.arraycopy(vRows, 0, va, before * kvW, vRows.length);
              kAll.put(ka, 0, ka.length);
              vAll.put(va, 0, va.length);
              kIn = kAll.tensor();
              vIn = vAll.tensor();
              kFull = ka;
              vFull = va;
            }
            rt.attention()
                .runInto(
                    Map.of(Q, r.q.tensor(), K, kIn, V, vIn, BIAS, bias.tensor()),
                    Map.of(ATTN, r.attn.tensor()));
            if (rewrites && qArr != null) {
              AttentionRewrite.prefill(
                  hooks, spec, l, qArr, tok, kFull, vFull, lc.tokenIndices(), hookBias, r.attn);
            }
          } finally {
            if (kAll != null) {
              kAll.close();
              vAll.close();
            }
          }
        if (sparse == null) {
          prefillFlops[l] = LmFlops.layer(spec, r.t, s);
        }

        if (l < layers - 1) {
          rt.mid(l)
              .runInto(
                  Map.of(
                      ATTN,
                      r.attn.tensor(),
                      HIDDEN,
                      r.hidCur.tensor(),
                      POSITION_IDS,
                      r.pos.tensor()),
                  Map.of(
                      HIDDEN_OUT,
                      r.hidNext.tensor(),
                      Q,
                      r.q.tensor(),
                      K,
                      r.k.tensor(),
                      V,
                      r.v.tensor()));
          int[] keep = prefillView ? hooks.afterPrefillLayer(l, view) : null;
          if (keep != null && keep.length != r.t) {
            checkKeep(keep, r.t, l);
            Rows kept = select(r, keep);
            r.close();
            r = kept;
            pos = pick(pos, keep);
            tok = pick(tok, keep);
            int[] packed = hooks.layout().positionIds();
            if (!java.util.Arrays.equals(packed, pos)) {
              // PositionMode.REPACK: layer l+1's q/k were rotated at the old positions
              rerotate(r, pos, packed);
              pos = packed;
            }
            setPositions(r.pos, pos);
          } else {
            swapHidden(r);
          }
        } else {
          // logits only for the last row: post + head are row-wise
          copyRow(r.hidCur, r.t - 1, d, tailHidden);
          copyRow(r.attn, r.t - 1, qW, attn1);
          rt.tail().runInto(tailIn, tailOut);
          prefillHeadFlops = LmFlops.head(spec, 1);
        }
      }
      int maxPos = 0;
      for (int p : pos) {
        maxPos = Math.max(maxPos, p);
      }
      cache.advance(tok[tok.length - 1] + 1, Math.max(maxPos + 1, cache.nextPosition()));
      float[] logits = new float[spec.vocabSize()];
      logits1.get(0, logits, 0, logits.length);
      return logits;
    } finally {
      r.close();
      if (bias != null) {
        bias.close();
      }
    }
  }

  /** hidNext holds the new hidden state; it becomes the current one. */
  private static void swapHidden(Rows r) {
    DirectTensor t = r.hidCur;
    r.hidCur = r.hidNext;
    r.hidNext = t;
  }

  private Rows select(Rows r, int[] keep) {
    Rows k = new Rows(keep.length, d, qW, kvW);
    copyRows(r.hidNext, keep, d, k.hidCur);
    copyRows(r.q, keep, qW, k.q);
    copyRows(r.k, keep, kvW, k.k);
    copyRows(r.v, keep, kvW, k.v);
    return k;
  }

  /**
   * Moves the next layer's q and k rows from positions {@code from} to {@code to}: RoPE is a
   * rotation by {@code position·invFreq}, so rotating by the difference gives the rotation at the
   * new position (exact in real arithmetic; float rounding of order 1e-6 relative).
   */
  private void rerotate(Rows r, int[] from, int[] to) {
    if (invFreq == null) {
      invFreq =
          dev.tokenpress.operators.kernels.Rope.inverseFrequencies(
              spec.headDim(), spec.ropeTheta());
    }
    float[] q = new float[r.t * qW];
    float[] k = new float[r.t * kvW];
    r.q.get(0, q, 0, q.length);
    r.k.get(0, k, 0, k.length);
    int hd = spec.headDim();
    for (int i = 0; i < r.t; i++) {
      int delta = to[i] - from[i];
      if (delta != 0) {
        dev.tokenpress.operators.kernels.Rope.applyHalfSplit(
            q, i * qW, qW / hd, hd, delta, invFreq);
        dev.tokenpress.operators.kernels.Rope.applyHalfSplit(
            k, i * kvW, kvW / hd, hd, delta, invFreq);
      }
    }
    r.q.put(q, 0, q.length);
    r.k.put(k, 0, k.length);
  }

  private static void copyRows(DirectTensor from, int[] rows, int width, DirectTensor to) {
    float[] row = new float[width];
    float[] all = new float[rows.length * width];
    for (int i = 0; i < rows.length; i++) {
      from.get(rows[i] * width, row, 0, width);
      System.arraycopy(row, 0, all, i * width, width);
    }
    to.put(all, 0, all.length);
  }

  private static void copyRow(DirectTensor from, int row, int width, DirectTensor to) {
    float[] buf = new float[width];
    from.get(row * width, buf, 0, width);
    to.put(buf, 0, width);
  }

  private static void checkKeep(int[] keep, int rows, int layer) {
    int prev = -1;
    for (int k : keep) {
      if (k <= prev || k >= rows) {
        throw new IllegalArgumentException(
            "rows kept after layer "
                + layer
                + " must be ascending within [0, "
                + rows
                + "), found "
                + k
                + " after "
                + prev);
      }
      prev = k;
    }
    if (keep.length == 0 || keep[keep.length - 1] != rows - 1) {
      throw new IllegalArgumentException(
          "rows kept after layer " + layer + " must include the last row " + (rows - 1));
    }
  }

  private static int[] pick(int[] a, int[] idx) {
    int[] out = new int[idx.length];
    for (int i = 0; i < idx.length; i++) {
      out[i] = a[idx[i]];
    }
    return out;
  }

  private static void setPositions(DirectTensor t, int[] pos) {
    for (int i = 0; i < pos.length; i++) {
      t.setLong(i, pos[i]);
    }
  }

  /**
   * {@code [1, 1, t, s]}: 0 where key j precedes or is query i (by token index), else masked; plus
   * the hook bias.
   */
  static DirectTensor causalBias(int[] queryOrder, int[] keyOrder, float[] hookBias) {
    int t = queryOrder.length;
    int s = keyOrder.length;
    float[] b = new float[t * s];
    for (int i = 0; i < t; i++) {
      int o = i * s;
      for (int j = 0; j < s; j++) {
        b[o + j] = keyOrder[j] <= queryOrder[i] ? 0f : MASKED;
      }
    }
    if (hookBias != null) {
      for (int i = 0; i < b.length; i++) {
        b[i] += hookBias[i];
      }
    }
    DirectTensor bt = DirectTensor.floats(1, 1, t, s);
    bt.put(b, 0, b.length);
    return bt;
  }

  // ---------------------------------------------------------------- decode

  private float[] decodeStep(int token, int step) {
    int position = cache.nextPosition();
    int tokenIndex = cache.nextTokenIndex();
    rt.embedding().lookup(token, embRow, 0);
    hidA.put(embRow, 0, d);
    int[] layerPos = null;
    if (hooked && hooks.acts(Hook.DECODE)) {
      // operators may give each layer its own position (MustDrop's own-cache-length quirk)
      layerPos = new int[layers];
      for (int l = 0; l < layers; l++) {
        layerPos[l] = hooks.decodePosition(l, step, position, cache.layer(l));
      }
    }
    pos1.setLong(0, layerPos == null ? position : layerPos[0]);
    long t0 = System.nanoTime();
    rt.pre0().runInto(pre0In, qkvOut);
    long ort = System.nanoTime() - t0;
    long att = 0;
    for (int l = 0; l < layers; l++) {
      q1.get(0, qRow, 0, qW);
      k1.get(0, kRow, 0, kvW);
      v1.get(0, vRow, 0, kvW);
      LayerKvCache lc = cache.layer(l);
      if (stepQueries != null) {
        stepQueries[l] = qRow.clone();
      }
      lc.append(kRow, 0, vRow, 0, tokenIndex, layerPos == null ? position : layerPos[l]);
      float[] bias = hooked ? hooks.decodeBias(l, step, lc) : null;
      long t1 = System.nanoTime();
      if (rewrites) {
        AttentionRewrite.decode(
            hooks, decodeAttention, l, step, qRow, lc, spec.numHeads(), scale, bias, attnRow);
      } else {
        decodeAttention.attend(qRow, 0, lc, spec.numHeads(), scale, bias, attnRow, 0, null);
      }
      attn1.put(attnRow, 0, qW);
      long t2 = System.nanoTime();
      if (l < layers - 1) {
        if (layerPos != null) {
          pos1.setLong(0, layerPos[l + 1]);
        }
        rt.mid(l).runInto(midIn.get(l), midOut.get(l));
      } else {
        rt.tail().runInto(tailIn, tailOut);
      }
      att += t2 - t1;
      ort += System.nanoTime() - t2;
      decodeFlops += LmFlops.layer(spec, 1, lc.length());
    }
    decodeFlops += LmFlops.head(spec, 1);
    decodeOrtNanos += ort;
    decodeAttentionNanos += att;
    cache.advance(tokenIndex + 1, position + 1);
    float[] logits = new float[spec.vocabSize()];
    logits1.get(0, logits, 0, logits.length);
    return logits;
  }

  @Override
  public void close() {
    hidA.close();
    hidB.close();
    pos1.close();
    q1.close();
    k1.close();
    v1.close();
    attn1.close();
    logits1.close();
  }
}
