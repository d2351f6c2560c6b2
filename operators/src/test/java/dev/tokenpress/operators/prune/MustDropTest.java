package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.MustDropConfig;
import dev.tokenpress.operators.json.Json;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.operators.testing.Golden;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** MustDrop against {@code src/test/python/gen_golden_mustdrop.py}, plus invariants. */
class MustDropTest {

  private static final Map<String, Object> GOLDEN = Golden.load("mustdrop/mustdrop.json");

  private static MustDropConfig config(
      double threshold,
      int window,
      int retained,
      double keyShare,
      double gamma,
      double alpha,
      boolean stageC) {
    return new MustDropConfig(
        true,
        true,
        stageC,
        window,
        threshold,
        retained,
        keyShare,
        null,
        gamma,
        alpha,
        MustDropConfig.DecodePositions.OWN_CACHE_LENGTH);
  }

  private static int[][] intLists(Object o) {
    List<?> l = (List<?>) o;
    int[][] out = new int[l.size()][];
    for (int i = 0; i < out.length; i++) {
      out[i] = Golden.ints(l.get(i));
    }
    return out;
  }

  @Test
  void windowMergeMatchesReference() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("merge"))) {
      String name = (String) c.get("name");
      int rows = Golden.integer(c.get("rows"));
      int cols = Golden.integer(c.get("cols"));
      int dim = Golden.integer(c.get("dim"));
      boolean cls = (Boolean) c.get("has_cls");
      int retained =
          c.containsKey("retained_tokens") ? Golden.integer(c.get("retained_tokens")) : 0;
      MustDrop md =
          new MustDrop(
              config(
                  Golden.number(c.get("threshold")),
                  Golden.integer(c.get("window")),
                  retained,
                  0.08,
                  0.001,
                  0.001,
                  true));
      float[] hidden = Golden.floats(c.get("hidden"));
      float[] copy = hidden.clone();
      MustDrop.WindowMerge m = md.mergeWindows(hidden, rows, cols, dim, cls);
      assertThat(hidden).as(name + " input unchanged").isEqualTo(copy);
      assertThat(m.mergedWindows()).as(name).containsExactly(Golden.ints(c.get("merged_windows")));
      double[] sim = Golden.doubles(c.get("similarity"));
      assertThat(m.similarity()).as(name).hasSize(sim.length);
      for (int i = 0; i < sim.length; i++) {
        assertThat(m.similarity()[i])
            .as(name + " similarity " + i)
            .isCloseTo(sim[i], within(1e-12));
      }
      float[] expected = Golden.floats(c.get("expected_hidden"));
      assertThat(m.hidden()).as(name).hasSize(expected.length);
      for (int i = 0; i < expected.length; i++) {
        assertThat(m.hidden()[i]).as(name + " hidden " + i).isCloseTo(expected[i], within(1e-6f));
      }
      int[][] sources = intLists(c.get("sources"));
      List<?> weights = (List<?>) c.get("weights");
      int w = Golden.integer(c.get("window"));
      assertThat(m.tokens())
          .as(name)
          .isEqualTo(sources.length)
          .isEqualTo(rows * cols - m.mergedWindows().length * (w * w - 1));
      for (int t = 0; t < sources.length; t++) {
        assertThat(m.sources(t)).as(name + " sources " + t).containsExactly(sources[t]);
        float[] ew = Golden.floats(weights.get(t));
        for (int j = 0; j < ew.length; j++) {
          assertThat(m.weights(t)[j]).isCloseTo(ew[j], within(1e-7f));
        }
      }
    }
  }

  @Test
  void keySetMatchesReferenceThroughTheProjectSoftmax() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("keys"))) {
      String name = (String) c.get("name");
      int h = Golden.integer(c.get("heads"));
      int n = Golden.integer(c.get("n"));
      float[] mean = Kernels.headMeanSoftmax(Golden.floats(c.get("cls_logits")), h, n + 1);
      float[] cls = Arrays.copyOfRange(mean, 1, n + 1);
      double[] ref = Golden.doubles(c.get("cls_attention"));
      for (int i = 0; i < n; i++) {
        assertThat((double) cls[i]).as(name).isCloseTo(ref[i], within(1e-6));
      }
      MustDrop md =
          new MustDrop(config(0.8, 3, 0, Golden.number(c.get("key_share")), 0.001, 0.001, true));
      assertThat(md.keySet(cls)).as(name).containsExactly(Golden.ints(c.get("keys")));
    }
  }

  @Test
  void filterMatchesReference() {
    Map<String, Object> f = asMap(GOLDEN.get("filter"));
    int heads = Golden.integer(f.get("heads"));
    int sys = Golden.integer(f.get("sys"));
    int vis = Golden.integer(f.get("visual"));
    int text = Golden.integer(f.get("text"));
    int seq = sys + vis + text;
    float[] golden = Golden.floats(f.get("attention"));
    // what the runtime does: per text row, softmax over all (causal) keys per head, head mean,
    // vision slice
    float[] logits = Golden.floats(f.get("logits"));
    float[] computed = new float[text * vis];
    for (int i = 0; i < text; i++) {
      float[] row = new float[heads * seq];
      for (int hh = 0; hh < heads; hh++) {
        System.arraycopy(logits, (hh * text + i) * seq, row, hh * seq, seq);
      }
      float[] mean = Kernels.headMeanSoftmax(row, heads, seq);
      System.arraycopy(mean, sys, computed, i * vis, vis);
    }
    for (int i = 0; i < golden.length; i++) {
      assertThat(computed[i]).isCloseTo(golden[i], within(1e-6f));
    }
    // the same through visionBlockAttention from per-head probabilities ([rows x heads x keys])
    float[] probs = new float[text * heads * seq];
    for (int i = 0; i < text; i++) {
      for (int hh = 0; hh < heads; hh++) {
        Kernels.softmax(logits, (hh * text + i) * seq, seq, probs, (i * heads + hh) * seq);
      }
    }
    assertThat(MustDrop.visionBlockAttention(probs, text, heads, seq, sys, vis))
        .containsExactly(computed);
    for (Map<String, Object> c : Golden.objects(f.get("cases"))) {
      String name = (String) c.get("name");
      MustDrop md =
          new MustDrop(
              config(
                  0.8,
                  3,
                  0,
                  0.08,
                  Golden.number(c.get("global_thr")),
                  Golden.number(c.get("individual_thr")),
                  true));
      int[] keys = Golden.ints(c.get("keys"));
      for (float[] a : List.of(golden, computed)) {
        float[] copy = a.clone();
        MustDrop.Filter r = md.filter(a, text, vis, keys);
        assertThat(a).isEqualTo(copy);
        assertThat(r.kept()).as(name).containsExactly(Golden.ints(c.get("kept")));
        assertThat(r.keyPositions()).as(name).containsExactly(Golden.ints(c.get("key_positions")));
        assertThat(MustDrop.sequenceRows(sys, vis, text, r.kept()))
            .as(name)
            .containsExactly(Golden.ints(c.get("rows")));
      }
    }
    Map<String, Object> exact = asMap(f.get("exact"));
    float[] a = Golden.floats(exact.get("attention"));
    for (Map<String, Object> c : Golden.objects(exact.get("cases"))) {
      MustDrop md =
          new MustDrop(
              config(
                  0.8,
                  3,
                  0,
                  0.08,
                  Golden.number(c.get("global_thr")),
                  Golden.number(c.get("individual_thr")),
                  true));
      assertThat(
              md.filter(
                      a,
                      Golden.integer(exact.get("text")),
                      Golden.integer(exact.get("visual")),
                      new int[0])
                  .kept())
          .as((String) c.get("name"))
          .containsExactly(Golden.ints(c.get("kept")));
    }
  }

  @Test
  void kvPlanMatchesTheCodesLoop() {
    for (Map<String, Object> c : Golden.objects(GOLDEN.get("kv"))) {
      String name = (String) c.get("name");
      int layers = Golden.integer(c.get("layers"));
      boolean stageC = (Boolean) c.get("stage_c");
      MustDrop md = new MustDrop(config(0.8, 3, 0, 0.08, 0.001, 0.001, stageC));
      int[][] stageRows = intLists(c.get("stage_rows"));
      MustDrop.KvPlan plan =
          md.kvPlan(
              layers,
              Golden.ints(c.get("pruning_layers")),
              Golden.integer(c.get("initial_length")),
              stageRows);
      int[][] keep = intLists(c.get("keep"));
      int[][] tokens = intLists(c.get("tokens"));
      int[][] pos = intLists(c.get("decode_positions_own"));
      assertThat(plan.finalLength()).as(name).isEqualTo(Golden.integer(c.get("final_length")));
      for (int l = 0; l < layers; l++) {
        assertThat(plan.keep()[l]).as(name + " layer " + l).containsExactly(keep[l]);
        assertThat(plan.tokens()[l]).as(name + " layer " + l).containsExactly(tokens[l]);
        for (int t = 0; t < pos[l].length; t++) {
          assertThat(plan.decodePosition(l, t)).as(name + " layer " + l).isEqualTo(pos[l][t]);
          assertThat(
                  MustDrop.decodePosition(
                      MustDropConfig.DecodePositions.FINAL_LENGTH,
                      plan.cacheLength(l),
                      plan.finalLength(),
                      t))
              .isEqualTo(plan.finalLength() + t);
        }
      }
    }
  }

  @Test
  void chainedStagesMatchTheCodesForwardLoop() {
    Map<String, Object> p = asMap(GOLDEN.get("pipeline"));
    int sys = Golden.integer(p.get("sys"));
    int text = Golden.integer(p.get("text"));
    int layers = Golden.integer(p.get("layers"));
    int[] pls = Golden.ints(p.get("pruning_layers"));
    MustDrop md =
        new MustDrop(
            config(
                0.8,
                3,
                0,
                0.08,
                Golden.number(p.get("global_thr")),
                Golden.number(p.get("individual_thr")),
                true));
    int visual = Golden.integer(p.get("initial_visual"));
    int[] keys = Golden.ints(Golden.objects(p.get("stages")).get(0).get("keys"));
    List<int[]> rows = new java.util.ArrayList<>();
    int[] keptCounts = new int[pls.length];
    int s = 0;
    for (Map<String, Object> st : Golden.objects(p.get("stages"))) {
      assertThat(Golden.integer(st.get("visual"))).isEqualTo(visual);
      assertThat(keys)
          .as("keys carried into stage " + s)
          .containsExactly(Golden.ints(st.get("keys")));
      MustDrop.Filter f = md.filter(Golden.floats(st.get("attention")), text, visual, keys);
      assertThat(f.kept()).as("stage " + s).containsExactly(Golden.ints(st.get("kept")));
      int[] r = MustDrop.sequenceRows(sys, visual, text, f.kept());
      assertThat(r).containsExactly(Golden.ints(st.get("rows")));
      rows.add(r);
      keys = f.keyPositions();
      visual = f.kept().length;
      keptCounts[s++] = visual;
    }
    MustDrop.KvPlan plan =
        md.kvPlan(
            layers,
            pls,
            sys + Golden.integer(p.get("initial_visual")) + text,
            rows.toArray(new int[0][]));
    int[][] keep = intLists(p.get("keep"));
    int[][] tokens = intLists(p.get("tokens"));
    for (int l = 0; l < layers; l++) {
      assertThat(plan.keep()[l]).as("layer " + l).containsExactly(keep[l]);
      assertThat(plan.tokens()[l]).as("layer " + l).containsExactly(tokens[l]);
    }
    assertThat(
            MustDrop.meanVisualTokens(
                layers, pls, Golden.integer(p.get("initial_visual")), keptCounts))
        .isCloseTo(Golden.number(p.get("mean_visual_tokens")), within(1e-12));
  }

  @Test
  void neutralSettingsAreTheIdentity() {
    float[] hidden = new float[(1 + 36) * 4];
    Arrays.fill(hidden, 1f); // every window has similarity 1
    for (MustDropConfig cfg :
        List.of(
            config(1.5, 3, 0, 0.08, 1.0, 0.0, true),
            new MustDropConfig(
                false,
                false,
                false,
                3,
                0.8,
                0,
                0.08,
                null,
                0.5,
                0.5,
                MustDropConfig.DecodePositions.OWN_CACHE_LENGTH))) {
      MustDrop md = new MustDrop(cfg);
      MustDrop.WindowMerge m = md.mergeWindows(hidden, 6, 6, 4, true);
      assertThat(m.hidden()).isEqualTo(hidden);
      assertThat(m.tokens()).isEqualTo(36);
      for (int t = 0; t < 36; t++) {
        assertThat(m.sources(t)).containsExactly(t);
        assertThat(m.weights(t)).containsExactly(1f);
      }
      float[] attn = {0.9f, 0f, 0.1f, 0.5f, 0.5f, 0f};
      assertThat(md.filter(attn, 2, 3, new int[0]).kept()).containsExactly(0, 1, 2);
    }
    // stage A off: no key set; threshold above 1 with stage A on still has one
    assertThat(
            new MustDrop(
                    new MustDropConfig(
                        false,
                        true,
                        true,
                        3,
                        0.8,
                        0,
                        0.5,
                        null,
                        0.1,
                        0.1,
                        MustDropConfig.DecodePositions.OWN_CACHE_LENGTH))
                .keySet(new float[] {0.5f, 0.5f}))
        .isEmpty();
    // the same all-equal grid merges every window at threshold 0.8, in window order (all ties)
    MustDrop.WindowMerge all =
        new MustDrop(MustDropConfig.defaults()).mergeWindows(hidden, 6, 6, 4, true);
    assertThat(all.mergedWindows()).containsExactly(0, 1, 2, 3);
    assertThat(all.tokens()).isEqualTo(4);
    // stage C off with stages: a plain cache, every layer keeps its own sequence
    MustDrop.KvPlan plan =
        new MustDrop(config(0.8, 3, 0, 0.08, 0.1, 0.1, false))
            .kvPlan(4, new int[] {1}, 5, new int[][] {{0, 2, 4}});
    assertThat(plan.keep()[1]).containsExactly(0, 1, 2, 3, 4);
    assertThat(plan.tokens()[2]).containsExactly(0, 2, 4);
    // no pruning point ran: every layer keeps everything
    plan = new MustDrop(MustDropConfig.defaults()).kvPlan(3, new int[] {1}, 4, new int[0][]);
    for (int l = 0; l < 3; l++) {
      assertThat(plan.keep()[l]).containsExactly(0, 1, 2, 3);
    }
  }

  @Test
  void meanVisualTokensAveragesOverLayersAfterEachLayersPruning() {
    assertThat(
            MustDrop.meanVisualTokens(
                32, new int[] {2, 6, 10, 14}, 576, new int[] {400, 300, 200, 100}))
        .isEqualTo((576 * 2 + 400 * 4 + 300 * 4 + 200 * 4 + 100 * 18) / 32.0);
    assertThat(MustDrop.meanVisualTokens(4, new int[] {0, 1, 2}, 10, new int[0])).isEqualTo(10.0);
  }

  @Test
  void pruningLayersScaleToTheModelDepth() {
    MustDropConfig d = MustDropConfig.defaults();
    assertThat(d.pruningLayers(32)).containsExactly(2, 6, 10, 14);
    assertThat(d.pruningLayers(40)).containsExactly(3, 8, 13, 18);
    assertThat(d.pruningLayers(16)).containsExactly(1, 3, 5, 7);
    assertThat(d.pruningLayers(4)).containsExactly(0, 1, 2);
    assertThat(d.pruningLayers(2)).containsExactly(0);
    MustDropConfig explicit = MustDropConfig.fromJson(obj("{\"pruning_layers\":[2,6,20]}"));
    assertThat(explicit.pruningLayers(32)).containsExactly(2, 6, 20);
    assertThatThrownBy(() -> explicit.pruningLayers(16))
        .hasMessageContaining("mustdrop.pruning_layers")
        .hasMessageContaining("[0, 14]");
  }

  @Test
  void configJsonRoundTripAndErrors() {
    MustDropConfig d = MustDropConfig.defaults();
    assertThat(MustDropConfig.fromJson(obj("{\"op\":\"mustdrop\"}"))).isEqualTo(d);
    assertThat(d.toJson())
        .isEqualTo(
            "{\"op\":\"mustdrop\",\"stage_a\":true,\"stage_b\":true,\"stage_c\":true,"
                + "\"window\":3,\"threshold\":0.8,\"key_share\":0.08,\"global_thr\":0.001,\"individual_thr\":0.001,"
                + "\"decode_positions\":\"own_cache_length\"}");
    MustDropConfig c =
        MustDropConfig.fromJson(
            obj(
                "{\"stage_b\":false,\"window\":2,\"retained_tokens\":128,"
                    + "\"pruning_layers\":[1,3],\"decode_positions\":\"final_length\"}"));
    assertThat(MustDropConfig.fromJson(obj(c.toJson()))).isEqualTo(c);
    assertThat(c.thresholdMode()).isFalse();
    assertThat(c.stageB()).isFalse();
    assertError("{\"window\":1}", "mustdrop.window must be an integer in [2, 64], got 1");
    assertError("{\"threshold\":3}", "mustdrop.threshold must be a finite number in [-1, 2]");
    assertError("{\"key_share\":1.5}", "mustdrop.key_share must be a number in [0, 1], got 1.5");
    assertError(
        "{\"global_thr\":-1}", "mustdrop.global_thr must be a finite number >= 0, got -1.0");
    assertError(
        "{\"individual_thr\":\"x\"}", "mustdrop.individual_thr must be a number, got \"x\"");
    assertError(
        "{\"retained_tokens\":0}",
        "mustdrop.retained_tokens must be an integer in [1, 1000000], got 0");
    assertError(
        "{\"pruning_layers\":[3,3]}", "mustdrop.pruning_layers must be strictly increasing");
    assertError("{\"pruning_layers\":[]}", "mustdrop.pruning_layers must not be an empty array");
    assertError("{\"stage_c\":1}", "mustdrop.stage_c must be true or false, got 1");
    assertError(
        "{\"decode_positions\":\"x\"}",
        "mustdrop.decode_positions must be one of [own_cache_length,");
    assertError("{\"gamma\":1}", "mustdrop: unknown key \"gamma\"; allowed keys: [op, stage_a");
    assertThatThrownBy(() -> d.validate(2, 2, 32))
        .hasMessageContaining("mustdrop.window must be at most")
        .hasMessageContaining("2x2");
    assertThatThrownBy(() -> d.validate(24, 24, 1)).hasMessageContaining("at least 2 layers");
    d.validate(24, 24, 32);
    d.validate(5, 7, 4);
    assertThatThrownBy(() -> new MustDrop(d).mergeWindows(new float[4 * 2], 2, 2, 2, false))
        .hasMessageContaining("mustdrop.window");
  }

  @Test
  void retainedTokensFixesTheMergeCount() {
    // 24x24 as LLaVA: 577 - 128 = 449 -> r = 56 windows -> 576 - 448 = 128 patch tokens
    float[] hidden = new float[577 * 2];
    for (int i = 0; i < hidden.length; i++) {
      hidden[i] = (float) Math.sin(i * 0.37);
    }
    MustDrop md = new MustDrop(MustDropConfig.fromJson(obj("{\"retained_tokens\":128}")));
    MustDrop.WindowMerge m = md.mergeWindows(hidden, 24, 24, 2, true);
    assertThat(m.mergedWindows()).hasSize(56);
    assertThat(m.tokens()).isEqualTo(128);
    assertThat(md.keySet(new float[128])).hasSize(11); // ceil(0.08 * 128) = ceil(10.24)
  }

  private static void assertError(String json, String message) {
    assertThatThrownBy(() -> MustDropConfig.fromJson(obj(json)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(message);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> obj(String json) {
    return (Map<String, Object>) Json.parse(json);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> asMap(Object o) {
    return (Map<String, Object>) o;
  }
}
