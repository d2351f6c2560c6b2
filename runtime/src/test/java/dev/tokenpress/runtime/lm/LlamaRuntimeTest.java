package dev.tokenpress.runtime.lm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.api.DecodeContext;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.KvAppendContext;
import dev.tokenpress.operators.api.KvFinalizeContext;
import dev.tokenpress.operators.api.LogitsContext;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.PrefillContext;
import dev.tokenpress.operators.api.PrefillLayerContext;
import dev.tokenpress.operators.api.QueryRows;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.checkpoint.LmCheckpoint;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.ReferenceLlama;
import dev.tokenpress.runtime.testing.TestOperator;
import dev.tokenpress.runtime.testing.TinyCheckpoints;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The split runtime on a random LLaVA-layout checkpoint (text_config, language_model.* names, GQA,
 * untied head) against an independent double-precision reference, against the fused variant, and
 * with the hooks that drop rows and bias attention.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LlamaRuntimeTest {
  private static final int[] PROMPT = {1, 17, 5, 44, 23, 9, 61, 30, 12, 7};
  private static final int NEW = 6;
  private static final double TOL = 1e-4;

  private LmCheckpoint ckpt;
  private ReferenceLlama ref;
  private LlamaRuntime split;
  private FusedLlamaRuntime fused;

  @BeforeAll
  void setUp(@TempDir Path tmp) {
    Path dir = TinyCheckpoints.write(tmp.resolve("ckpt"), 42, true, false);
    BundleBuilder.build(dir, tmp.resolve("bundle"), new BuildOptions(true, true));
    Bundle bundle = Bundle.open(tmp.resolve("bundle"));
    ckpt = LmCheckpoint.open(dir);
    ref = new ReferenceLlama(ckpt);
    split = LlamaRuntime.open(bundle, SessionConfig.singleThreaded());
    fused = FusedLlamaRuntime.open(bundle, SessionConfig.singleThreaded());
  }

  @AfterAll
  void tearDown() {
    for (AutoCloseable c : new AutoCloseable[] {split, fused, ckpt}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  private LmRequest request(KvPrecision kv) {
    return new LmRequest(
        split.embedding().embed(PROMPT),
        LmRequest.sequentialPositions(PROMPT.length),
        new int[0],
        NEW,
        kv,
        true);
  }

  private float[][] rows(int[] ids) {
    float[][] x = new float[ids.length][TinyCheckpoints.HIDDEN];
    for (int i = 0; i < ids.length; i++) {
      split.embedding().lookup(ids[i], x[i], 0);
    }
    return x;
  }

  private static int[] concat(int[] a, int[] b, int bLen) {
    int[] out = Arrays.copyOf(a, a.length + bLen);
    System.arraycopy(b, 0, out, a.length, bLen);
    return out;
  }

  private static double maxDiff(float[] a, double[] b) {
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }

  @Test
  void readsLlavaTextConfigAndPrefixedWeights() {
    assertThat(ckpt.family()).isEqualTo("llava");
    assertThat(ckpt.decoderPrefix()).isEqualTo("language_model.model.");
    assertThat(split.spec().numKvHeads()).isEqualTo(TinyCheckpoints.KV_HEADS);
    assertThat(split.spec().numLayers()).isEqualTo(TinyCheckpoints.LAYERS);
    assertThat(split.spec().vocabSize()).isEqualTo(TinyCheckpoints.VOCAB);
  }

  @Test
  void everyStepMatchesTheReference() {
    GenerationResult r = split.generate(request(KvPrecision.FP32));
    int[] gen = r.tokenIds();
    assertThat(gen).hasSize(NEW);
    List<float[]> logits = r.stepLogits();
    for (int s = 0; s < logits.size(); s++) {
      int[] seq = concat(PROMPT, gen, s);
      double[] want =
          ref.lastLogits(rows(seq), LmRequest.sequentialPositions(seq.length), Map.of(), null);
      assertThat(maxDiff(logits.get(s), want)).as("step %d", s).isLessThanOrEqualTo(TOL);
    }
    assertThat(r.kvCache().lengths()).containsOnly(PROMPT.length + NEW - 1);
    assertThat(r.kvCache().nextPosition()).isEqualTo(PROMPT.length + NEW - 1);
    assertThat(r.flops().decodeSteps()).isEqualTo(NEW - 1);
    assertThat(r.flops().prefillPerLayer()[0])
        .isEqualTo(LmFlops.layer(split.spec(), PROMPT.length, PROMPT.length));
  }

  @Test
  void fusedVariantGivesTheSameLogits() {
    GenerationResult a = split.generate(request(KvPrecision.FP32));
    GenerationResult b = fused.generate(request(KvPrecision.FP32));
    assertThat(b.tokenIds()).containsExactly(a.tokenIds());
    for (int s = 0; s < NEW; s++) {
      float[] x = a.stepLogits().get(s);
      float[] y = b.stepLogits().get(s);
      for (int i = 0; i < x.length; i++) {
        assertThat((double) Math.abs(x[i] - y[i]))
            .as("step %d logit %d", s, i)
            .isLessThanOrEqualTo(TOL);
      }
    }
  }

  private static final ModelShape SHAPE =
      new ModelShape(
          2,
          2,
          2,
          4,
          true,
          0,
          TinyCheckpoints.LAYERS,
          TinyCheckpoints.HEADS,
          TinyCheckpoints.KV_HEADS,
          TinyCheckpoints.HIDDEN);

  private static HookRunner plan(TokenOperator... ops) {
    return new HookRunner(List.of(ops), SHAPE, 0L);
  }

  /** Keeps {@code keep} (indices into the layout's rows) after LM layer {@code layer}. */
  private static TokenOperator dropAfter(String name, int layer, int[] keep) {
    return new TestOperator(name, EnumSet.of(Hook.PREFILL_AFTER)) {
      @Override
      public TokenSelection afterPrefillLayer(PrefillLayerContext c) {
        return c.layer() == layer
            ? TokenSelection.of(c.layout().length(), keep, PositionMode.KEEP_ORIGINAL)
            : TokenSelection.keepAll(c.layout().length());
      }
    };
  }

  @Test
  void repackingPositionsAfterALayerMatchesTheReference() {
    int[] keep = {0, 2, 3, 6, 9};
    HookRunner hooks =
        plan(
            new TestOperator("repack", EnumSet.of(Hook.PREFILL_AFTER)) {
              @Override
              public TokenSelection afterPrefillLayer(PrefillLayerContext c) {
                return c.layer() == 0
                    ? TokenSelection.of(c.layout().length(), keep, PositionMode.REPACK)
                    : TokenSelection.keepAll(c.layout().length());
              }
            });
    GenerationResult r = split.generate(request(KvPrecision.FP32), hooks);
    assertThat(hooks.layout().positionIds()).containsExactly(0, 1, 2, 3, 4);
    assertThat(hooks.layout().nextPosition()).isEqualTo(keep.length);
    LayerKvCache l0 = r.kvCache().layer(0);
    LayerKvCache l1 = r.kvCache().layer(1);
    assertThat(Arrays.copyOf(l0.positions(), PROMPT.length))
        .containsExactly(LmRequest.sequentialPositions(10));
    assertThat(Arrays.copyOf(l1.positions(), keep.length + 1)).containsExactly(0, 1, 2, 3, 4, 5);
    assertThat(Arrays.copyOf(l1.tokenIndices(), keep.length)).containsExactly(keep);
    // prefill: layer 1 on runs at positions 0..4 (its q/k were re-rotated), as the reference
    // computes
    Map<Integer, int[]> ka = new HashMap<>();
    ka.put(0, keep);
    double[] want =
        ref.lastLogits(rows(PROMPT), LmRequest.sequentialPositions(PROMPT.length), ka, null, true);
    assertThat(maxDiff(r.stepLogits().get(0), want)).isLessThanOrEqualTo(TOL);
    double[] unpacked =
        ref.lastLogits(rows(PROMPT), LmRequest.sequentialPositions(PROMPT.length), ka, null, false);
    assertThat(maxDiff(r.stepLogits().get(0), unpacked))
        .as("re-packing changes the logits")
        .isGreaterThan(10 * TOL);
  }

  @Test
  void droppingRowsAfterALayerKeepsPositionsAndMatchesTheReference() {
    int[] keep = {0, 2, 3, 6, 9}; // original positions survive; last row kept
    HookRunner hooks = plan(dropAfter("drop", 0, keep));
    GenerationResult r = split.generate(request(KvPrecision.FP32), hooks);
    assertThat(hooks.keptMaps()).hasSize(1);
    assertThat(hooks.keptMaps().get(0).original()).containsExactly(keep);
    KvCache cache = r.kvCache();
    int steps = NEW - 1;
    assertThat(cache.lengths())
        .containsExactly(PROMPT.length + steps, keep.length + steps, keep.length + steps);
    LayerKvCache l1 = cache.layer(1);
    assertThat(Arrays.copyOf(l1.positions(), keep.length)).containsExactly(keep);
    assertThat(Arrays.copyOf(l1.tokenIndices(), keep.length)).containsExactly(keep);
    assertThat(l1.positions()[keep.length]).isEqualTo(PROMPT.length); // first decode token
    int[] gen = r.tokenIds();
    for (int s = 0; s < NEW; s++) {
      int[] seq = concat(PROMPT, gen, s);
      int[] keepAll = new int[keep.length + s];
      System.arraycopy(keep, 0, keepAll, 0, keep.length);
      for (int i = 0; i < s; i++) {
        keepAll[keep.length + i] = PROMPT.length + i;
      }
      Map<Integer, int[]> ka = new HashMap<>();
      ka.put(0, keepAll);
      double[] want =
          ref.lastLogits(rows(seq), LmRequest.sequentialPositions(seq.length), ka, null);
      assertThat(maxDiff(r.stepLogits().get(s), want)).as("step %d", s).isLessThanOrEqualTo(TOL);
    }
  }

  @Test
  void operatorsAtOneLayerComposeInPlanOrderWithSignalsOfTheRemainingRows() {
    // a keeps 7 of 10 rows, b then keeps 4 of those 7: the same as one operator keeping 4 of 10
    int[] a = {0, 1, 2, 4, 6, 8, 9};
    int[] b = {0, 2, 5, 6};
    Signal sig = new Signal.QueryRowAttention(0, QueryRows.LAST_PROMPT_TOKEN);
    List<FloatTensor> seen = new ArrayList<>();
    TokenOperator second =
        new TestOperator("b", EnumSet.of(Hook.PREFILL_AFTER), sig) {
          @Override
          public TokenSelection afterPrefillLayer(PrefillLayerContext c) {
            if (c.layer() != 0) {
              return TokenSelection.keepAll(c.layout().length());
            }
            seen.add(c.signals().get(sig));
            return TokenSelection.of(c.layout().length(), b, PositionMode.KEEP_ORIGINAL);
          }
        };
    TokenOperator first =
        new TestOperator("a", EnumSet.of(Hook.PREFILL_AFTER), sig) {
          @Override
          public TokenSelection afterPrefillLayer(PrefillLayerContext c) {
            if (c.layer() != 0) {
              return TokenSelection.keepAll(c.layout().length());
            }
            seen.add(c.signals().get(sig));
            return TokenSelection.of(c.layout().length(), a, PositionMode.KEEP_ORIGINAL);
          }
        };
    HookRunner two = plan(first, second);
    GenerationResult composed = split.generate(request(KvPrecision.FP32), two);
    int[] both = {0, 2, 8, 9};
    GenerationResult once =
        split.generate(request(KvPrecision.FP32), plan(dropAfter("once", 0, both)));
    assertThat(composed.tokenIds()).containsExactly(once.tokenIds());
    assertThat(composed.kvCache().lengths()).containsExactly(once.kvCache().lengths());
    assertThat(two.keptMaps()).extracting(KeptMap::operator).containsExactly("a", "b");
    assertThat(two.layout().originalIndices()).containsExactly(both);
    // the second operator's signal: the first one's row restricted to the 7 remaining keys
    assertThat(seen.get(0).shape()).containsExactly(1, PROMPT.length);
    assertThat(seen.get(1).shape()).containsExactly(1, a.length);
    for (int i = 0; i < a.length; i++) {
      assertThat(seen.get(1).get(i)).isEqualTo(seen.get(0).get(a[i]));
    }
  }

  @Test
  void prefillBiasesAddUpAndSignalsUseTheProductionKernel() {
    int t = PROMPT.length;
    Signal heads = new Signal.QueryRowHeadAttention(1, QueryRows.TEXT_AFTER_VISUAL);
    Signal mean = new Signal.QueryRowAttention(1, QueryRows.TEXT_AFTER_VISUAL);
    Signal hidden0 = new Signal.LmHiddenStates(0);
    Map<Signal, FloatTensor> got = new HashMap<>();
    // two operators' biases add up: rows 4.. may not look at key 3, rows 6.. not at key 5
    TokenOperator maskA =
        new TestOperator("mask-a", EnumSet.of(Hook.PREFILL), hidden0) {
          @Override
          public FloatTensor prefillBias(PrefillContext c) {
            if (c.layer() == 0) {
              got.put(hidden0, c.signals().get(hidden0));
            }
            if (c.layer() != 1) {
              return null;
            }
            float[] bias = new float[c.layout().length() * c.cacheLength()];
            for (int i = 4; i < c.layout().length(); i++) {
              bias[i * c.cacheLength() + 3] = -1e9f;
            }
            return FloatTensor.wrap(bias, c.layout().length(), c.cacheLength());
          }
        };
    TokenOperator maskB =
        new TestOperator("mask-b", EnumSet.of(Hook.PREFILL, Hook.PREFILL_AFTER), heads, mean) {
          @Override
          public FloatTensor prefillBias(PrefillContext c) {
            if (c.layer() != 1) {
              return null;
            }
            float[] bias = new float[c.layout().length() * c.cacheLength()];
            for (int i = 6; i < c.layout().length(); i++) {
              bias[i * c.cacheLength() + 5] = -1e9f;
            }
            return FloatTensor.wrap(bias, c.layout().length(), c.cacheLength());
          }

          @Override
          public TokenSelection afterPrefillLayer(PrefillLayerContext c) {
            if (c.layer() == 1) {
              got.put(heads, c.signals().get(heads));
              got.put(mean, c.signals().get(mean));
            }
            return TokenSelection.keepAll(c.layout().length());
          }
        };
    HookRunner hooks = plan(maskA, maskB);
    int[] vis = new int[t];
    Arrays.fill(vis, -1);
    vis[0] = 0;
    vis[1] = 1;
    vis[2] = 2; // rows 0..2 "visual": TEXT_AFTER_VISUAL = rows 3..t-1
    int[] seq = LmRequest.sequentialPositions(t);
    hooks.startPrefill(SequenceLayout.of(seq, seq, vis));
    GenerationResult r = split.generate(request(KvPrecision.FP32), hooks);
    boolean[][][] mask = new boolean[TinyCheckpoints.LAYERS][][];
    mask[1] = new boolean[t][t];
    for (int i = 4; i < t; i++) {
      mask[1][i][3] = true;
      mask[1][i][5] = i >= 6;
    }
    double[] want = ref.lastLogits(rows(PROMPT), LmRequest.sequentialPositions(t), Map.of(), mask);
    double[] unmasked =
        ref.lastLogits(rows(PROMPT), LmRequest.sequentialPositions(t), Map.of(), null);
    assertThat(maxDiff(r.stepLogits().get(0), want)).isLessThanOrEqualTo(TOL);
    assertThat(maxDiff(r.stepLogits().get(0), unmasked)).isGreaterThan(TOL);

    // layer 0's input hidden states are the input embeddings
    assertThat(got.get(hidden0).toArray()).containsExactly(split.embedding().embed(PROMPT));
    // per-head rows: causal, each sums to 1, head mean = the head-mean signal (one kernel)
    FloatTensor h = got.get(heads);
    int nh = TinyCheckpoints.HEADS;
    assertThat(h.shape()).containsExactly(t - 3, nh, t);
    FloatTensor m = got.get(mean);
    for (int q = 0; q < t - 3; q++) {
      for (int hd = 0; hd < nh; hd++) {
        double sum = 0;
        for (int j = 0; j < t; j++) {
          float p = h.get((q * nh + hd) * t + j);
          sum += p;
          if (j > q + 3) {
            assertThat(p).isZero();
          }
        }
        assertThat(sum).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-5));
      }
      float[] one = new float[nh * t];
      System.arraycopy(h.toArray(), q * nh * t, one, 0, one.length);
      float[] expect = Kernels.meanOverHeads(one, nh, t);
      for (int j = 0; j < t; j++) {
        assertThat(m.get(q * t + j)).isEqualTo(expect[j]);
      }
    }
  }

  @Test
  void everyLmHookIsCalledInGenerationOrder() {
    List<String> calls = new ArrayList<>();
    TokenOperator log =
        new TestOperator(
            "log",
            EnumSet.of(
                Hook.PREFILL,
                Hook.PREFILL_AFTER,
                Hook.KV_FINALIZE,
                Hook.DECODE,
                Hook.LOGITS,
                Hook.KV_APPEND)) {
          @Override
          public FloatTensor prefillBias(PrefillContext c) {
            calls.add("prefill" + c.layer());
            return null;
          }

          @Override
          public TokenSelection afterPrefillLayer(PrefillLayerContext c) {
            calls.add("after" + c.layer());
            return TokenSelection.keepAll(c.layout().length());
          }

          @Override
          public void finalizeKv(KvFinalizeContext c) {
            calls.add("finalize" + c.cache().layer(0).length());
          }

          @Override
          public float[] logits(LogitsContext c) {
            calls.add("logits" + c.step() + "/" + c.generated().length);
            return null;
          }

          @Override
          public float[] decodeBias(DecodeContext c) {
            calls.add("decode" + c.step() + "." + c.layer());
            return new float[c.cache().length()]; // zero bias changes nothing
          }

          @Override
          public void kvAppended(KvAppendContext c) {
            calls.add("append" + c.step());
          }
        };
    GenerationResult plain =
        split.generate(
            new LmRequest(
                split.embedding().embed(PROMPT),
                LmRequest.sequentialPositions(PROMPT.length),
                new int[0],
                2,
                KvPrecision.FP32,
                false));
    GenerationResult hooked =
        split.generate(
            new LmRequest(
                split.embedding().embed(PROMPT),
                LmRequest.sequentialPositions(PROMPT.length),
                new int[0],
                2,
                KvPrecision.FP32,
                false),
            plan(log));
    assertThat(hooked.tokenIds()).containsExactly(plain.tokenIds());
    assertThat(calls)
        .containsExactly(
            "prefill0",
            "after0",
            "prefill1",
            "after1",
            "prefill2",
            "finalize" + PROMPT.length,
            "logits0/0",
            "decode0.0",
            "decode0.1",
            "decode0.2",
            "append0",
            "logits1/1");
  }

  @Test
  void logitsOperatorsChainAndKvOperatorsChangeTheCache() {
    int banned = split.generate(request(KvPrecision.FP32)).tokenIds()[0];
    TokenOperator ban =
        new TestOperator("ban", EnumSet.of(Hook.LOGITS)) {
          @Override
          public float[] logits(LogitsContext c) {
            float[] l = c.logits().toArray();
            l[banned] = Float.NEGATIVE_INFINITY;
            return l;
          }
        };
    List<Float> seenBanned = new ArrayList<>();
    TokenOperator after =
        new TestOperator("after", EnumSet.of(Hook.LOGITS)) {
          @Override
          public float[] logits(LogitsContext c) {
            seenBanned.add(c.logits().get(banned));
            return null;
          }
        };
    TokenOperator trim =
        new TestOperator("trim", EnumSet.of(Hook.KV_FINALIZE, Hook.KV_APPEND)) {
          @Override
          public void finalizeKv(KvFinalizeContext c) {
            c.cache().layer(2).retain(new int[] {0, c.cache().layer(2).length() - 1});
          }

          @Override
          public void kvAppended(KvAppendContext c) {
            LayerKvCache l = c.cache().layer(1);
            if (c.step() == 0) {
              l.retain(new int[] {l.length() - 1});
            }
          }
        };
    GenerationResult r = split.generate(request(KvPrecision.FP32), plan(ban, after, trim));
    assertThat(r.tokenIds()[0]).isNotEqualTo(banned);
    assertThat(seenBanned).isNotEmpty().containsOnly(Float.NEGATIVE_INFINITY);
    int steps = NEW - 1;
    assertThat(r.kvCache().lengths()).containsExactly(PROMPT.length + steps, steps, 2 + steps);
  }

  @Test
  void fp16KvCacheStaysClose() {
    GenerationResult a = split.generate(request(KvPrecision.FP32));
    GenerationResult b = split.generate(request(KvPrecision.FP16));
    assertThat(b.kvCache().layer(0).precisions()).containsOnly(KvPrecision.FP16);
    assertThat(b.kvCache().storedBytes() * 2).isEqualTo(a.kvCache().storedBytes());
    for (int s = 0; s < NEW; s++) {
      float[] x = a.stepLogits().get(s);
      float[] y = b.stepLogits().get(s);
      for (int i = 0; i < x.length; i++) {
        assertThat(Math.abs(x[i] - y[i])).isLessThan(2e-2f);
      }
    }
  }

  @Test
  void stopsOnStopTokenAndRejectsPromptsBeyondTheContext() {
    GenerationResult r = split.generate(request(KvPrecision.FP32));
    int first = r.tokenIds()[0];
    GenerationResult stopped =
        split.generate(
            new LmRequest(
                split.embedding().embed(PROMPT),
                LmRequest.sequentialPositions(PROMPT.length),
                new int[] {first},
                NEW,
                KvPrecision.FP32,
                false));
    assertThat(stopped.tokenIds()).isEmpty();
    assertThat(stopped.stopReason()).isEqualTo(StopReason.STOP_TOKEN);

    int[] pos = LmRequest.sequentialPositions(PROMPT.length);
    pos[pos.length - 1] = TinyCheckpoints.MAX_POS;
    assertThatThrownBy(
            () ->
                split.generate(
                    new LmRequest(
                        split.embedding().embed(PROMPT),
                        pos,
                        new int[0],
                        1,
                        KvPrecision.FP32,
                        false)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("context");

    assertThatThrownBy(
            () ->
                split.generate(
                    request(KvPrecision.FP32), plan(dropAfter("bad", 0, new int[] {0, 1}))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("last row");
  }
}
