package dev.tokenpress.operators.merge;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.SignalValues;
import dev.tokenpress.operators.api.ToMeConfig;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionLayerContext;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.operators.testing.Golden;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * ToMe against {@code src/test/python/gen_golden_tome.py} (a numpy re-statement cross-checked there
 * with the authors' torch code), layer after layer with sizes, plus validation.
 */
class ToMeTest {

  private static final Map<String, Object> GOLDEN = Golden.load("tome/tome.json");

  private static ModelShape shape(int layers, int heads, int patches, boolean cls) {
    return new ModelShape(layers + 1, heads, 1, patches, cls, layers - 1, 2, 2, 2, 8);
  }

  /** Keys of one layer, {@code mean_h x @ W_h}, with the runtime's head-mean kernel. */
  private static float[] keys(float[] x, int t, int d, float[] w, int layer, int heads, int c) {
    float[] perHead = new float[heads * t * c];
    for (int h = 0; h < heads; h++) {
      int wBase = (layer * heads + h) * d * c;
      for (int i = 0; i < t; i++) {
        for (int k = 0; k < c; k++) {
          double acc = 0;
          for (int j = 0; j < d; j++) {
            acc += (double) x[i * d + j] * w[wBase + j * c + k];
          }
          perHead[(h * t + i) * c + k] = (float) acc;
        }
      }
    }
    return Kernels.meanOverHeads(perHead, heads, t * c);
  }

  @Test
  void matchesTheReferenceLayerAfterLayer() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("cases"))) {
      String name = (String) c.get("name");
      boolean cls = (Boolean) c.get("cls");
      int heads = Golden.integer(c.get("heads"));
      int kd = Golden.integer(c.get("key_dim"));
      int d = Golden.integer(c.get("dim"));
      int t = Golden.integer(c.get("tokens"));
      int[] r = Golden.ints(c.get("r"));
      List<Integer> rl = new ArrayList<>();
      for (int v : r) {
        rl.add(v);
      }
      ModelShape shape = shape(r.length, heads, t - (cls ? 1 : 0), cls);
      ToMe op = new ToMeConfig(rl, true).build();
      op.validate(shape);
      float[] w = Golden.floats(c.get("w"));
      float[] x = Golden.floats(c.get("x"));
      double[] s0 = Golden.doubles(c.get("sizes_in"));
      float[] sizes = new float[t];
      for (int i = 0; i < t; i++) {
        sizes[i] = (float) s0[i];
      }
      TokenReduction total = TokenReduction.keepAll(t);
      int rows = t;
      for (int layer = 0; layer < r.length; layer++) {
        Signal sig = new Signal.VitKeys(layer);
        SignalValues sv =
            r[layer] == 0
                ? SignalValues.empty()
                : SignalValues.builder()
                    .put(sig, FloatTensor.wrap(keys(x, rows, d, w, layer, heads, kd), rows, kd))
                    .build();
        VisionLayerContext ctx =
            new VisionLayerContext(
                shape,
                layer,
                VisionPoint.AFTER_ATTENTION,
                sizes,
                TokenProvenance.identity(rows - (cls ? 1 : 0)),
                sv,
                0L);
        TokenReduction red = op.reduceVisionLayer(ctx);
        if (cls) {
          assertThat(red.group(0)).as(name).containsExactly(0);
        }
        x = red.apply(x, d);
        sizes = red.sumSizes(sizes);
        total = total.then(red);
        rows = red.outputCount();
      }
      List<Object> groups = (List<Object>) c.get("groups");
      assertThat(total.outputCount()).as(name).isEqualTo(groups.size());
      for (int o = 0; o < groups.size(); o++) {
        assertThat(total.group(o))
            .as(name + " group " + o)
            .containsExactly(Golden.ints(groups.get(o)));
      }
      double[] es = Golden.doubles(c.get("sizes"));
      double[] ex = Golden.doubles(c.get("x_out"));
      for (int o = 0; o < es.length; o++) {
        assertThat((double) sizes[o]).as(name).isEqualTo(es[o]);
      }
      for (int i = 0; i < ex.length; i++) {
        assertThat((double) x[i]).as(name + " x[" + i + "]").isCloseTo(ex[i], within(1e-5));
      }
    }
  }

  @Test
  void rZeroIsTheEmptyPlanAndAsksForNothing() {
    ModelShape shape = shape(3, 2, 8, true);
    ToMe op = new ToMeConfig(0).build();
    op.validate(shape);
    assertThat(op.signals(shape)).isEmpty();
    VisionLayerContext ctx =
        new VisionLayerContext(
            shape,
            1,
            VisionPoint.AFTER_ATTENTION,
            new float[9],
            TokenProvenance.identity(8),
            SignalValues.empty(),
            0L);
    assertThat(op.reduceVisionLayer(ctx).keepsAll()).isTrue();
    ToMe some = new ToMeConfig(List.of(2, 0, 1), false).build();
    assertThat(some.signals(shape)).containsExactly(new Signal.VitKeys(0), new Signal.VitKeys(2));
    assertThat(some.proportionalAttention()).isFalse();
    assertThat(new ToMeConfig(1).build().proportionalAttention()).isTrue();
    assertThat(op.hooks()).containsExactly(Hook.VISION_LAYER);
  }

  @Test
  void jsonIsCanonicalAndBackwardCompatible() {
    CompressionPlan p = CompressionPlan.parse("[{\"op\":\"tome\",\"r\":8}]");
    assertThat(p.toJson()).isEqualTo("[{\"op\":\"tome\",\"r\":8,\"prop_attn\":true}]");
    CompressionPlan q =
        CompressionPlan.parse("[{\"op\":\"tome\",\"r\":[4,2],\"prop_attn\":false}]");
    assertThat(q.toJson()).isEqualTo("[{\"op\":\"tome\",\"r\":[4,2],\"prop_attn\":false}]");
    assertThat(CompressionPlan.parse(q.toJson())).isEqualTo(q);
    assertThat(CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":2}]").toJson())
        .isEqualTo("[{\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5,\"mode\":\"inplace\"}]");
  }

  @Test
  void badPlansFailAtStartNamingTheField() {
    ModelShape shape = shape(3, 2, 16, true); // 17 tokens: at most 8, then 4 ... merge
    assertThatThrownBy(() -> new ToMeConfig(9).build().validate(shape))
        .hasMessage(
            "tome.r must be in [0, 8] at ViT layer 0, where 17 tokens remain (at most half of the "
                + "non-CLS tokens merge per layer), got 9");
    assertThatThrownBy(() -> new ToMeConfig(List.of(8, 4, 3), true).build().validate(shape))
        .hasMessage(
            "tome.r[2] must be in [0, 2] at ViT layer 2, where 5 tokens remain (at most half of the "
                + "non-CLS tokens merge per layer), got 3");
    new ToMeConfig(List.of(8, 4, 2), true).build().validate(shape);
    assertThatThrownBy(() -> new ToMeConfig(List.of(1, 1), true).build().validate(shape))
        .hasMessage(
            "tome.r has 2 entries; give one integer for every layer or exactly one per ViT layer run "
                + "(3 for this model)");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"tome\",\"r\":-1}]"))
        .hasMessage("plan[0]: tome.r must be >= 0, got -1");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"tome\"}]"))
        .hasMessage("plan[0]: tome.r is required (an integer or an array of integers)");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"tome\",\"r\":2,\"ratio\":1}]"))
        .hasMessageContaining("tome: unknown key \"ratio\"");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"tome\",\"r\":[2,\"x\"]}]"))
        .hasMessage("plan[0]: tome.r[1] must be an integer, got \"x\"");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"tome\",\"r\":2,\"prop_attn\":1}]"))
        .hasMessage("plan[0]: tome.prop_attn must be true or false, got 1");
  }
}
