package dev.tokenpress.operators.merge;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.Budget;
import dev.tokenpress.operators.api.LayerRange;
import dev.tokenpress.operators.api.VmtcConfig;
import dev.tokenpress.operators.api.VmtcConfig.ClusterOver;
import dev.tokenpress.operators.api.VmtcConfig.EmptyClusters;
import dev.tokenpress.operators.api.VmtcConfig.HeadAggregation;
import dev.tokenpress.operators.api.VmtcConfig.MergeWeight;
import dev.tokenpress.operators.api.VmtcConfig.Metric;
import dev.tokenpress.operators.api.VmtcConfig.Order;
import dev.tokenpress.operators.testing.Golden;
import java.math.BigDecimal;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * VMTC against {@code src/test/python/gen_golden_vmtc.py}, plus invariants and config validation.
 */
class VmtcTest {

  private static final Map<String, Object> GOLDEN = Golden.load("vmtc/vmtc.json");

  /** The config a golden case's options describe, built key by key as a plan parser would. */
  private static VmtcConfig config(Map<String, Object> o) {
    Budget budget =
        o.containsKey("keep")
            ? Budget.keep(Golden.integer(o.get("keep")))
            : o.containsKey("keep_ratio")
                ? Budget.keepRatio(Golden.number(o.get("keep_ratio")))
                : Budget.dropRatio(Golden.number(o.get("drop_ratio")));
    VmtcConfig.Builder b = VmtcConfig.builder(budget);
    for (Map.Entry<String, Object> e : o.entrySet()) {
      Object v = e.getValue();
      switch (e.getKey()) {
        case "keep", "keep_ratio", "drop_ratio" -> {}
        case "primary" -> b.primary(Golden.integer(v));
        case "primary_share" -> b.primaryShare(Golden.number(v));
        case "metric" -> b.metric(Metric.valueOf(upper(v)));
        case "merge_weight" -> b.mergeWeight(MergeWeight.valueOf(upper(v)));
        case "empty_clusters" -> b.emptyClusters(EmptyClusters.valueOf(upper(v)));
        case "order" -> b.order(Order.valueOf(upper(v)));
        case "cluster_over" -> b.clusterOver(ClusterOver.valueOf(upper(v)));
        case "max_iterations" -> b.maxIterations(Golden.integer(v));
        case "tolerance" -> b.tolerance(Golden.number(v));
        case "seed" -> b.seed(((BigDecimal) v).longValueExact());
        default -> throw new IllegalStateException("golden option " + e.getKey() + " not handled");
      }
    }
    return b.build();
  }

  private static String upper(Object v) {
    return ((String) v).toUpperCase(Locale.ROOT);
  }

  @Test
  @SuppressWarnings("unchecked")
  void everyGoldenCaseMatchesTheNumpyReference() {
    List<Map<String, Object>> cases = Golden.objects(GOLDEN.get("cases"));
    assertThat(cases).hasSizeGreaterThan(20);
    for (Map<String, Object> c : cases) {
      String name = (String) c.get("name");
      Map<String, Object> e = (Map<String, Object>) c.get("expected");
      VmtcConfig config = config((Map<String, Object>) c.get("options"));
      Vmtc vmtc = new Vmtc(config);
      int n = Golden.integer(c.get("n"));
      int dim = Golden.integer(c.get("dim"));
      float[] tokens = Golden.floats(c.get("tokens"));
      float[] features = c.get("features") == null ? tokens : Golden.floats(c.get("features"));
      int fdim = c.get("features") == null ? dim : Golden.integer(c.get("feature_dim"));
      float[] importance = Golden.floats(c.get("importance"));
      float[] sizes = c.get("sizes") == null ? null : Golden.floats(c.get("sizes"));
      long seed = ((BigDecimal) c.get("record_seed")).longValueExact();

      // The RNG stream, k-means++ from the reference's uniforms, Lloyd from the reference's init.
      int[] split = config.split(n);
      assertThat(split[0]).as(name + " K_p").isEqualTo(Golden.integer(e.get("primary_count")));
      assertThat(split[1]).as(name + " C").isEqualTo(Golden.integer(e.get("requested_clusters")));
      double[] u = Golden.doubles(e.get("uniforms"));
      assertThat(vmtc.uniforms(seed, split[1])).as(name + " uniforms").containsExactly(u);
      int[] points = Golden.ints(e.get("points"));
      int[] init = Golden.ints(e.get("init_centres"));
      if (split[1] > 0) {
        double[] x = Vmtc.pointFeatures(features, fdim, points, config.metric());
        assertThat(Vmtc.kMeansPlusPlus(x, points.length, fdim, split[1], u, config.metric()))
            .as(name + " k-means++ centres")
            .containsExactly(init);
        int[] labels = new int[points.length];
        int it = new Vmtc.Lloyd(x, points.length, fdim, split[1], config).run(init, labels);
        assertThat(it)
            .as(name + " Lloyd iterations")
            .isEqualTo(Golden.integer(e.get("iterations")));
      }

      float[] tokensBefore = tokens.clone();
      float[] importanceBefore = importance.clone();
      VmtcResult r = vmtc.compress(tokens, dim, features, fdim, importance, sizes, seed);
      assertThat(tokens).as(name + " tokens unchanged").containsExactly(tokensBefore);
      assertThat(importance).as(name + " importance unchanged").containsExactly(importanceBefore);

      assertThat(r.iterations())
          .as(name + " iterations")
          .isEqualTo(Golden.integer(e.get("iterations")));
      int[] offsets = Golden.ints(e.get("offsets"));
      assertThat(r.count()).as(name + " count").isEqualTo(offsets.length - 1);
      assertThat(r.offsets()).as(name + " offsets").containsExactly(offsets);
      assertThat(r.allSources())
          .as(name + " sources")
          .containsExactly(Golden.ints(e.get("sources")));
      assertThat(r.allWeights())
          .as(name + " weights")
          .containsExactly(Golden.floats(e.get("weights")), within(1e-7f));
      assertThat(r.sizes()).as(name + " sizes").containsExactly(Golden.floats(e.get("out_sizes")));
      assertThat(r.clusters())
          .as(name + " cluster assignment")
          .containsExactly(Golden.ints(e.get("clusters")));
      int[] outputOf = Golden.ints(e.get("output_of"));
      for (int i = 0; i < n; i++) {
        assertThat(r.outputOf(i)).as(name + " output of " + i).isEqualTo(outputOf[i]);
      }
      List<?> primary = (List<?>) e.get("out_primary");
      for (int k = 0; k < r.count(); k++) {
        assertThat(r.isPrimary(k)).as(name + " primary " + k).isEqualTo(primary.get(k));
      }
      float[] expected = Golden.floats(e.get("out_tokens"));
      float[] actual = r.tokens().toArray();
      assertThat(actual.length).as(name + " token values").isEqualTo(expected.length);
      for (int k = 0; k < actual.length; k++) {
        assertThat(actual[k])
            .as(name + " value " + k)
            .isCloseTo(expected[k], within(1e-6f * Math.max(1f, Math.abs(expected[k]))));
      }
    }
  }

  @Test
  @SuppressWarnings("unchecked")
  void importanceMatchesNumpy() {
    Map<String, Object> g = (Map<String, Object>) GOLDEN.get("importance");
    int layers = Golden.integer(g.get("layers"));
    int heads = Golden.integer(g.get("heads"));
    int n = Golden.integer(g.get("n"));
    float[] cls = Golden.floats(g.get("cls_attention"));
    for (HeadAggregation agg : HeadAggregation.values()) {
      Vmtc v = new Vmtc(VmtcConfig.builder(Budget.keep(1)).importanceHeads(agg).build());
      double[] expected = Golden.doubles(g.get(VmtcConfig.jsonName(agg)));
      float[] actual = v.importance(cls, layers, heads, n);
      for (int j = 0; j < n; j++) {
        assertThat((double) actual[j]).as(agg + " " + j).isCloseTo(expected[j], within(1e-6));
      }
    }
    Vmtc v = new Vmtc(VmtcConfig.defaults(Budget.keep(1)));
    assertThatThrownBy(() -> v.importance(cls, layers, heads, n + 1))
        .hasMessageContaining("not [layers=2");
  }

  private static float[] randomRows(int n, int d, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] x = new float[n * d];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (rng.nextDouble() * 2 - 1);
    }
    return x;
  }

  private static float[] randomImportance(int n, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rng.nextDouble() / n;
    }
    return a;
  }

  @Test
  void invariantsOnAPatchGrid() {
    int n = 7 * 7;
    int d = 12;
    float[] x = randomRows(n, d, 1);
    float[] imp = randomImportance(n, 2);
    imp[3] = 0f;
    imp[4] = 0f;
    for (Metric metric : Metric.values()) {
      for (int keep : new int[] {1, 2, 12, 25, 48}) {
        for (double share : new double[] {0.0, 0.5, 1.0}) {
          VmtcConfig cfg =
              VmtcConfig.builder(Budget.keep(keep)).primaryShare(share).metric(metric).build();
          String as = cfg.toJson();
          VmtcResult r = new Vmtc(cfg).compress(x.clone(), d, imp.clone(), 99L);
          int[] split = cfg.split(n);
          int expectedCount = split[1] == 0 ? split[0] : keep;
          assertThat(r.count()).as(as).isEqualTo(expectedCount);
          int primaries = 0;
          int[] seen = new int[n];
          float[] tok = r.tokens().toArray();
          for (int k = 0; k < r.count(); k++) {
            int[] src = r.sources(k);
            float[] w = r.weights(k);
            double sum = 0;
            for (int t = 0; t < src.length; t++) {
              seen[src[t]]++;
              sum += w[t];
              assertThat(r.outputOf(src[t])).isEqualTo(k);
              assertThat(t == 0 || src[t] > src[t - 1]).as(as + " ascending sources").isTrue();
            }
            assertThat(sum).as(as + " weights of " + k).isCloseTo(1.0, within(1e-6));
            assertThat(r.size(k)).isEqualTo((float) src.length);
            for (int c = 0; c < d; c++) {
              double mean = 0;
              for (int t = 0; t < src.length; t++) {
                mean += (double) w[t] * x[src[t] * d + c];
              }
              assertThat((double) tok[k * d + c]).as(as + " value").isCloseTo(mean, within(1e-5));
            }
            if (r.isPrimary(k)) {
              primaries++;
              assertThat(src).hasSize(1);
              assertThat(r.cluster(src[0])).isEqualTo(VmtcResult.PRIMARY);
            } else {
              assertThat(r.cluster(src[0])).isBetween(0, r.clusterCount() - 1);
            }
            assertThat(k == 0 || r.sources(k)[0] > r.sources(k - 1)[0])
                .as(as + " raster order")
                .isTrue();
          }
          assertThat(primaries).as(as).isEqualTo(split[0]);
          assertThat(r.clusterCount()).as(as).isEqualTo(split[1]);
          for (int i = 0; i < n; i++) {
            int expectSeen = split[1] == 0 && r.cluster(i) == VmtcResult.DROPPED ? 0 : 1;
            assertThat(seen[i])
                .as(as + " token " + i + " in exactly one output")
                .isEqualTo(expectSeen);
          }
        }
      }
    }
  }

  @Test
  void keepAllIsTheIdentity() {
    int n = 13;
    int d = 5;
    float[] x = randomRows(n, d, 3);
    // Duplicates: k-means would merge them if clusters could be empty; reassign keeps every
    // cluster.
    System.arraycopy(x, 0, x, 4 * d, d);
    System.arraycopy(x, 0, x, 9 * d, d);
    float[] imp = randomImportance(n, 4);
    for (Budget b :
        List.of(Budget.keep(n), Budget.keep(n + 5), Budget.keepRatio(1.0), Budget.dropRatio(0.0))) {
      for (double share : new double[] {0.0, 0.3, 1.0}) {
        for (Metric metric : Metric.values()) {
          VmtcConfig cfg = VmtcConfig.builder(b).primaryShare(share).metric(metric).build();
          VmtcResult r = new Vmtc(cfg).compress(x, d, imp, 5L);
          assertThat(r.tokens().toArray()).as(cfg.toJson()).containsExactly(x);
          for (int i = 0; i < n; i++) {
            assertThat(r.sources(i)).containsExactly(i);
            assertThat(r.weights(i)).containsExactly(1f);
            assertThat(r.outputOf(i)).isEqualTo(i);
          }
        }
      }
    }
  }

  @Test
  void sameSeedSameOutputAndSeedsMatter() {
    int n = 40;
    int d = 6;
    float[] x = randomRows(n, d, 8);
    float[] imp = randomImportance(n, 9);
    Vmtc v = new Vmtc(VmtcConfig.builder(Budget.keep(10)).primary(2).build());
    VmtcResult a = v.compress(x, d, imp, 1234L);
    VmtcResult b = v.compress(x, d, imp, 1234L);
    assertThat(b.clusters()).containsExactly(a.clusters());
    assertThat(b.tokens()).isEqualTo(a.tokens());
    assertThat(b.allWeights()).containsExactly(a.allWeights());
    boolean differs = false;
    for (long s = 0; s < 10 && !differs; s++) {
      differs = !Arrays.equals(v.compress(x, d, imp, s).clusters(), a.clusters());
    }
    assertThat(differs).as("some record seed changes the clustering").isTrue();
    // The config seed is combined with the record seed.
    Vmtc other = new Vmtc(v.config().toBuilder().seed(77).build());
    assertThat(other.uniforms(1234L, 3)).isNotEqualTo(v.uniforms(1234L, 3));
  }

  @Test
  void emptyInputGivesEmptyOutput() {
    VmtcResult r =
        new Vmtc(VmtcConfig.defaults(Budget.keepRatio(0.5)))
            .compress(new float[0], 4, new float[0], 1L);
    assertThat(r.count()).isZero();
    assertThat(r.clusters()).isEmpty();
    assertThat(r.offsets()).containsExactly(0);
  }

  @Test
  void badInputsNameTheArgument() {
    Vmtc v = new Vmtc(VmtcConfig.defaults(Budget.keep(2)));
    float[] x = randomRows(4, 3, 1);
    assertThatThrownBy(() -> v.compress(x, 3, new float[] {0.1f, Float.NaN, 0f, 0f}, 0L))
        .hasMessageContaining("importance[1]")
        .hasMessageContaining("NaN");
    assertThatThrownBy(() -> v.compress(x, 3, new float[] {0.1f, -0.5f, 0f, 0f}, 0L))
        .hasMessageContaining("importance[1] must be finite and >= 0, got -0.5");
    assertThatThrownBy(() -> v.compress(x, 3, new float[3], 0L))
        .hasMessageContaining("tokens has 12 values");
    assertThatThrownBy(() -> v.compress(x, 3, x, 3, new float[4], new float[] {1, 1, 0, 1}, 0L))
        .hasMessageContaining("sizes[2] must be finite and > 0");
    assertThatThrownBy(() -> v.compress(x, 3, x, 4, new float[4], null, 0L))
        .hasMessageContaining("features has 12 values, not [N=4 (importance), dim=4]");
    float[] bad = x.clone();
    bad[5] = Float.POSITIVE_INFINITY;
    assertThatThrownBy(() -> v.compress(bad, 3, new float[4], 0L))
        .hasMessageContaining("tokens[1, 2] is Infinity");
  }

  @Test
  void configValidationNamesFieldAndRange() {
    Budget b = Budget.keep(8);
    assertThatThrownBy(() -> VmtcConfig.builder(b).primaryShare(1.5).build())
        .hasMessage("vmtc.primary_share must be in [0, 1], got 1.5");
    assertThatThrownBy(() -> VmtcConfig.builder(b).primaryShare(Double.NaN).build())
        .hasMessageContaining("vmtc.primary_share");
    assertThatThrownBy(() -> VmtcConfig.builder(b).primary(-2).build())
        .hasMessage("vmtc.primary must be >= 0, got -2");
    assertThatThrownBy(() -> VmtcConfig.builder(b).maxIterations(-1).build())
        .hasMessage("vmtc.max_iterations must be in [0, 10000], got -1");
    assertThatThrownBy(() -> VmtcConfig.builder(b).maxIterations(10_001).build())
        .hasMessageContaining("vmtc.max_iterations");
    assertThatThrownBy(() -> VmtcConfig.builder(b).tolerance(-1e-3).build())
        .hasMessage("vmtc.tolerance must be a finite number >= 0, got -0.001");
    assertThatThrownBy(() -> VmtcConfig.builder(b).tolerance(Double.POSITIVE_INFINITY).build())
        .hasMessageContaining("vmtc.tolerance");
    assertThatThrownBy(() -> VmtcConfig.builder(b).metric(null).build())
        .hasMessage("vmtc.metric must be one of [cosine, euclidean], got null");
    assertThatThrownBy(() -> VmtcConfig.builder(b).emptyClusters(null).build())
        .hasMessage("vmtc.empty_clusters must be one of [reassign, drop], got null");
    assertThatThrownBy(() -> VmtcConfig.builder(b).mergeAt(null).build())
        .hasMessage("vmtc.merge_at must be one of [projector_input, projected], got null");
    assertThatThrownBy(() -> VmtcConfig.builder(null).build())
        .hasMessageContaining("vmtc: one of [keep");

    VmtcConfig cfg = VmtcConfig.defaults(b);
    assertThat(cfg.checkModel(24, true)).containsExactly(22);
    assertThat(
            cfg.toBuilder()
                .importanceLayers(LayerRange.parse("16..L-2"))
                .build()
                .checkModel(24, true))
        .hasSize(7);
    assertThatThrownBy(() -> cfg.checkModel(24, false))
        .hasMessageContaining("vmtc needs a ViT with a CLS token");
    assertThatThrownBy(
            () ->
                cfg.toBuilder()
                    .importanceLayers(LayerRange.parse("30"))
                    .build()
                    .checkModel(24, true))
        .hasMessageContaining("vmtc.importance_layers");
    assertThatThrownBy(() -> cfg.checkModel(0, true))
        .hasMessageContaining("vitLayers must be >= 1, got 0");
  }

  @Test
  void splitAndCanonicalJson() {
    VmtcConfig cfg = VmtcConfig.defaults(Budget.keep(7));
    assertThat(cfg.split(100)).containsExactly(4, 3); // roundHalfUp(3.5) = 4 primary
    assertThat(cfg.split(5)).containsExactly(3, 2); // T = min(7, 5)
    assertThat(cfg.toBuilder().primary(10).build().split(100)).containsExactly(7, 0);
    assertThat(cfg.toBuilder().primary(0).build().split(100)).containsExactly(0, 7);
    assertThat(cfg.toJson())
        .isEqualTo(
            "{\"op\":\"vmtc\",\"keep\":7,\"merge_at\":\"projector_input\","
                + "\"primary_share\":0.5,\"importance_layers\":\"L-2..L-2\",\"importance_heads\":\"mean\","
                + "\"cluster_over\":\"rest\","
                + "\"metric\":\"cosine\",\"max_iterations\":100,\"tolerance\":0,\"merge_weight\":\"importance\","
                + "\"empty_clusters\":\"reassign\",\"order\":\"raster\",\"seed\":0}");
    assertThat(cfg.toBuilder().primary(3).build().toJsonObject())
        .containsEntry("primary", 3)
        .doesNotContainKey("primary_share");
    assertThat(VmtcConfig.KEYS)
        .containsAll(cfg.toJsonObject().keySet().stream().filter(k -> !k.equals("op")).toList());
    assertThat(cfg.toBuilder().build()).isEqualTo(cfg);
  }
}
