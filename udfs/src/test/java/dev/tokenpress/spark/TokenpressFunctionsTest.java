package dev.tokenpress.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SQL functions and the KV reader over kv_cache rows written to Parquet on local[2]. */
class TokenpressFunctionsTest {
  private static SparkSession spark;
  @TempDir static Path tmp;
  private static final RowProvenance PROV = new RowProvenance("[]", "ph", "ch", "run", "run-0");
  private static final EngineInfo ENGINE = new EngineInfo("sha", "engine");

  @BeforeAll
  static void start() {
    spark = SparkSession.builder().master("local[2]").appName("udfs-test")
        .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.shuffle.partitions", "2")
        .getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    TokenpressFunctions.register(spark);
  }

  @AfterAll
  static void stop() {
    // Shared JVM: leave the session for other test classes of this module.
  }

  static float[] random(SplittableRandom rnd, int n) {
    float[] f = new float[n];
    for (int i = 0; i < n; i++) {
      f[i] = (float) rnd.nextGaussian();
    }
    return f;
  }

  /** Record "r1": layer 0 in two float16 chunks (T = 3 + 2), layer 1 one 8-bit chunk (T = 2). */
  static RecordResult result() {
    SplittableRandom rnd = new SplittableRandom(7);
    int h = 2;
    int d = 4;
    List<KvChunk> kv = new ArrayList<>();
    kv.add(new KvChunk(0, 0,
        TensorCodec.encode(random(rnd, h * 3 * d), new int[] {h, 3, d}, DType.FLOAT16, "H_kv,T,D"),
        TensorCodec.encode(random(rnd, h * 3 * d), new int[] {h, 3, d}, DType.FLOAT16, "H_kv,T,D"),
        null, new int[] {0, 1, 2}, new int[] {0, 1, 2}));
    kv.add(new KvChunk(0, 1,
        TensorCodec.encode(random(rnd, h * 2 * d), new int[] {h, 2, d}, DType.FLOAT32, "H_kv,T,D"),
        TensorCodec.encode(random(rnd, h * 2 * d), new int[] {h, 2, d}, DType.FLOAT32, "H_kv,T,D"),
        null, new int[] {5, 6}, new int[] {3, 4}));
    byte[] codes = new byte[h * 2 * d];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) (i * 17);
    }
    KvQuant q = new KvQuant("affine", 8, 2,
        TensorCodec.encode(random(rnd, h * d), new int[] {h, 1, d}, DType.FLOAT32, "H_kv,T/g,D"),
        TensorCodec.encode(random(rnd, h * d), new int[] {h, 1, d}, DType.FLOAT32, "H_kv,T/g,D"),
        TensorCodec.encode(random(rnd, h * 2), new int[] {h, 2, 1}, DType.FLOAT32, "H_kv,T,D/g"),
        null);
    kv.add(new KvChunk(1, 0, TensorData.wrap(codes.clone(), new int[] {h, 2, d}, DType.UINT8, "H_kv,T,D"),
        TensorData.wrap(codes, new int[] {h, 2, d}, DType.UINT8, "H_kv,T,D"), q, new int[] {0, 6}, new int[] {0, 4}));
    return new RecordResult("ans", new int[] {1, 2}, List.of(),
        List.of(new KeptTokens("vtc-cls", "VISUAL_TOKENS", -1, 6, new int[] {1, 4}, new int[] {1, 4})),
        new Flops(1, 2, 3), Map.of(), kv, 7);
  }

  static Dataset<Row> kvFrame(Path dir) {
    List<Row> rows = RowCodec.kvRows("r1", result(), ENGINE, PROV);
    spark.createDataFrame(rows, OutputSchemas.KV_CACHE).write().mode("overwrite")
        .partitionBy("batch_id").parquet(dir.resolve("kv_cache").toString());
    Dataset<Row> kv = spark.read().parquet(dir.resolve("kv_cache").toString());
    kv.createOrReplaceTempView("kv");
    return kv;
  }

  @Test
  void tensorFunctionsDecodeDequantizeAndMeasure() {
    kvFrame(tmp);
    RecordResult r = result();
    List<Row> rows = spark.sql("SELECT layer, chunk, tp_tensor_nbytes(k) AS nb, tp_tensor_numel(k, bits) AS n, "
        + "tp_dequantize(k, scales.k, zeros.k, bits, group_size) AS kf, "
        + "tp_dequantize(v, scales.v, zeros.v, bits, group_size) AS vf FROM kv ORDER BY layer, chunk").collectAsList();
    assertThat(rows).hasSize(3);
    for (int i = 0; i < 3; i++) {
      KvChunk c = r.kv().get(i);
      Row row = rows.get(i);
      assertThat(row.getLong(2)).isEqualTo(c.k().data().length);
      assertThat(row.getLong(3)).isEqualTo(c.k().elementCount());
      float[] expectedK = c.quant() == null ? TensorCodec.decode(c.k())
          : TensorCodec.dequantize(c.k(), 8, 2, c.quant().kScales(), c.quant().kZeros());
      float[] expectedV = c.quant() == null ? TensorCodec.decode(c.v())
          : TensorCodec.dequantize(c.v(), 8, 2, c.quant().vScales(), null);
      assertThat(floats(row.getList(4))).containsExactly(expectedK);
      assertThat(floats(row.getList(5))).containsExactly(expectedV);
    }
    List<Row> f = spark.sql("SELECT tp_tensor_floats(k) FROM kv WHERE layer = 0 AND chunk = 0").collectAsList();
    assertThat(floats(f.get(0).getList(0))).containsExactly(TensorCodec.decode(r.kv().get(0).k()));
    assertThatThrownBy(() -> spark.sql("SELECT tp_tensor_floats(k) FROM kv WHERE layer = 1").collectAsList())
        .hasStackTraceContaining("dequantise");
  }

  @Test
  void keptMapFunctionsExpandTheKeptList() {
    List<Row> rows = spark.sql("SELECT tp_kept_mask(array(1, 4), 6), tp_kept_map(array(1, 4), 6), "
        + "tp_kept_original(array(named_struct('original', array(3, 9)), named_struct('original', array(9))))")
        .collectAsList();
    assertThat(rows.get(0).<Boolean>getList(0)).containsExactly(false, true, false, false, true, false);
    assertThat(rows.get(0).<Integer>getList(1)).containsExactly(-1, 0, -1, -1, 1, -1);
    assertThat(rows.get(0).<Integer>getList(2)).containsExactly(9);
    assertThatThrownBy(() -> spark.sql("SELECT tp_kept_mask(array(7), 6)").collectAsList())
        .hasStackTraceContaining("kept index 7 is outside [0, 6)");
  }

  @Test
  void readerLoadsOneRecordConcatenatingChunksAlongT() {
    kvFrame(tmp);
    RecordResult r = result();
    KvCache cache = KvCacheReader.load(spark, tmp.toString(), "r1");
    assertThat(cache.nextPosition()).isEqualTo(7);
    assertThat(cache.layers()).hasSize(2);
    KvLayer l0 = cache.layer(0);
    assertThat(l0.kShape()).containsExactly(2, 5, 4);
    assertThat(l0.tokenIndex()).containsExactly(0, 1, 2, 5, 6);
    assertThat(l0.position()).containsExactly(0, 1, 2, 3, 4);
    float[] a = TensorCodec.decode(r.kv().get(0).k());
    float[] b = TensorCodec.decode(r.kv().get(1).k());
    // head 1, entry 3 (first entry of chunk 1), channel 2
    assertThat(l0.k()[1 * 5 * 4 + 3 * 4 + 2]).isEqualTo(b[1 * 2 * 4 + 0 * 4 + 2]);
    assertThat(l0.k()[1 * 5 * 4 + 2 * 4 + 1]).isEqualTo(a[1 * 3 * 4 + 2 * 4 + 1]);
    KvLayer l1 = cache.layer(1);
    assertThat(l1.v()).containsExactly(
        TensorCodec.dequantize(r.kv().get(2).v(), 8, 2, r.kv().get(2).quant().vScales(), null));
    assertThatThrownBy(() -> KvCacheReader.load(spark, tmp.toString(), "nope")).hasMessageContaining("no KV cache rows");
  }

  private static float[] floats(List<Object> list) {
    float[] f = new float[list.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = ((Number) list.get(i)).floatValue();
    }
    return f;
  }
}
