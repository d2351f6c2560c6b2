package dev.tokenpress.runtime.lm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.checkpoint.LmCheckpoint;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.ReferenceLlama;
import dev.tokenpress.runtime.testing.TinyCheckpoints;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The split runtime on a random LLaVA-layout checkpoint (text_config, language_model.* names,
 * GQA, untied head) against an independent double-precision reference, against the fused
 * variant, and with the hooks that drop rows and bias attention.
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
        return new LmRequest(split.embedding().embed(PROMPT), LmRequest.sequentialPositions(PROMPT.length), new int[0], NEW,
                kv, true);
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
            double[] want = ref.lastLogits(rows(seq), LmRequest.sequentialPositions(seq.length), Map.of(), null);
            assertThat(maxDiff(logits.get(s), want)).as("step %d", s).isLessThanOrEqualTo(TOL);
        }
        assertThat(r.kvCache().lengths()).containsOnly(PROMPT.length + NEW - 1);
        assertThat(r.kvCache().nextPosition()).isEqualTo(PROMPT.length + NEW - 1);
        assertThat(r.flops().decodeSteps()).isEqualTo(NEW - 1);
        assertThat(r.flops().prefillPerLayer()[0]).isEqualTo(LmFlops.layer(split.spec(), PROMPT.length, PROMPT.length));
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
                assertThat((double) Math.abs(x[i] - y[i])).as("step %d logit %d", s, i).isLessThanOrEqualTo(TOL);
            }
        }
    }

    @Test
    void droppingRowsAfterALayerKeepsPositionsAndMatchesTheReference() {
        int[] keep = {0, 2, 3, 6, 9}; // original positions survive; last row kept
        LmHooks drop = new LmHooks() {
            @Override
            public int[] keepAfterLayer(int layer, PrefillLayer view) {
                return layer == 0 ? keep : null;
            }
        };
        GenerationResult r = split.generate(request(KvPrecision.FP32), drop);
        KvCache cache = r.kvCache();
        int steps = NEW - 1;
        assertThat(cache.lengths()).containsExactly(PROMPT.length + steps, keep.length + steps, keep.length + steps);
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
            double[] want = ref.lastLogits(rows(seq), LmRequest.sequentialPositions(seq.length), ka, null);
            assertThat(maxDiff(r.stepLogits().get(s), want)).as("step %d", s).isLessThanOrEqualTo(TOL);
        }
    }

    @Test
    void prefillBiasMasksKeysAndAttentionRowsAreCausal() {
        int t = PROMPT.length;
        List<float[]> signal = new ArrayList<>();
        LmHooks bias = new LmHooks() {
            @Override
            public float[] prefillAttentionBias(int layer, PrefillLayer view) {
                if (layer != 1) {
                    return null;
                }
                signal.add(view.attentionRows(new int[] {t - 1, 2}));
                float[] b = new float[view.rows() * view.cache().length()];
                for (int i = 4; i < view.rows(); i++) {
                    b[i * view.cache().length() + 3] = -1e9f; // rows 4.. may not look at key 3
                }
                return b;
            }
        };
        GenerationResult r = split.generate(request(KvPrecision.FP32), bias);
        boolean[][][] mask = new boolean[TinyCheckpoints.LAYERS][][];
        mask[1] = new boolean[t][t];
        for (int i = 4; i < t; i++) {
            mask[1][i][3] = true;
        }
        double[] want = ref.lastLogits(rows(PROMPT), LmRequest.sequentialPositions(t), Map.of(), mask);
        assertThat(maxDiff(r.stepLogits().get(0), want)).isLessThanOrEqualTo(TOL);

        float[] rowsSig = signal.get(0); // [2 rows][heads][t]
        int heads = TinyCheckpoints.HEADS;
        for (int h = 0; h < heads; h++) {
            double sumLast = 0;
            double sumRow2 = 0;
            for (int j = 0; j < t; j++) {
                sumLast += rowsSig[h * t + j];
                sumRow2 += rowsSig[(heads + h) * t + j];
                if (j > 2) {
                    assertThat(rowsSig[(heads + h) * t + j]).isZero();
                }
            }
            assertThat(sumLast).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-5));
            assertThat(sumRow2).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-5));
        }
    }

    @Test
    void hooksAreCalledInGenerationOrder() {
        List<String> calls = new ArrayList<>();
        LmHooks log = new LmHooks() {
            @Override
            public float[] prefillAttentionBias(int layer, PrefillLayer view) {
                calls.add("prefill" + layer);
                return null;
            }

            @Override
            public int[] keepAfterLayer(int layer, PrefillLayer view) {
                calls.add("after" + layer);
                return null;
            }

            @Override
            public void kvFinalize(KvCache cache) {
                calls.add("finalize");
            }

            @Override
            public void logits(int step, float[] logits) {
                calls.add("logits" + step);
            }

            @Override
            public float[] decodeAttentionBias(int layer, int step, LayerKvCache cache) {
                calls.add("decode" + step + "." + layer);
                return new float[cache.length()]; // zero bias changes nothing
            }

            @Override
            public void kvAppended(int step, KvCache cache) {
                calls.add("append" + step);
            }
        };
        GenerationResult plain = split.generate(new LmRequest(split.embedding().embed(PROMPT),
                LmRequest.sequentialPositions(PROMPT.length), new int[0], 2, KvPrecision.FP32, false));
        GenerationResult hooked = split.generate(new LmRequest(split.embedding().embed(PROMPT),
                LmRequest.sequentialPositions(PROMPT.length), new int[0], 2, KvPrecision.FP32, false), log);
        assertThat(hooked.tokenIds()).containsExactly(plain.tokenIds());
        assertThat(calls).containsExactly("prefill0", "after0", "prefill1", "after1", "prefill2", "finalize", "logits0",
                "decode0.0", "decode0.1", "decode0.2", "append0", "logits1");
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
        GenerationResult stopped = split.generate(new LmRequest(split.embedding().embed(PROMPT),
                LmRequest.sequentialPositions(PROMPT.length), new int[] {first}, NEW, KvPrecision.FP32, false));
        assertThat(stopped.tokenIds()).isEmpty();
        assertThat(stopped.stopReason()).isEqualTo(StopReason.STOP_TOKEN);

        int[] pos = LmRequest.sequentialPositions(PROMPT.length);
        pos[pos.length - 1] = TinyCheckpoints.MAX_POS;
        assertThatThrownBy(() -> split.generate(new LmRequest(split.embedding().embed(PROMPT), pos, new int[0], 1,
                KvPrecision.FP32, false)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("context");

        assertThatThrownBy(() -> split.generate(request(KvPrecision.FP32), new LmHooks() {
            @Override
            public int[] keepAfterLayer(int layer, PrefillLayer view) {
                return new int[] {0, 1};
            }
        })).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("last row");
    }
}
