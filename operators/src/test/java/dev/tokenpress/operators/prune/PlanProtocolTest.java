package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Drives a whole plan through {@link HookRunner}, the runtime's one path (see {@link
 * TokenOperator}), with fake attention logits in place of a model: plan start, ViT signals,
 * VISUAL_TOKENS, building the LM sequence, PREFILL_AFTER after every layer, kept maps and per-layer
 * KV lengths.
 */
class PlanProtocolTest {

  private static final ModelShape SHAPE = new ModelShape(4, 2, 4, 4, true, 2, 4, 4, 2, 8);
  private static final String PLAN =
      "[{\"op\":\"random-drop\",\"keep\":12,\"seed\":1},"
          + "{\"op\":\"vtc-cls\",\"keep\":6,\"layers\":\"1..L-2\"},"
          + "{\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5}]";
  private static final int PREFIX = 3;
  private static final int SUFFIX = 4;

  /** What a run produces, for comparison across threads. */
  record Result(List<KeptMap> keptMaps, SequenceLayout finalLayout, int[] kvLengths) {}

  static Result run(List<TokenOperator> ops, Set<Signal> requested, String recordId) {
    long seed = Seeds.recordSeed(recordId, 2024L);
    SplittableRandom fakeModel = new SplittableRandom(seed);
    HookRunner hooks = new HookRunner(ops, SHAPE, seed);

    // ViT: compute ClsAttention only for the requested layers.
    int t = SHAPE.vitTokens();
    hooks.startVision(t);
    for (int l = 0; l < SHAPE.vitLayers(); l++) {
      float[] logits = gaussian(fakeModel, SHAPE.vitHeads() * t);
      if (requested.contains(new Signal.ClsAttention(l))) {
        hooks.putClsAttention(l, Kernels.headMeanSoftmax(logits, SHAPE.vitHeads(), t));
      }
    }
    // VISUAL_TOKENS, in plan order, and the LM sequence.
    float[] features = gaussian(fakeModel, SHAPE.numPatches() * SHAPE.lmHiddenSize());
    hooks.visualTokens(features, SHAPE.numPatches(), SHAPE.lmHiddenSize(), PREFIX, SUFFIX);
    // Prefill: PREFILL_AFTER after every layer, with fake causal attention rows on request.
    int[] kv = new int[SHAPE.lmLayers()];
    for (int layer = 0; layer < SHAPE.lmLayers(); layer++) {
      kv[layer] = hooks.layout().length(); // this layer's K/V cover the rows that entered it
      hooks.afterPrefillLayer(
          layer,
          (s, layout, rows) -> {
            Signal.QueryRowAttention q = (Signal.QueryRowAttention) s;
            int n = layout.length();
            int[] qr = q.rows().resolve(layout);
            float[] out = new float[qr.length * n];
            for (int i = 0; i < qr.length; i++) {
              float[] logits = gaussian(fakeModel, SHAPE.lmHeads() * n);
              for (int h = 0; h < SHAPE.lmHeads(); h++) {
                for (int j = qr[i] + 1; j < n; j++) {
                  logits[h * n + j] = Float.NEGATIVE_INFINITY; // causal mask
                }
              }
              System.arraycopy(
                  Kernels.headMeanSoftmax(logits, SHAPE.lmHeads(), n), 0, out, i * n, n);
            }
            return FloatTensor.wrap(out, qr.length, n);
          });
    }
    return new Result(hooks.keptMaps(), hooks.layout(), kv);
  }

  private static float[] gaussian(SplittableRandom rng, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (rng.nextDouble() * 4 - 2);
    }
    return a;
  }

  @Test
  void fullPlanFollowsTheProtocol() {
    CompressionPlan plan = CompressionPlan.parse(PLAN);
    List<TokenOperator> ops = plan.bind(SHAPE);
    Set<Signal> requested = CompressionPlan.signals(ops, SHAPE);
    assertThat(requested)
        .containsExactly(
            new Signal.ClsAttention(1),
            new Signal.ClsAttention(2),
            new Signal.QueryRowAttention(
                1, dev.tokenpress.operators.api.QueryRows.LAST_PROMPT_TOKEN));

    Result r = run(ops, requested, "img-000001");
    assertThat(r.keptMaps())
        .extracting(KeptMap::operator)
        .containsExactly("random-drop", "vtc-cls", "fastv");
    KeptMap random = r.keptMaps().get(0);
    KeptMap vtc = r.keptMaps().get(1);
    KeptMap fastv = r.keptMaps().get(2);
    assertThat(random.kept()).hasSize(12);
    assertThat(vtc.inputCount()).isEqualTo(12);
    assertThat(vtc.kept()).hasSize(6);
    // VTC-CLS's originals are a subset of RandomDrop's.
    assertThat(random.original()).contains(vtc.original());
    // FastV at layer K-1 = 1 keeps 3 of the 6 visual rows, all 7 text rows.
    assertThat(fastv.layer()).isEqualTo(1);
    assertThat(fastv.inputCount()).isEqualTo(PREFIX + 6 + SUFFIX);
    assertThat(fastv.kept()).hasSize(PREFIX + 3 + SUFFIX);
    // Layers < K have full KV (13 rows), layers >= K the kept 10.
    assertThat(r.kvLengths()).containsExactly(13, 13, 10, 10);

    SequenceLayout last = r.finalLayout();
    assertThat(last.visualCount()).isEqualTo(3);
    // Positions: VTC-CLS re-packed the image span to 6 positions (3..8); FastV kept originals.
    assertThat(last.positionId(0)).isZero();
    assertThat(last.positionId(last.length() - 1)).isEqualTo(PREFIX + 6 + SUFFIX - 1);
    assertThat(last.nextPosition()).isEqualTo(PREFIX + 6 + SUFFIX);
    for (int row = 0; row < last.length(); row++) {
      if (last.isVisual(row)) {
        assertThat(vtc.original()).contains(last.visualIndex(row));
        assertThat(last.originalIndex(row)).isEqualTo(PREFIX + last.visualIndex(row));
      }
    }
    assertThat(fastv.original()).containsExactly(last.originalIndices());
  }

  @Test
  void runsAreDeterministicAndOperatorsAreThreadSafe() throws Exception {
    List<TokenOperator> ops = CompressionPlan.parse(PLAN).bind(SHAPE);
    Set<Signal> requested = CompressionPlan.signals(ops, SHAPE);
    Result expected = run(ops, requested, "img-000007");
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Result>> futures = new ArrayList<>();
      for (int i = 0; i < 16; i++) {
        futures.add(pool.submit(() -> run(ops, requested, "img-000007")));
      }
      for (Future<Result> f : futures) {
        Result r = f.get();
        assertThat(r.keptMaps()).isEqualTo(expected.keptMaps());
        assertThat(r.finalLayout()).isEqualTo(expected.finalLayout());
      }
    } finally {
      pool.shutdown();
    }
    assertThat(run(ops, requested, "img-000008").keptMaps()).isNotEqualTo(expected.keptMaps());
  }

  @Test
  void emptyPlanChangesNothing() {
    List<TokenOperator> ops = CompressionPlan.empty().bind(SHAPE);
    Result r = run(ops, CompressionPlan.signals(ops, SHAPE), "img-1");
    assertThat(r.keptMaps()).isEmpty();
    assertThat(r.finalLayout()).isEqualTo(SequenceLayout.prefill(PREFIX, 16, SUFFIX, List.of()));
    assertThat(r.kvLengths()).containsExactly(23, 23, 23, 23);
  }
}
