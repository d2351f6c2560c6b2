package dev.tokenpress.runtime.lm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.checkpoint.LmCheckpoint;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.ReferenceLlama;
import dev.tokenpress.runtime.testing.TinyCheckpoints;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A FastV plan driven through the operator API inside the split runtime. */
class PlanHooksTest {
  @Test
  void fastVDropsTheLeastAttendedVisualRowsAfterItsLayer(@TempDir Path tmp) {
    Path dir = TinyCheckpoints.write(tmp.resolve("ckpt"), 11, true, false);
    BundleBuilder.build(dir, tmp.resolve("bundle"), BuildOptions.defaults());
    // 2 prefix rows, 8 "visual" rows (text embeddings stand in for projected tokens), 3 suffix rows
    int[] ids = {1, 20, 33, 34, 35, 36, 37, 38, 39, 40, 5, 6, 7};
    SequenceLayout layout = SequenceLayout.prefill(2, 8, 3, List.of());
    ModelShape shape =
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
    List<TokenOperator> ops =
        CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":1,\"keep\":3}]").build();
    ops.forEach(o -> o.validate(shape));
    try (LlamaRuntime rt =
            LlamaRuntime.open(Bundle.open(tmp.resolve("bundle")), SessionConfig.singleThreaded());
        LmCheckpoint ckpt = LmCheckpoint.open(dir)) {
      HookRunner hooks = new HookRunner(ops, shape, 0L);
      hooks.startPrefill(layout);
      LmRequest req =
          new LmRequest(
              rt.embedding().embed(ids),
              layout.positionIds(),
              layout.originalIndices(),
              new int[0],
              1,
              KvPrecision.FP32,
              true);
      GenerationResult r = rt.generate(req, hooks);

      // expected: the reference's head-mean attention of the last row at layer 0, top 3 visual rows
      ReferenceLlama ref = new ReferenceLlama(ckpt);
      float[][] x = new float[ids.length][TinyCheckpoints.HIDDEN];
      for (int i = 0; i < ids.length; i++) {
        rt.embedding().lookup(ids[i], x[i], 0);
      }
      ref.lastLogits(x, layout.positionIds(), Map.of(), null);
      double[] att = ref.lastRowAttention(0);
      int[] topVisual =
          IntStream.range(2, 10)
              .boxed()
              .sorted(Comparator.comparingDouble((Integer j) -> -att[j]).thenComparingInt(j -> j))
              .limit(3)
              .mapToInt(Integer::intValue)
              .sorted()
              .toArray();
      int[] keep =
          IntStream.concat(
                  IntStream.concat(IntStream.of(0, 1), Arrays.stream(topVisual)),
                  IntStream.of(10, 11, 12))
              .toArray();

      List<KeptMap> maps = hooks.keptMaps();
      assertThat(maps).hasSize(1);
      assertThat(maps.get(0).layer()).isZero();
      assertThat(maps.get(0).original()).containsExactly(keep);
      assertThat(r.kvCache().lengths()).containsExactly(13, 8, 8);
      assertThat(r.kvCache().layer(2).positions()).containsExactly(keep);
      assertThat(hooks.layout().length()).isEqualTo(8);

      double[] want = ref.lastLogits(x, layout.positionIds(), Map.of(0, keep), null);
      float[] got = r.stepLogits().get(0);
      for (int i = 0; i < got.length; i++) {
        assertThat((double) got[i])
            .isCloseTo(want[i], org.assertj.core.api.Assertions.within(1e-4));
      }
      assertThat(r.flops().prefillPerLayer()[1]).isLessThan(r.flops().prefillPerLayer()[0]);
    }
  }
}
