package dev.tokenpress.runtime.lm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.SparseAttention;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.checkpoint.LmCheckpoint;
import dev.tokenpress.runtime.onnx.DirectTensor;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.ReferenceLlama;
import dev.tokenpress.runtime.testing.TinyCheckpoints;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ZipVL inside the split runtime: sparse prefill, the mixed-precision cache, decode re-encoding.
 */
class ZipVlRuntimeTest {
  // 2 prefix rows, 16 "visual" rows (text embeddings stand in for projected tokens), 4 suffix rows
  private static final int[] IDS = {
    1, 20, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 5, 6, 7, 8
  };
  private static final SequenceLayout LAYOUT = SequenceLayout.prefill(2, 16, 4, List.of());
  private static final ModelShape SHAPE =
      new ModelShape(
          2,
          2,
          4,
          4,
          true,
          0,
          TinyCheckpoints.LAYERS,
          TinyCheckpoints.HEADS,
          TinyCheckpoints.KV_HEADS,
          TinyCheckpoints.HIDDEN);

  @TempDir static Path tmp;
  private static Path ckpt;
  private static Bundle bundle;

  @BeforeAll
  static void build() {
    ckpt = TinyCheckpoints.write(tmp.resolve("ckpt"), 11, true, false);
    BundleBuilder.build(ckpt, tmp.resolve("bundle"), BuildOptions.defaults());
    bundle = Bundle.open(tmp.resolve("bundle"));
  }

  private static GenerationResult generate(
      LlamaRuntime rt, String plan, KvPrecision kv, int maxNew) {
    List<TokenOperator> ops = CompressionPlan.parse(plan).bind(SHAPE);
    HookRunner hooks = new HookRunner(ops, SHAPE, 42L);
    hooks.startPrefill(LAYOUT);
    LmRequest req =
        new LmRequest(
            rt.embedding().embed(IDS),
            LAYOUT.positionIds(),
            LAYOUT.originalIndices(),
            new int[0],
            maxNew,
            kv,
            true);
    return rt.generate(req, hooks);
  }

  @Test
  void gatheredSparseAttentionMatchesNumpyForBothUnimportantRowRules() throws IOException {
    JsonNode g;
    try (InputStream in =
        ZipVlRuntimeTest.class.getResourceAsStream("/golden/zipvl/sparse_attention.json")) {
      g = new ObjectMapper().readTree(in);
    }
    int n = g.get("n").asInt();
    int qW = g.get("heads").asInt() * g.get("head_dim").asInt();
    int kvW = g.get("kv_heads").asInt() * g.get("head_dim").asInt();
    assertThat(qW).isEqualTo(TinyCheckpoints.HEADS * TinyCheckpoints.HEAD_DIM);
    int[] order = ints(g.get("order"));
    int[] rows = ints(g.get("rows"));
    try (LlamaRuntime rt = LlamaRuntime.open(bundle, SessionConfig.singleThreaded())) {
      for (String mode : new String[] {"important_keys", "zero"}) {
        try (DirectTensor q = tensor(floats(g.get("q")), n, qW);
            DirectTensor k = tensor(floats(g.get("k")), n, kvW);
            DirectTensor v = tensor(floats(g.get("v")), n, kvW);
            DirectTensor attn = DirectTensor.floats(1, n, qW)) {
          SparseAttention set = new SparseAttention(n, rows, mode.equals("important_keys"));
          int[] qk =
              SparsePrefillAttention.run(rt.attention(), q, k, v, attn, order, set, null, qW, kvW);
          assertThat(qk).containsExactly(mode.equals("zero") ? rows.length : n, rows.length);
          float[] got = new float[n * qW];
          attn.get(0, got, 0, got.length);
          double[] want = doubles(g.get(mode));
          for (int i = 0; i < got.length; i++) {
            assertThat((double) got[i]).as("%s [%d]", mode, i).isCloseTo(want[i], within(1e-5));
          }
        }
      }
    }
  }

  @Test
  void tauOneWithFloat16ImportantStorageEqualsTheEmptyPlan() {
    try (LlamaRuntime rt = LlamaRuntime.open(bundle, SessionConfig.singleThreaded())) {
      GenerationResult empty = generate(rt, "[]", KvPrecision.FP16, 8);
      GenerationResult z =
          generate(
              rt,
              "[{\"op\":\"zipvl\",\"tau\":1.0,\"bits_high\":16,\"interval\":3}]",
              KvPrecision.FP16,
              8);
      assertThat(z.tokenIds()).containsExactly(empty.tokenIds());
      assertThat(z.stepLogits()).hasSameSizeAs(empty.stepLogits());
      for (int s = 0; s < empty.stepLogits().size(); s++) {
        float[] a = empty.stepLogits().get(s);
        float[] b = z.stepLogits().get(s);
        for (int i = 0; i < a.length; i++) {
          assertThat(b[i]).as("step %d logit %d", s, i).isCloseTo(a[i], within(1e-5f));
        }
      }
      assertThat(z.kvCache().layer(0).precisions()).containsOnly(KvPrecision.FP16);
      assertThat(z.kvCache().layer(0).compressionInfo().important()).isEqualTo(IDS.length);
    }
  }

  @Test
  void sparsePrefillEqualsTheReferenceWithEveryUnimportantKeyMasked() {
    try (LlamaRuntime rt = LlamaRuntime.open(bundle, SessionConfig.singleThreaded());
        LmCheckpoint ck = LmCheckpoint.open(ckpt)) {
      GenerationResult r =
          generate(
              rt,
              "[{\"op\":\"zipvl\",\"tau\":0.8,\"probes_recent\":4,\"probes_random\":4,\"interval\":0}]",
              KvPrecision.FP32,
              2);
      KvCache c = r.kvCache();
      int n = IDS.length;
      boolean[][][] mask = new boolean[TinyCheckpoints.LAYERS][n][n];
      int sparseLayers = 0;
      for (int l = 0; l < TinyCheckpoints.LAYERS; l++) {
        KvPrecision[] p = c.layer(l).precisions();
        int important = 0;
        for (int j = 0; j < n; j++) {
          important += p[j] == KvPrecision.INT4 ? 1 : 0;
          for (int i = 0; i < n; i++) {
            mask[l][i][j] = p[j] != KvPrecision.INT4;
          }
        }
        assertThat(important).isEqualTo(c.layer(l).compressionInfo().important());
        assertThat(p[0]).isEqualTo(KvPrecision.INT4);
        assertThat(p[n - 1]).isEqualTo(KvPrecision.INT4);
        sparseLayers += important < n ? 1 : 0;
        long dense = LmFlops.layer(rt.spec(), n, n);
        assertThat(r.flops().prefillPerLayer()[l])
            .isEqualTo(LmFlops.layer(rt.spec(), n, n, important))
            .isLessThanOrEqualTo(dense);
      }
      assertThat(sparseLayers).as("tau 0.8 leaves some layer sparse").isPositive();
      float[][] x = new float[n][TinyCheckpoints.HIDDEN];
      for (int i = 0; i < n; i++) {
        rt.embedding().lookup(IDS[i], x[i], 0);
      }
      double[] want = new ReferenceLlama(ck).lastLogits(x, LAYOUT.positionIds(), Map.of(), mask);
      float[] got = r.stepLogits().get(0);
      for (int i = 0; i < got.length; i++) {
        assertThat((double) got[i]).isCloseTo(want[i], within(1e-4));
      }
    }
  }

  @Test
  void kvOnlyKeepsExactHiddenStatesAndDecodeReadsTheMixedCache() {
    try (LlamaRuntime rt = LlamaRuntime.open(bundle, SessionConfig.singleThreaded())) {
      GenerationResult empty = generate(rt, "[]", KvPrecision.FP32, 6);
      GenerationResult z =
          generate(
              rt, "[{\"op\":\"zipvl\",\"mode\":\"kv-only\",\"interval\":2}]", KvPrecision.FP32, 6);
      float[] a = empty.stepLogits().get(0);
      float[] b = z.stepLogits().get(0);
      for (int i = 0; i < a.length; i++) {
        assertThat(b[i]).isCloseTo(a[i], within(1e-6f));
      }
      // every 2 generated tokens were re-encoded: at most one float entry is left per layer
      KvCache c = z.kvCache();
      for (int l = 0; l < c.numLayers(); l++) {
        assertThat(c.layer(l).trailingFloatEntries()).isLessThan(2);
        assertThat(c.layer(l).precisions()).contains(KvPrecision.INT4, KvPrecision.INT2);
      }
      assertThat(c.storedBytes()).isLessThan(empty.kvCache().storedBytes());
    }
  }

  @Test
  void afterFastVEachLayerIsScoredOverItsOwnRowsAndQuantisedMixed() {
    try (LlamaRuntime rt = LlamaRuntime.open(bundle, SessionConfig.singleThreaded())) {
      GenerationResult r =
          generate(
              rt,
              "[{\"op\":\"fastv\",\"layer\":1,\"keep\":4},"
                  + "{\"op\":\"zipvl\",\"tau\":0.9,\"probes_recent\":4,\"probes_random\":4,\"interval\":0}]",
              KvPrecision.FP16,
              3);
      KvCache c = r.kvCache();
      int generated = r.tokenIds().length - 1;
      // FastV drops 12 of the 16 visual rows after layer 0: layers >= 1 are shorter
      assertThat(c.layer(0).length()).isEqualTo(IDS.length + generated);
      for (int l = 1; l < c.numLayers(); l++) {
        assertThat(c.layer(l).length()).isEqualTo(IDS.length - 12 + generated);
      }
      for (int l = 0; l < c.numLayers(); l++) {
        int prefill = c.layer(l).length() - generated;
        assertThat(c.layer(l).compressionInfo().scored()).isEqualTo(prefill);
        KvPrecision[] p = c.layer(l).precisions();
        assertThat(java.util.Arrays.copyOf(p, prefill))
            .containsOnly(KvPrecision.INT4, KvPrecision.INT2)
            .contains(KvPrecision.INT4);
        assertThat(c.layer(l).trailingFloatEntries()).isEqualTo(generated);
      }
    }
  }

  @Test
  void integerKvDtypeQuantisesUniformlyAndRefusesAQuantisingPlan() {
    try (LlamaRuntime rt = LlamaRuntime.open(bundle, SessionConfig.singleThreaded())) {
      GenerationResult r = generate(rt, "[]", KvPrecision.INT4, 4);
      for (int l = 0; l < r.kvCache().numLayers(); l++) {
        KvPrecision[] p = r.kvCache().layer(l).precisions();
        for (int j = 0; j < IDS.length; j++) {
          assertThat(p[j]).isEqualTo(KvPrecision.INT4);
        }
        assertThat(r.kvCache().layer(l).trailingFloatEntries()).isEqualTo(p.length - IDS.length);
      }
      assertThatThrownBy(() -> generate(rt, "[{\"op\":\"zipvl\"}]", KvPrecision.INT8, 2))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("kv.dtype int8")
          .hasMessageContaining("float32, float16");
    }
  }

  private static DirectTensor tensor(float[] x, int rows, int width) {
    DirectTensor t = DirectTensor.floats(1, rows, width);
    t.put(x, 0, x.length);
    return t;
  }

  private static int[] ints(JsonNode a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).asInt();
    }
    return out;
  }

  private static float[] floats(JsonNode a) {
    float[] out = new float[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) a.get(i).asDouble();
    }
    return out;
  }

  private static double[] doubles(JsonNode a) {
    double[] out = new double[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).asDouble();
    }
    return out;
  }
}
