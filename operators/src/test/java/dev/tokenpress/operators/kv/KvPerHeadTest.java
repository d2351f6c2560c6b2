package dev.tokenpress.operators.kv;

import static dev.tokenpress.operators.kv.KvZipCacheGoldenTest.assertBits;
import static dev.tokenpress.operators.kv.KvZipCacheGoldenTest.assertEncoding;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.kernels.DecodeAttention;
import dev.tokenpress.operators.testing.Golden;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Mixed precision with one important set per KV head ({@link MixedPrecisionEncoder#encodePerHead}).
 */
class KvPerHeadTest {
  private static final Map<String, Object> GOLDEN = Golden.load("kv/kv_quant_per_head.json");

  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> heads() {
    return (List<Map<String, Object>>) GOLDEN.get("heads");
  }

  private static boolean[][] goldenMasks() {
    List<Map<String, Object>> heads = heads();
    boolean[][] m = new boolean[heads.size()][];
    for (int g = 0; g < m.length; g++) {
      List<?> l = (List<?>) heads.get(g).get("important");
      m[g] = new boolean[l.size()];
      for (int r = 0; r < m[g].length; r++) {
        m[g][r] = (Boolean) l.get(r);
      }
    }
    return m;
  }

  @Test
  @SuppressWarnings("unchecked")
  void perHeadEncodingMatchesNumpyBitForBitAndExportsOneChunkPerHeadAndSubset() {
    int rows = Golden.integer(GOLDEN.get("rows"));
    KvLayout layout =
        new KvLayout(
            Golden.integer(GOLDEN.get("kv_heads")), Golden.integer(GOLDEN.get("head_dim")));
    int[] tok = new int[rows];
    int[] pos = new int[rows];
    for (int i = 0; i < rows; i++) {
      tok[i] = 30 + i;
      pos[i] = 5 + 3 * i;
    }
    boolean[][] masks = goldenMasks();
    KvSegment seg =
        MixedPrecisionEncoder.ZIPVL.encodePerHead(
            layout,
            Golden.floats(GOLDEN.get("k")),
            Golden.floats(GOLDEN.get("v")),
            rows,
            tok,
            pos,
            masks);
    float[] kd = new float[rows * layout.width()];
    float[] vd = new float[rows * layout.width()];
    seg.decodeKeys(kd, 0);
    seg.decodeValues(vd, 0);
    assertBits("per-head k deq", kd, Golden.floats(GOLDEN.get("k_deq")));
    assertBits("per-head v deq", vd, Golden.floats(GOLDEN.get("v_deq")));
    for (int r = 0; r < rows; r++) {
      assertThat(seg.tokenIndex(r)).isEqualTo(30 + r);
      assertThat(seg.position(r)).isEqualTo(5 + 3 * r);
      assertThat(seg.precision(r)).as("head 1 is all important").isEqualTo(KvPrecision.INT4);
    }
    assertThat(seg.precision()).isEqualTo(KvPrecision.INT4);

    List<KvChunk> chunks = seg.export(50);
    assertThat(seg.chunkCount()).isEqualTo(chunks.size()).isEqualTo(6); // 2 + 1 + 2 + 1
    int c = 0;
    List<Map<String, Object>> heads = heads();
    for (int g = 0; g < heads.size(); g++) {
      for (Map<String, Object> e : (List<Map<String, Object>>) heads.get(g).get("chunks")) {
        KvChunk ch = chunks.get(c++);
        String what = "head " + g + " int" + Golden.integer(e.get("bits"));
        assertThat(ch.kvHead()).as(what).isEqualTo(g);
        assertThat(ch.k().shape()).as(what).containsExactly(ch.rows(), 1, layout.headDim());
        int[] want = Golden.ints(e.get("rows"));
        assertThat(ch.rows()).isEqualTo(want.length);
        for (int i = 0; i < want.length; i++) {
          assertThat(ch.entries()[i]).isEqualTo(50 + want[i]);
          assertThat(ch.tokenIndex()[i]).isEqualTo(30 + want[i]);
          assertThat(ch.position()[i]).isEqualTo(5 + 3 * want[i]);
        }
        assertEncoding(what, ch, e);
      }
    }
    assertThat(chunks.get(2).precision()).isEqualTo(KvPrecision.INT4); // head 1, one subset
    assertThat(chunks.get(5).precision()).isEqualTo(KvPrecision.INT2); // head 3, one subset
  }

  /** A layer of {@code len} entries whose middle [a, b) is one per-head group, with fp16 ends. */
  private static LayerKvCache perHeadCache(
      KvLayout layout, float[] k, float[] v, int len, int a, int b, boolean[][] masks) {
    LayerKvCache c = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP16));
    int[] idx = new int[len];
    for (int i = 0; i < len; i++) {
      idx[i] = 2 * i + 1;
    }
    c.appendRows(k, 0, v, 0, len, idx, idx, 0);
    c.recodeMixedPerHead(a, b, masks, MixedPrecisionEncoder.ZIPVL);
    return c;
  }

  private static float[] gaussian(SplittableRandom rnd, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }

  private static boolean[][] randomMasks(SplittableRandom rnd, int heads, int n) {
    boolean[][] m = new boolean[heads][n];
    for (int g = 0; g < heads; g++) {
      for (int i = 0; i < n; i++) {
        m[g][i] = rnd.nextInt(3) == 0;
      }
    }
    return m;
  }

  @Test
  void decodeAttentionOverPerHeadSegmentsEqualsAttentionOverTheDequantisedFloats() {
    SplittableRandom rnd = new SplittableRandom(17);
    DecodeAttention att = new DecodeAttention();
    int hd = 12;
    for (int[] shape :
        new int[][] {{8, 2}, {3, 3}, {4, 1}}) { // grouped (4 and 1 query heads per KV head) and MHA
      int heads = shape[0];
      KvLayout layout = new KvLayout(shape[1], hd);
      for (int len : new int[] {1, 9, 130}) {
        float[] k = gaussian(rnd, len * layout.width());
        float[] v = gaussian(rnd, len * layout.width());
        float[] q = gaussian(rnd, heads * hd);
        float[] bias = new float[len];
        int a = len / 4;
        int b = len - len / 5;
        LayerKvCache quant =
            perHeadCache(layout, k, v, len, a, b, randomMasks(rnd, shape[1], b - a));
        float scale = (float) (1 / Math.sqrt(hd));
        KvDecodeAttentionTest.assertAttendsLikeItsFloats(
            att, q, quant, heads, scale, bias, layout + " len " + len);
        // the one-query-head overloads, per KV head, against the floats
        KvSegment seg = quant.segments().get(a == 0 ? 0 : 1);
        assertThat(seg).isInstanceOf(HeadSplitKvSegment.class);
        float[] fk = new float[seg.rows() * layout.width()];
        float[] fv = new float[seg.rows() * layout.width()];
        seg.decodeKeys(fk, 0);
        seg.decodeValues(fv, 0);
        float[] wts = gaussian(rnd, seg.rows());
        for (int g = 0; g < layout.numKvHeads(); g++) {
          float[] s = new float[seg.rows()];
          seg.keyScores(g, q, 0, 0.5f, s, 0);
          float[] acc = new float[hd];
          seg.accumulateValues(g, wts, 0, acc, 0);
          for (int r = 0; r < seg.rows(); r++) {
            double dot = 0;
            for (int d = 0; d < hd; d++) {
              dot += q[d] * fk[r * layout.width() + g * hd + d];
            }
            assertThat(s[r])
                .as("head %d row %d score", g, r)
                .isCloseTo((float) (0.5 * dot), within(1e-4f));
          }
          for (int d = 0; d < hd; d++) {
            double sum = 0;
            for (int r = 0; r < seg.rows(); r++) {
              sum += wts[r] * fv[r * layout.width() + g * hd + d];
            }
            assertThat(acc[d])
                .as("head %d element %d sum", g, d)
                .isCloseTo((float) sum, within(1e-3f));
          }
        }
      }
    }
  }

  @Test
  void selectRetainAndExportKeepEveryHeadsRowsAndCoverEachEntryAndHeadOnce() {
    SplittableRandom rnd = new SplittableRandom(5);
    KvLayout layout = new KvLayout(3, 5);
    int len = 20;
    int w = layout.width();
    float[] k = gaussian(rnd, len * w);
    float[] v = gaussian(rnd, len * w);
    boolean[][] masks = randomMasks(rnd, 3, 12);
    masks[1] = new boolean[12]; // head 1 all unimportant
    masks[2][0] = true;
    masks[2][11] = false;
    LayerKvCache c = perHeadCache(layout, k, v, len, 4, 16, masks);
    float[] keys = c.keys();
    float[] values = c.values();
    KvPrecision[] prec = c.precisions();
    for (int i = 0; i < 12; i++) {
      boolean any = masks[0][i] || masks[1][i] || masks[2][i];
      assertThat(prec[4 + i])
          .as("entry %d: widest over heads", 4 + i)
          .isEqualTo(any ? KvPrecision.INT4 : KvPrecision.INT2);
    }
    assertCoversOnce(c);

    // retain drops entries without re-quantising: kept entries dequantise as before
    int[] keep = {0, 3, 4, 6, 7, 9, 15, 16, 19};
    c.retain(keep);
    float[] k2 = c.keys();
    float[] v2 = c.values();
    for (int i = 0; i < keep.length; i++) {
      for (int x = 0; x < w; x++) {
        assertThat(k2[i * w + x]).isEqualTo(keys[keep[i] * w + x]);
        assertThat(v2[i * w + x]).isEqualTo(values[keep[i] * w + x]);
      }
      assertThat(c.precisions()[i]).isEqualTo(prec[keep[i]]);
    }
    assertCoversOnce(c);
    // keep only rows unimportant in head 0: head 0's high subset disappears
    KvSegment seg = c.segments().get(1);
    int[] low0 = new int[seg.rows()];
    int n = 0;
    for (int r = 0; r < seg.rows(); r++) {
      if (((HeadSplitKvSegment) seg).head(0).precision(r) == KvPrecision.INT2) {
        low0[n++] = r;
      }
    }
    KvSegment sel = seg.select(java.util.Arrays.copyOf(low0, n));
    assertThat(((HeadSplitKvSegment) sel).head(0)).isInstanceOf(QuantizedKvSegment.class);
    assertThat(sel.export(0)).filteredOn(ch -> ch.kvHead() == 0).hasSize(1);
  }

  private static void assertCoversOnce(LayerKvCache c) {
    int heads = c.layout().numKvHeads();
    int[][] seen = new int[c.length()][heads];
    List<KvChunk> chunks = c.chunks();
    assertThat(chunks).hasSize(c.chunkCount());
    for (KvChunk ch : chunks) {
      for (int e : ch.entries()) {
        for (int g = 0; g < heads; g++) {
          if (ch.kvHead() == -1 || ch.kvHead() == g) {
            seen[e][g]++;
          }
        }
      }
      assertThat(ch.k().shape()[1]).isEqualTo(ch.kvHead() == -1 ? heads : 1);
    }
    for (int e = 0; e < c.length(); e++) {
      for (int g = 0; g < heads; g++) {
        assertThat(seen[e][g]).as("entry %d head %d", e, g).isEqualTo(1);
      }
    }
  }

  @Test
  void storedBytesArePerHeadCodesPlusPerHeadTokenAndChannelMetadata() {
    // W = 64 as 2 KV heads x 32: per head and row 2 * ceil(32 * bits / 8) code bytes + 8 bytes of
    // value
    // scale/zero; per head and subset 3 * 32 floats of key scale/zero and value channel scales
    KvLayout layout = new KvLayout(2, 32);
    SplittableRandom rnd = new SplittableRandom(9);
    int n = 10;
    float[] k = gaussian(rnd, n * 64);
    float[] v = gaussian(rnd, n * 64);
    boolean[][] m = new boolean[2][n];
    int hi0 = 3;
    for (int i = 0; i < hi0; i++) {
      m[0][i] = true;
    }
    int[] idx = new int[n];
    KvSegment seg =
        MixedPrecisionEncoder.ZIPVL.encodePerHead(layout, k, v, n, idx, idx, m); // head 1 all int2
    long head0 = (2L * 16 + 8) * hi0 + (2L * 8 + 8) * (n - hi0) + 2 * 4L * 3 * 32;
    long head1 = (2L * 8 + 8) * n + 4L * 3 * 32;
    assertThat(seg.storedBytes()).isEqualTo(head0 + head1);
    // the shared form of head 0's mask: one row of 64 channels, one value scale/zero pair per row
    KvSegment shared = MixedPrecisionEncoder.ZIPVL.encode(layout, k, v, n, idx, idx, m[0]);
    assertThat(shared.storedBytes())
        .isEqualTo((2L * 32 + 8) * hi0 + (2L * 16 + 8) * (n - hi0) + 2 * 4L * 3 * 64);
  }

  @Test
  void masksOfTheWrongShapeAreRejected() {
    KvLayout layout = new KvLayout(2, 4);
    float[] k = new float[3 * 8];
    int[] idx = new int[3];
    assertThatThrownBy(
            () ->
                MixedPrecisionEncoder.ZIPVL.encodePerHead(
                    layout, k, k, 3, idx, idx, new boolean[1][3]))
        .hasMessageContaining("one mask per KV head (2), found 1");
    assertThatThrownBy(
            () ->
                MixedPrecisionEncoder.ZIPVL.encodePerHead(
                    layout, k, k, 3, idx, idx, new boolean[][] {new boolean[3], new boolean[2]}))
        .hasMessageContaining("KV head 1 has 2 entries, rows 3");
    LayerKvCache c = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP16));
    c.appendRows(k, 0, k, 0, 3, idx, idx, 0);
    assertThatThrownBy(
            () -> c.recodeMixedPerHead(0, 2, new boolean[2][3], MixedPrecisionEncoder.ZIPVL))
        .hasMessageContaining("KV head 0 has 3 entries, range [0, 2) has 2");
    assertThatThrownBy(
            () -> c.recodeMixedPerHead(0, 4, new boolean[2][4], MixedPrecisionEncoder.ZIPVL))
        .hasMessageContaining("recode range [0, 4) is not within [0, 3]");
    assertThatThrownBy(
            () -> c.recodeMixedPerHead(0, 3, new boolean[3][3], MixedPrecisionEncoder.ZIPVL))
        .hasMessageContaining("3 masks, the layer has 2 KV heads");
  }

  @Test
  void compressionInfoPerHeadCountsAndImportantRatio() {
    KvCompressionInfo shared = new KvCompressionInfo("zipvl", "sparse", 0.96, 10, 3, 4, 1L, 4, 2);
    assertThat(shared.heads()).isEqualTo("shared");
    assertThat(shared.importantRatio()).isEqualTo(0.4);
    int[] counts = {3, 5};
    KvCompressionInfo per =
        new KvCompressionInfo(
            "zipvl", "sparse", 0.96, 10, 5, 7, 1L, 4, 2, "per_kv_head", new int[] {2, 5}, counts);
    counts[0] = 9;
    assertThat(per.headImportant()).containsExactly(3, 5);
    assertThat(per.importantRatio()).isEqualTo(8 / 20.0);
    assertThatThrownBy(
            () ->
                new KvCompressionInfo(
                    "zipvl", "sparse", 0.96, 10, 5, 7, 1L, 4, 2, null, new int[0], new int[0]))
        .hasMessageContaining("must not be null");
    assertThatThrownBy(
            () ->
                new KvCompressionInfo(
                    "zipvl",
                    "sparse",
                    0.96,
                    10,
                    5,
                    7,
                    1L,
                    4,
                    2,
                    "per_kv_head",
                    new int[] {2},
                    new int[] {2, 3}))
        .hasMessageContaining("headRatioCounts has 1 entries, headImportant 2");
    assertThatThrownBy(
            () ->
                new KvCompressionInfo(
                    "zipvl",
                    "sparse",
                    0.96,
                    10,
                    5,
                    7,
                    1L,
                    4,
                    2,
                    "per_kv_head",
                    new int[] {2, 11},
                    new int[] {2, 3}))
        .hasMessageContaining("KV head 1");
    assertThatThrownBy(
            () ->
                new KvCompressionInfo(
                    "zipvl", "sparse", 0.96, 10, 5, 7, 1L, 4, 2, "each", new int[0], new int[0]))
        .hasMessageContaining("\"each\"");
  }
}
