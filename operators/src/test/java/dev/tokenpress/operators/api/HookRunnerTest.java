package dev.tokenpress.operators.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * The protocol of {@link HookRunner}: composition in plan order, signals, sizes, provenance,
 * checks.
 */
class HookRunnerTest {
  private static final ModelShape SHAPE = new ModelShape(3, 2, 2, 2, true, 1, 2, 2, 2, 8);

  /** An operator at VISION_LAYER (AFTER_ATTENTION) or VISUAL_TOKENS with a callback. */
  private static TokenOperator op(
      String name, Hook hook, Function<Object, TokenReduction> f, Signal... signals) {
    return new TokenOperator() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public OperatorConfig config() {
        return null;
      }

      @Override
      public Set<Hook> hooks() {
        return EnumSet.of(hook);
      }

      @Override
      public void validate(ModelShape shape) {}

      @Override
      public List<Signal> signals(ModelShape shape) {
        return List.of(signals);
      }

      @Override
      public boolean proportionalAttention() {
        return true;
      }

      @Override
      public TokenReduction reduceVisionLayer(VisionLayerContext context) {
        return f.apply(context);
      }

      @Override
      public TokenReduction reduceVisualTokens(VisualTokensContext context) {
        return f.apply(context);
      }
    };
  }

  /** {@code op} declaring that it never reads the record seed. */
  private static TokenOperator seedless(TokenOperator op) {
    return new TokenOperator() {
      @Override
      public String name() {
        return op.name();
      }

      @Override
      public OperatorConfig config() {
        return null;
      }

      @Override
      public Set<Hook> hooks() {
        return op.hooks();
      }

      @Override
      public void validate(ModelShape shape) {}

      @Override
      public List<Signal> signals(ModelShape shape) {
        return op.signals(shape);
      }

      @Override
      public boolean usesRecordSeed() {
        return false;
      }

      @Override
      public TokenReduction reduceVisionLayer(VisionLayerContext context) {
        return op.reduceVisionLayer(context);
      }
    };
  }

  @Test
  void aSeedlessStatelessVitStageIsAdoptedAsIfItHadRun() {
    TokenOperator merge =
        op(
            "m",
            Hook.VISION_LAYER,
            c -> {
              VisionLayerContext v = (VisionLayerContext) c;
              return v.layer() != 0
                  ? TokenReduction.keepAll(v.tokens())
                  : TokenReduction.of(
                      5, new int[][] {{0}, {2, 4}, {1}, {3}}, null, PositionMode.REPACK);
            });
    TokenOperator shared = seedless(merge);
    HookRunner first = new HookRunner(List.of(shared), SHAPE, 1L);
    first.startVision(5);
    first.visionLayer(0, VisionPoint.AFTER_ATTENTION, vitSource(new ArrayList<>()));
    first.visionLayer(1, VisionPoint.AFTER_ATTENTION, vitSource(new ArrayList<>()));
    HookRunner second = new HookRunner(List.of(shared), SHAPE, 2L);
    assertThat(second.visionShareable()).isTrue();
    second.adoptVision(first);
    assertThat(second.visionSizes()).containsExactly(first.visionSizes());
    assertThat(second.keptMaps())
        .extracting(KeptMap::toJson)
        .containsExactlyElementsOf(first.keptMaps().stream().map(KeptMap::toJson).toList());
    float[] features = {1, 1, 2, 2, 3, 3};
    assertThat(second.visualTokens(features.clone(), 3, 2, 2, 3))
        .containsExactly(first.visualTokens(features.clone(), 3, 2, 2, 3));
    assertThat(second.layout().originalIndices()).containsExactly(first.layout().originalIndices());

    // the seed may matter to an operator that does not say otherwise, and another plan's stage is
    // not this one's
    HookRunner seeded = new HookRunner(List.of(merge), SHAPE, 3L);
    assertThat(seeded.visionShareable()).isFalse();
    assertThatThrownBy(() -> seeded.adoptVision(first))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("use no seed");
    HookRunner other = new HookRunner(List.of(seedless(merge)), SHAPE, 4L);
    assertThatThrownBy(() -> other.adoptVision(first))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("another plan");
    HookRunner fresh = new HookRunner(List.of(shared), SHAPE, 5L);
    assertThatThrownBy(() -> fresh.adoptVision(new HookRunner(List.of(shared), SHAPE, 6L)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("has not run its ViT");
  }

  private static final float[] HIDDEN = {
    0, 0, 1, 1, 2, 2, 3, 3, 4, 4
  }; // 5 rows (CLS + 4 patches), dim 2
  private static final float[] CLS_ROW = {0.2f, 0.1f, 0.3f, 0.25f, 0.15f};

  private static HookRunner.SignalSource vitSource(List<Signal> asked) {
    return (s, layout, rows) -> {
      asked.add(s);
      if (s instanceof Signal.VitClsAttention) {
        return FloatTensor.wrap(CLS_ROW.clone(), 5);
      }
      return FloatTensor.wrap(HIDDEN.clone(), 5, 2);
    };
  }

  @Test
  void visionOperatorsComposeWithReducedSignalsSizesAndProvenance() {
    Signal cls = new Signal.VitClsAttention(0);
    Signal hidden = new Signal.VitHiddenStates(0);
    List<Object> seen = new ArrayList<>();
    // a: merges patches 1 and 3 (rows 2 and 4) with weights 1:3; reorders: the merged row first
    // after CLS
    TokenOperator a =
        op(
            "a",
            Hook.VISION_LAYER,
            c -> {
              VisionLayerContext v = (VisionLayerContext) c;
              if (v.layer() != 0) {
                return TokenReduction.keepAll(v.tokens());
              }
              return TokenReduction.of(
                  5,
                  new int[][] {{0}, {2, 4}, {1}, {3}},
                  new float[][] {{1}, {1, 3}, {1}, {1}},
                  PositionMode.REPACK);
            },
            cls,
            hidden);
    // b: sees 4 rows, the reduced signals, and merges the last two rows (patches 0 and 2),
    // size-weighted
    TokenOperator b =
        op(
            "b",
            Hook.VISION_LAYER,
            c -> {
              VisionLayerContext v = (VisionLayerContext) c;
              if (v.layer() != 0) {
                return TokenReduction.keepAll(v.tokens());
              }
              seen.add(v.signals().get(cls));
              seen.add(v.signals().get(hidden));
              seen.add(v.sizes());
              return TokenReduction.of(
                  4,
                  new int[][] {{0}, {1}, {2, 3}},
                  new float[][] {{1}, {v.size(1)}, {1, 1}},
                  PositionMode.REPACK);
            },
            cls,
            hidden);
    HookRunner run = new HookRunner(List.of(a, b), SHAPE, 0L);
    run.startVision(5);
    assertThat(run.visionKeyBias()).isNull();
    List<Signal> asked = new ArrayList<>();
    TokenReduction total = run.visionLayer(0, VisionPoint.AFTER_ATTENTION, vitSource(asked));
    assertThat(asked).containsExactlyInAnyOrder(cls, hidden); // once each, for both operators
    assertThat(((FloatTensor) seen.get(0)).toArray())
        .containsExactly(0.2f, 0.3f + 0.15f, 0.1f, 0.25f);
    assertThat(((FloatTensor) seen.get(1)).toArray()).containsExactly(0, 0, 3.5f, 3.5f, 1, 1, 3, 3);
    assertThat((float[]) seen.get(2)).containsExactly(1, 2, 1, 1);
    assertThat(total.outputCount()).isEqualTo(3);
    assertThat(total.group(1)).containsExactly(2, 4);
    assertThat(total.group(2)).containsExactly(1, 3);
    assertThat(total.apply(HIDDEN, 2)).containsExactly(0, 0, 3.5f, 3.5f, 2, 2);
    assertThat(run.visionSizes()).containsExactly(1, 2, 2);
    assertThat(run.visionKeyBias()).containsExactly(0f, (float) Math.log(2), (float) Math.log(2));
    assertThat(run.keptMaps()).extracting(KeptMap::operator).containsExactly("a", "b");
    assertThat(run.keptMaps().get(0).original()).containsExactly(1, 0, 2);
    assertThat(run.keptMaps().get(0).merged()).isEqualTo(1);
    assertThat(run.keptMaps().get(0).toJson()).endsWith(",\"merged\":1}");

    // CLS attention for VISUAL_TOKENS sits at each token's representative patch
    run.putClsAttention(1, new float[] {0.5f, 0.2f, 0.3f});
    List<Object> vis = new ArrayList<>();
    Signal visCls = new Signal.ClsAttention(1);
    HookRunner withVisual =
        new HookRunner(
            List.of(
                a,
                b,
                op(
                    "v",
                    Hook.VISUAL_TOKENS,
                    c -> {
                      VisualTokensContext v = (VisualTokensContext) c;
                      vis.add(v.signals().get(visCls));
                      vis.add(v.visualIndices());
                      return TokenReduction.keepAll(v.count());
                    },
                    visCls)),
            SHAPE,
            0L);
    withVisual.startVision(5);
    withVisual.visionLayer(0, VisionPoint.AFTER_ATTENTION, vitSource(new ArrayList<>()));
    withVisual.putClsAttention(1, new float[] {0.5f, 0.2f, 0.3f});
    // projector output in the ViT's order: token of patches {1,3}, then of patches {0,2}
    float[] features = withVisual.visualTokens(new float[] {13, 13, 2, 2}, 2, 2, 1, 2);
    assertThat(features).containsExactly(2, 2, 13, 13); // raster order of representatives
    assertThat(((FloatTensor) vis.get(0)).toArray()).containsExactly(0.3f, 0.2f, 0, 0);
    assertThat((int[]) vis.get(1)).containsExactly(0, 1);
    TokenProvenance p = withVisual.visualProvenance();
    assertThat(p.patches(0)).containsExactly(0, 2);
    assertThat(p.patches(1)).containsExactly(1, 3);
    assertThat(p.weights(1)).containsExactly(0.25f, 0.75f);
    SequenceLayout l = withVisual.layout();
    assertThat(l.visualIndices()).containsExactly(-1, 0, 1, -1, -1);
    assertThat(l.originalIndices()).containsExactly(0, 1, 2, 5, 6);
    assertThat(l.positionIds()).containsExactly(0, 1, 2, 3, 4);
  }

  @Test
  void resultsAreChecked() {
    TokenOperator mergesCls =
        op(
            "bad",
            Hook.VISION_LAYER,
            c ->
                TokenReduction.of(
                    5, new int[][] {{0, 1}, {2}, {3}, {4}}, null, PositionMode.REPACK));
    HookRunner run = new HookRunner(List.of(mergesCls), SHAPE, 0L);
    run.startVision(5);
    assertThatThrownBy(
            () -> run.visionLayer(0, VisionPoint.AFTER_ATTENTION, vitSource(new ArrayList<>())))
        .hasMessage("bad must keep the CLS token (row 0) alone at ViT layer 0");
    TokenOperator reorders =
        op(
            "re",
            Hook.VISUAL_TOKENS,
            c -> TokenReduction.of(2, new int[][] {{1}, {0}}, null, PositionMode.REPACK));
    HookRunner vis = new HookRunner(List.of(reorders), SHAPE, 0L);
    assertThatThrownBy(() -> vis.visualTokens(new float[8], 4, 2, 0, 0))
        .hasMessageContaining("over 2 visual tokens, the context has 4");
    TokenOperator reorders4 =
        op(
            "re",
            Hook.VISUAL_TOKENS,
            c -> TokenReduction.of(4, new int[][] {{1}, {0}, {2}, {3}}, null, PositionMode.REPACK));
    assertThatThrownBy(
            () ->
                new HookRunner(List.of(reorders4), SHAPE, 0L)
                    .visualTokens(new float[8], 4, 2, 0, 0))
        .hasMessageContaining("re reordered visual tokens");
    assertThatThrownBy(() -> new HookRunner(List.of(), SHAPE, 0L).visionSizes())
        .hasMessage("startVision was not called for this record");
  }

  @Test
  void reductionsComposeAndValidate() {
    TokenReduction a =
        TokenReduction.of(
            5,
            new int[][] {{0}, {1, 3}, {2, 4}},
            new float[][] {{1}, {1, 1}, {2, 1}},
            PositionMode.KEEP_ORIGINAL);
    TokenReduction b =
        TokenReduction.of(
            3, new int[][] {{0}, {1, 2}}, new float[][] {{1}, {2, 3}}, PositionMode.KEEP_ORIGINAL);
    TokenReduction ab = a.then(b);
    float[] x = {1, 2, 4, 8, 16};
    assertThat(ab.apply(x, 1)[1])
        .isCloseTo(b.apply(a.apply(x, 1), 1)[1], org.assertj.core.api.Assertions.within(1e-5f));
    assertThat(ab.group(1)).containsExactly(1, 2, 3, 4);
    assertThat(a.sumSizes(new float[] {1, 1, 2, 1, 3})).containsExactly(1, 2, 5);
    assertThat(a.representatives().kept()).containsExactly(0, 1, 2);
    assertThat(TokenReduction.of(TokenSelection.keepAll(3)).keepsAll()).isTrue();
    assertThatThrownBy(
            () -> TokenReduction.of(3, new int[][] {{0, 1}, {1}}, null, PositionMode.REPACK))
        .hasMessage("row 1 is in more than one group");
    assertThatThrownBy(() -> TokenReduction.of(3, new int[][] {{1, 0}}, null, PositionMode.REPACK))
        .hasMessage("group 0 must be strictly ascending, got [1, 0]");
    assertThatThrownBy(
            () -> TokenReduction.of(3, new int[][] {{0}}, new float[][] {{0}}, PositionMode.REPACK))
        .hasMessage("weight of row 0 in group 0 must be positive and finite, got 0.0");
    assertThatThrownBy(
            () ->
                TokenReduction.of(3, new int[][] {{2}, {0}}, null, PositionMode.REPACK)
                    .representatives())
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void lmHooksChainAndAdd() {
    List<String> calls = new ArrayList<>();
    TokenOperator x =
        new TokenOperator() {
          @Override
          public String name() {
            return "x";
          }

          @Override
          public OperatorConfig config() {
            return null;
          }

          @Override
          public Set<Hook> hooks() {
            return EnumSet.of(Hook.LOGITS, Hook.DECODE);
          }

          @Override
          public void validate(ModelShape shape) {}

          @Override
          public List<Signal> signals(ModelShape shape) {
            return List.of();
          }

          @Override
          public float[] logits(LogitsContext c) {
            calls.add("x" + c.step());
            float[] l = c.logits().toArray();
            l[0] += 1;
            return l;
          }

          @Override
          public float[] decodeBias(DecodeContext c) {
            return new float[] {1, 2};
          }
        };
    HookRunner run = new HookRunner(List.of(x, x), SHAPE, 0L);
    assertThat(run.logits(3, new float[] {0, 5}, new int[0])).containsExactly(2, 5);
    assertThat(calls).containsExactly("x3", "x3");
    dev.tokenpress.operators.kv.LayerKvCache cache =
        new dev.tokenpress.operators.kv.LayerKvCache(
            new dev.tokenpress.operators.kv.KvLayout(1, 1),
            dev.tokenpress.operators.kv.KvCodec.of(dev.tokenpress.operators.kv.KvPrecision.FP32));
    cache.append(new float[] {1}, 0, new float[] {1}, 0, 0, 0);
    cache.append(new float[] {1}, 0, new float[] {1}, 0, 1, 1);
    assertThat(run.decodeBias(0, 0, cache)).containsExactly(2, 4);
    assertThat(run.acts(Hook.PREFILL)).isFalse();
    assertThat(run.actsInLm()).isTrue();
  }
}
