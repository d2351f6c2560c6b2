package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.kv.MixedPrecisionEncoder;
import dev.tokenpress.spark.EngineInfo;
import dev.tokenpress.spark.KvCacheReader;
import dev.tokenpress.spark.OutputSchemas;
import dev.tokenpress.spark.RowCodec;
import dev.tokenpress.spark.RowProvenance;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A per-KV-head mixed-precision cache ({@link LayerKvCache#recodeMixedPerHead}) through {@link
 * RowCodec#kvRows} to Parquet: read back by {@link KvCacheReader} and, independently, by DuckDB and
 * the numpy dequantiser {@code check_kv_rows.py}, it equals the cache's own {@link
 * LayerKvCache#keys()}/{@link LayerKvCache#values()} bit for bit.
 */
class PerHeadKvParquetTest {
  private static final RowProvenance PROV = new RowProvenance("[]", "ph", "ch", "run", "b0");
  private static final EngineInfo ENGINE = new EngineInfo("sha", "engine");

  private static float[] gaussian(SplittableRandom rnd, int n, double scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (rnd.nextGaussian() * scale);
    }
    return x;
  }

  private static boolean[][] masks(SplittableRandom rnd, int heads, int n) {
    boolean[][] m = new boolean[heads][n];
    for (int g = 0; g < heads; g++) {
      for (int i = 0; i < n; i++) {
        m[g][i] = rnd.nextInt(3) == 0;
      }
    }
    return m;
  }

  /** 3 KV heads x 6, two layers of 20 entries; per-head groups, a shared group, fp16 entries. */
  private static KvCache cache(long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    KvLayout layout = new KvLayout(3, 6);
    KvCache c = new KvCache(2, layout, KvCodec.of(KvPrecision.FP16));
    int n = 20;
    int[] idx = new int[n];
    for (int i = 0; i < n; i++) {
      idx[i] = 3 * i;
    }
    for (int l = 0; l < 2; l++) {
      c.layer(l)
          .appendRows(gaussian(rnd, n * 18, 2), 0, gaussian(rnd, n * 18, 1 + l), 0, n, idx, idx, 0);
    }
    boolean[][] m0 = masks(rnd, 3, 16);
    m0[1] = new boolean[16];
    java.util.Arrays.fill(m0[1], true); // head 1 all important
    c.layer(0).recodeMixedPerHead(0, 16, m0, MixedPrecisionEncoder.ZIPVL);
    c.layer(0)
        .setCompressionInfo(
            new KvCompressionInfo(
                "zipvl",
                "sparse",
                0.96,
                16,
                16,
                16,
                3L,
                4,
                2,
                KvCompressionInfo.HEADS_PER_KV_HEAD,
                new int[] {count(m0[0]), 16, count(m0[2])},
                new int[] {count(m0[0]), 16, count(m0[2])}));
    boolean[][] m1 = masks(rnd, 3, 10);
    m1[2] = new boolean[10]; // head 2 all unimportant
    c.layer(1).recodeMixedPerHead(2, 12, m1, MixedPrecisionEncoder.ZIPVL);
    c.layer(1)
        .recodeMixed(
            12,
            18,
            new boolean[] {true, false, false, true, false, false},
            MixedPrecisionEncoder.ZIPVL);
    c.advance(n, n);
    return c;
  }

  private static int count(boolean[] m) {
    int n = 0;
    for (boolean b : m) {
      n += b ? 1 : 0;
    }
    return n;
  }

  @Test
  void perHeadCacheReadsBackIdenticallyInJavaAndNumpy(@TempDir Path tmp) throws Exception {
    assumeTrue(
        KvRowsNumpy.available(), "skipped: " + KvRowsNumpy.PYTHON + " with numpy is not available");
    SparkSession spark = SparkTestSession.get();
    Path out = tmp.resolve("out");
    List<Row> rows = new ArrayList<>();
    KvCache[] caches = {cache(1), cache(2)};
    String[] ids = {"a.png", "b.png"};
    for (int i = 0; i < ids.length; i++) {
      rows.addAll(RowCodec.kvRows(ids[i], caches[i], ENGINE, PROV));
    }
    spark
        .createDataFrame(rows, OutputSchemas.KV_CACHE)
        .write()
        .partitionBy("batch_id")
        .parquet(out.resolve("kv_cache").toString());

    List<Map<String, Object>> kv = KvRowsNumpy.query(out);
    assertThat(kv).extracting(r -> r.get("kv_head")).contains(null, 0, 1, 2);
    JsonNode numpy = KvRowsNumpy.decode(kv, RealRuntimeEndToEndTest.project(), tmp);
    for (int i = 0; i < ids.length; i++) {
      KvCache read = KvCacheReader.load(spark, out.toString(), ids[i]);
      for (int l = 0; l < 2; l++) {
        LayerKvCache want = caches[i].layer(l);
        LayerKvCache got = read.layer(l);
        String what = ids[i] + " layer " + l;
        JsonNode np = numpy.get(ids[i] + "|" + l);
        assertThat(np.get("rows").asInt()).isEqualTo(want.length());
        KvRowsNumpy.assertFloats(want.keys(), np.get("k"), what + " k (numpy)");
        KvRowsNumpy.assertFloats(want.values(), np.get("v"), what + " v (numpy)");
        assertThat(got.keys()).as(what).containsExactly(want.keys());
        assertThat(got.values()).as(what).containsExactly(want.values());
        assertThat(got.tokenIndices()).containsExactly(want.tokenIndices());
        assertThat(got.positions()).containsExactly(want.positions());
        assertThat(got.precisions()).containsExactly(want.precisions());
        assertThat(got.storedBytes()).isEqualTo(want.storedBytes());
        assertThat(got.chunks()).as(what).containsExactlyElementsOf(want.chunks());
        assertThat(got.compressionInfo()).isEqualTo(want.compressionInfo());
      }
    }
    // layer 0 of a.png: 16 entries x 3 heads in per-head chunks, 4 fp16 entries in one chunk of
    // every head
    assertThat(
            kv.stream()
                .filter(
                    r -> r.get("id").equals("a.png") && ((Number) r.get("layer")).intValue() == 0)
                .map(r -> r.get("kv_head")))
        .containsExactly(0, 0, 1, 2, 2, null);
  }
}
