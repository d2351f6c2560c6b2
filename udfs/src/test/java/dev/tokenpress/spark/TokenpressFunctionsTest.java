package dev.tokenpress.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.MixedPrecisionEncoder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
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
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("udfs-test")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
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

  /**
   * The operators' cache for record "r1": layer 0 FP16 (5 entries), layer 1 with entries 0..5 in a
   * ZipVL mixed-precision group (4-bit and 2-bit chunks whose entries interleave).
   */
  static KvCache cache() {
    SplittableRandom rnd = new SplittableRandom(7);
    KvLayout layout = new KvLayout(2, 4);
    KvCache c = new KvCache(2, layout, KvCodec.of(KvPrecision.FP16));
    c.layer(0)
        .appendRows(
            random(rnd, 5 * 8),
            0,
            random(rnd, 5 * 8),
            0,
            5,
            new int[] {0, 1, 2, 5, 6},
            new int[] {0, 1, 2, 3, 4},
            0);
    c.layer(1)
        .appendRows(
            random(rnd, 6 * 8),
            0,
            random(rnd, 6 * 8),
            0,
            6,
            new int[] {0, 1, 2, 3, 4, 6},
            new int[] {0, 1, 2, 3, 4, 5},
            0);
    c.layer(1)
        .recodeMixed(
            0,
            6,
            new boolean[] {true, false, true, false, false, true},
            MixedPrecisionEncoder.ZIPVL);
    c.advance(7, 7);
    return c;
  }

  static RecordResult result() {
    return new RecordResult(
        "ans",
        new int[] {1, 2},
        List.of(),
        List.of(
            new KeptTokens("vtc-cls", "VISUAL_TOKENS", -1, 6, new int[] {1, 4}, new int[] {1, 4})),
        new Flops(1, 2, 3),
        Map.of(),
        cache());
  }

  static Dataset<Row> kvFrame(Path dir) {
    List<Row> rows = RowCodec.kvRows("r1", cache(), ENGINE, PROV);
    spark
        .createDataFrame(rows, OutputSchemas.KV_CACHE)
        .write()
        .mode("overwrite")
        .partitionBy("batch_id")
        .parquet(dir.resolve("kv_cache").toString());
    Dataset<Row> kv = spark.read().parquet(dir.resolve("kv_cache").toString());
    kv.createOrReplaceTempView("kv");
    return kv;
  }

  @Test
  void tensorFunctionsDequantizeWithTheOperatorsCodecsAndMeasure() {
    kvFrame(tmp);
    KvCache c = cache();
    List<KvChunk> expected = new ArrayList<>(c.layer(0).chunks());
    expected.addAll(c.layer(1).chunks());
    List<Row> rows =
        spark
            .sql(
                "SELECT layer, chunk, precision, tp_tensor_nbytes(k) AS nb, tp_tensor_numel(k) AS n, "
                    + "tp_kv_floats(k) AS kf, tp_kv_floats(v) AS vf, k.dtype AS dt FROM kv ORDER BY layer, chunk")
            .collectAsList();
    assertThat(rows).hasSize(expected.size()).hasSize(3);
    for (int i = 0; i < rows.size(); i++) {
      KvChunk e = expected.get(i);
      Row row = rows.get(i);
      assertThat(row.getString(2)).isEqualTo(e.precision().name());
      assertThat(row.getLong(3)).isEqualTo(e.k().dataLength());
      assertThat(row.getLong(4)).isEqualTo((long) e.k().rows() * e.k().width());
      assertThat(floats(row.getList(5))).containsExactly(e.k().dequantize());
      assertThat(floats(row.getList(6))).containsExactly(e.v().dequantize());
      assertThat(row.getString(7)).isEqualTo(e.k().dtype());
    }
    assertThat(rows)
        .extracting(r -> r.getString(7))
        .containsExactly("float16", "uint4x2", "uint2x4");
  }

  @Test
  void keptMapFunctionsExpandTheKeptList() {
    List<Row> rows =
        spark
            .sql(
                "SELECT tp_kept_mask(array(1, 4), 6), tp_kept_map(array(1, 4), 6), "
                    + "tp_kept_original(array(named_struct('original', array(3, 9)), named_struct('original', array(9))))")
            .collectAsList();
    assertThat(rows.get(0).<Boolean>getList(0))
        .containsExactly(false, true, false, false, true, false);
    assertThat(rows.get(0).<Integer>getList(1)).containsExactly(-1, 0, -1, -1, 1, -1);
    assertThat(rows.get(0).<Integer>getList(2)).containsExactly(9);
    assertThatThrownBy(() -> spark.sql("SELECT tp_kept_mask(array(7), 6)").collectAsList())
        .hasStackTraceContaining("kept index 7 is outside [0, 6)");
  }

  @Test
  void readerRestoresEachLayerInEntryOrderFromInterleavedChunks() {
    kvFrame(tmp);
    KvCache c = cache();
    KvCache read = KvCacheReader.load(spark, tmp.toString(), "r1");
    assertThat(read.nextPosition()).isEqualTo(7);
    assertThat(read.numLayers()).isEqualTo(2);
    assertThat(read.layout()).isEqualTo(new KvLayout(2, 4));
    KvArrowExportTest.assertSameCache(read, c);
    for (int l = 0; l < 2; l++) {
      assertThat(read.layer(l).length()).isEqualTo(c.layer(l).length());
    }
    // the rebuilt cache is the cache that was written: decoding continues from it alike
    float[] q = random(new SplittableRandom(5), 4 * 4);
    float[] a = new float[q.length];
    float[] b = new float[q.length];
    new dev.tokenpress.operators.kernels.DecodeAttention()
        .attend(q, 0, c.layer(1), 4, 0.5f, null, a, 0, null);
    new dev.tokenpress.operators.kernels.DecodeAttention()
        .attend(q, 0, read.layer(1), 4, 0.5f, null, b, 0, null);
    assertThat(b).containsExactly(a);
    assertThatThrownBy(() -> KvCacheReader.load(spark, tmp.toString(), "nope"))
        .hasMessageContaining("no KV cache rows");
  }

  /**
   * Record "ph": layer 0 of 3 KV heads x 5 with entries 1..7 of 9 in a per-KV-head ZipVL group
   * (head 0 mixed, head 1 all important, head 2 mixed with another mask) between fp16 entries;
   * layer 1 a shared mixed group.
   */
  static KvCache perHeadCache() {
    SplittableRandom rnd = new SplittableRandom(11);
    KvLayout layout = new KvLayout(3, 5);
    KvCache c = new KvCache(2, layout, KvCodec.of(KvPrecision.FP16));
    int[] idx = {0, 1, 2, 3, 5, 8, 9, 10, 11};
    int[] pos = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    for (int l = 0; l < 2; l++) {
      c.layer(l).appendRows(random(rnd, 9 * 15), 0, random(rnd, 9 * 15), 0, 9, idx, pos, 0);
    }
    boolean[][] masks = {
      {true, false, false, true, false, false, true},
      {true, true, true, true, true, true, true},
      {false, true, false, false, false, true, false}
    };
    c.layer(0).recodeMixedPerHead(1, 8, masks, MixedPrecisionEncoder.ZIPVL);
    c.layer(0)
        .setCompressionInfo(
            new KvCompressionInfo(
                "zipvl",
                "sparse",
                0.96,
                7,
                7,
                7,
                5L,
                4,
                2,
                KvCompressionInfo.HEADS_PER_KV_HEAD,
                new int[] {2, 7, 1},
                new int[] {3, 7, 2}));
    c.layer(1)
        .recodeMixed(
            0,
            6,
            new boolean[] {false, true, false, false, true, false},
            MixedPrecisionEncoder.ZIPVL);
    c.layer(1)
        .setCompressionInfo(new KvCompressionInfo("zipvl", "sparse", 0.96, 6, 2, 2, 6L, 4, 2));
    c.advance(9, 9);
    return c;
  }

  @Test
  void perKvHeadChunksRoundTripThroughParquetAndOlderFilesStillRead() {
    KvCache c = perHeadCache();
    Path dir = tmp.resolve("perhead");
    List<Row> rows = RowCodec.kvRows("ph", c, ENGINE, PROV);
    spark
        .createDataFrame(rows, OutputSchemas.KV_CACHE)
        .write()
        .mode("overwrite")
        .partitionBy("batch_id")
        .parquet(dir.resolve("kv_cache").toString());
    KvCache read = KvCacheReader.load(spark, dir.toString(), "ph");
    assertThat(read.layout()).isEqualTo(new KvLayout(3, 5));
    KvArrowExportTest.assertSameCache(read, c);
    for (int l = 0; l < 2; l++) {
      assertThat(read.layer(l).length()).isEqualTo(9);
    }
    // entries 1..7 are int4 in head 1, so all of them are important in some head
    assertThat(read.layer(0).importantEntries()).containsExactly(1, 2, 3, 4, 5, 6, 7);
    assertThat(read.layer(0).compressionInfo().importantRatio()).isEqualTo(12 / 21.0);
    // per-head chunks: kv_head set, [rows, 1, head_dim]; tp_kv_floats gives that head's floats
    List<KvChunk> expected = c.layer(0).chunks();
    assertThat(expected).hasSize(7); // fp16, head 0 (2), head 1 (1), head 2 (2), fp16
    spark.read().parquet(dir.resolve("kv_cache").toString()).createOrReplaceTempView("kv_ph");
    List<Row> got =
        spark
            .sql(
                "SELECT kv_head, k.shape, tp_kv_floats(k), tp_kv_floats(v), precision, entries "
                    + "FROM kv_ph WHERE layer = 0 ORDER BY chunk")
            .collectAsList();
    assertThat(got).hasSize(expected.size());
    for (int i = 0; i < got.size(); i++) {
      KvChunk e = expected.get(i);
      Row r = got.get(i);
      assertThat(r.isNullAt(0) ? -1 : r.getInt(0)).isEqualTo(e.kvHead());
      assertThat(r.<Integer>getList(1)).containsExactly(e.rows(), e.kvHead() < 0 ? 3 : 1, 5);
      assertThat(floats(r.getList(2))).containsExactly(e.k().dequantize());
      assertThat(floats(r.getList(3))).containsExactly(e.v().dequantize());
      assertThat(r.getString(4)).isEqualTo(e.precision().name());
    }
    assertThat(got)
        .extracting(r -> r.isNullAt(0) ? -1 : r.getInt(0))
        .containsExactly(-1, 0, 0, 1, 2, 2, -1);

    // a row set missing one head's chunk, or holding one twice, is rejected naming the pair
    List<Row> parquet =
        spark.read().parquet(dir.resolve("kv_cache").toString()).where("layer = 0").collectAsList();
    List<Row> missing = new ArrayList<>(parquet);
    missing.removeIf(r -> !r.isNullAt(r.fieldIndex("kv_head")) && r.<Integer>getAs("kv_head") == 1);
    assertThatThrownBy(() -> KvCacheReader.fromRows("ph", missing))
        .hasMessageContaining("layer 0: entry 1 of KV head 1 is in no chunk");
    List<Row> twice = new ArrayList<>(parquet);
    twice.add(
        parquet.stream()
            .filter(r -> !r.isNullAt(r.fieldIndex("kv_head")))
            .findFirst()
            .orElseThrow());
    assertThatThrownBy(() -> KvCacheReader.fromRows("ph", twice))
        .hasMessageContaining("more than one chunk");

    // a file written before kv_head and the per-head compression fields existed reads as before
    KvCache shared = cache();
    StructType oldCompression =
        new StructType(java.util.Arrays.copyOf(OutputSchemas.KV_COMPRESSION.fields(), 9));
    StructType oldSchema =
        new StructType(
            java.util.Arrays.stream(OutputSchemas.KV_CACHE.fields())
                .filter(f -> !f.name().equals("kv_head"))
                .map(
                    f ->
                        f.name().equals("compression")
                            ? new org.apache.spark.sql.types.StructField(
                                f.name(), oldCompression, true, f.metadata())
                            : f)
                .toArray(org.apache.spark.sql.types.StructField[]::new));
    shared
        .layer(1)
        .setCompressionInfo(new KvCompressionInfo("zipvl", "kv-only", 0.9, 6, 3, 3, 8L, 4, 2));
    List<Row> oldRows = new ArrayList<>();
    int kvHead = OutputSchemas.KV_CACHE.fieldIndex("kv_head");
    for (Row r : RowCodec.kvRows("old", shared, ENGINE, PROV)) {
      List<Object> values =
          new ArrayList<>(scala.jdk.javaapi.CollectionConverters.asJava(r.toSeq()));
      assertThat(values.remove(kvHead)).isNull();
      int ci = oldSchema.fieldIndex("compression");
      Row comp = (Row) values.get(ci);
      if (comp != null) {
        values.set(
            ci,
            org.apache.spark.sql.RowFactory.create(
                scala.jdk.javaapi.CollectionConverters.asJava(comp.toSeq())
                    .subList(0, 9)
                    .toArray()));
      }
      oldRows.add(org.apache.spark.sql.RowFactory.create(values.toArray()));
    }
    Path old = tmp.resolve("old");
    spark
        .createDataFrame(oldRows, oldSchema)
        .write()
        .mode("overwrite")
        .partitionBy("batch_id")
        .parquet(old.resolve("kv_cache").toString());
    KvCache oldRead = KvCacheReader.load(spark, old.toString(), "old");
    KvArrowExportTest.assertSameCache(oldRead, shared);
    assertThat(oldRead.layer(1).compressionInfo().heads()).isEqualTo("shared");
    assertThat(oldRead.layer(1).chunks()).extracting(KvChunk::kvHead).containsOnly(-1);
  }

  /**
   * kv_cache rows of {@code cache} as Spark reads them, {@code field} set to {@code value} in layer
   * {@code layer}.
   */
  private static List<Row> kvRowsWith(KvCache cache, int layer, String field, Object value) {
    List<Row> out = new ArrayList<>();
    int fi = OutputSchemas.KV_CACHE.fieldIndex(field);
    for (Row r :
        spark
            .createDataFrame(RowCodec.kvRows("rows", cache, ENGINE, PROV), OutputSchemas.KV_CACHE)
            .collectAsList()) {
      Object[] values = scala.jdk.javaapi.CollectionConverters.asJava(r.toSeq()).toArray();
      if ((Integer) values[OutputSchemas.KV_CACHE.fieldIndex("layer")] == layer) {
        values[fi] = value;
      }
      out.add(
          new org.apache.spark.sql.catalyst.expressions.GenericRowWithSchema(
              values, OutputSchemas.KV_CACHE));
    }
    return out;
  }

  @Test
  void readerTakesRowsInAnyOrderAndChecksTrailingFloatAgainstTheChunks() {
    KvCache c = perHeadCache();
    c.layer(1)
        .append(
            random(new SplittableRandom(2), 15), 0, random(new SplittableRandom(3), 15), 0, 12, 9);
    List<Row> rows = kvRowsWith(c, -1, "id", null);
    java.util.Collections.reverse(rows);
    KvCache read = KvCacheReader.fromRows("rows", rows);
    KvArrowExportTest.assertSameCache(read, c);
    assertThat(read.layer(1).trailingFloatEntries()).isEqualTo(4);
    assertThat(read.nextTokenIndex()).isEqualTo(13);
    assertThatThrownBy(() -> KvCacheReader.fromRows("rows", kvRowsWith(c, 1, "trailing_float", 2)))
        .hasMessageContaining(
            "layer 1: trailing_float 2 of id 'rows' does not match its chunks, which end in 4 float"
                + " entries");
    assertThatThrownBy(() -> KvCacheReader.fromRows("rows", kvRowsWith(c, 0, "precision", "INT8")))
        .hasMessageContaining(
            "layer 0: chunk 0: precision INT8 does not match the dtypes k float16, v float16");
  }

  @Test
  void visualTokenProvenanceRoundTripsThroughParquet() {
    TokenProvenance merged =
        TokenProvenance.of(
            new int[][] {{0, 2, 3}, {1}, {4, 5}},
            new float[][] {{0.25f, 0.25f, 0.5f}, {1f}, {0.5f, 0.5f}});
    RecordResult r =
        new RecordResult(
            "ans",
            new int[] {1, 2},
            List.of(),
            List.of(),
            new Flops(1, 2, 3),
            Map.of(),
            null,
            merged);
    java.sql.Timestamp now = new java.sql.Timestamp(0);
    Row ok =
        RowCodec.okRow(
            new RowCodec.InputRecordRef("p1", null, "q", null), r, Map.of(), ENGINE, PROV, now);
    Row none =
        RowCodec.okRow(
            new RowCodec.InputRecordRef("p2", null, "q", null),
            result(),
            Map.of(),
            ENGINE,
            PROV,
            now);
    Row failed =
        RowCodec.errorRow(
            new RowCodec.InputRecordRef("p3", null, "q", null),
            new IllegalStateException("boom"),
            1.0,
            ENGINE,
            PROV,
            now);
    Path dir = tmp.resolve("prov");
    spark
        .createDataFrame(List.of(ok, none, failed), OutputSchemas.OUTPUTS)
        .write()
        .mode("overwrite")
        .parquet(dir.resolve("outputs").toString());
    assertThat(KvCacheReader.visualTokens(spark, dir.toString(), "p1")).isEqualTo(merged);
    assertThat(KvCacheReader.visualTokens(spark, dir.toString(), "p2")).isNull();
    assertThat(KvCacheReader.visualTokens(spark, dir.toString(), "p3")).isNull();
    List<Row> sizes =
        spark
            .read()
            .parquet(dir.resolve("outputs").toString())
            .where("id = 'p1'")
            .selectExpr("transform(visual_tokens, t -> size(t.patches)) AS s")
            .collectAsList();
    assertThat(sizes.get(0).<Integer>getList(0)).containsExactly(3, 1, 2);
  }

  @Test
  void clusterAssignmentReachesParquetAsKeptMapLabels() {
    // VMTC over 6 patches: patch 1 primary, clusters {0, 2, 3} and {4, 5}; labels -1 primary, else
    // the cluster
    TokenProvenance merged =
        TokenProvenance.of(
            new int[][] {{0, 2, 3}, {1}, {4, 5}},
            new float[][] {{0.25f, 0.25f, 0.5f}, {1f}, {0.5f, 0.5f}});
    int[] labels = {0, -1, 0, 0, 1, 1};
    RecordResult r =
        new RecordResult(
            "ans",
            new int[] {1, 2},
            List.of(),
            List.of(
                new KeptTokens(
                    "vmtc", "VISION_LAYER", 2, 6, new int[] {0, 1, 4}, new int[] {0, 1, 4}, labels),
                new KeptTokens("fastv", "PREFILL_AFTER", 1, 9, new int[] {0, 8}, new int[] {0, 8})),
            new Flops(1, 2, 3),
            Map.of(),
            null,
            merged);
    java.sql.Timestamp now = new java.sql.Timestamp(0);
    Row ok =
        RowCodec.okRow(
            new RowCodec.InputRecordRef("v1", null, "q", null), r, Map.of(), ENGINE, PROV, now);
    Path dir = tmp.resolve("clusters");
    spark
        .createDataFrame(List.of(ok), OutputSchemas.OUTPUTS)
        .write()
        .mode("overwrite")
        .parquet(dir.resolve("outputs").toString());
    Dataset<Row> out = spark.read().parquet(dir.resolve("outputs").toString());
    List<Row> rows =
        out.selectExpr(
                "kept_maps[0].operator", "kept_maps[0].labels", "kept_maps[1].labels IS NULL")
            .collectAsList();
    assertThat(rows.get(0).getString(0)).isEqualTo("vmtc");
    assertThat(rows.get(0).<Integer>getList(1)).containsExactly(0, -1, 0, 0, 1, 1);
    assertThat(rows.get(0).getBoolean(2)).isTrue();
    // consistent with the provenance read back: each visual token is one cluster or one primary
    // patch
    TokenProvenance p = KvCacheReader.visualTokens(spark, dir.toString(), "v1");
    for (int t = 0; t < p.count(); t++) {
      int[] patches = p.patches(t);
      for (int patch : patches) {
        assertThat(labels[patch]).isEqualTo(labels[patches[0]]);
      }
    }
    // the column is additive: a file written before it (no labels field) still reads, as null, next
    // to a new one
    StructType oldKeptMap =
        new StructType(java.util.Arrays.copyOf(OutputSchemas.KEPT_MAP.fields(), 6));
    StructType oldSchema =
        new StructType(
            java.util.Arrays.stream(OutputSchemas.OUTPUTS.fields())
                .map(
                    f ->
                        f.name().equals("kept_maps")
                            ? new org.apache.spark.sql.types.StructField(
                                f.name(),
                                org.apache.spark.sql.types.DataTypes.createArrayType(
                                    oldKeptMap, false),
                                true,
                                f.metadata())
                            : f)
                .toArray(org.apache.spark.sql.types.StructField[]::new));
    Row oldRow =
        RowCodec.okRow(
            new RowCodec.InputRecordRef("v0", null, "q", null),
            result(),
            Map.of(),
            ENGINE,
            PROV,
            now);
    List<Object> values =
        new ArrayList<>(scala.jdk.javaapi.CollectionConverters.asJava(oldRow.toSeq()));
    List<Row> oldMaps = new ArrayList<>();
    for (Row m : oldRow.<Row>getList(OutputSchemas.OUTPUTS.fieldIndex("kept_maps"))) {
      oldMaps.add(
          org.apache.spark.sql.RowFactory.create(
              m.get(0), m.get(1), m.get(2), m.get(3), m.get(4), m.get(5)));
    }
    values.set(OutputSchemas.OUTPUTS.fieldIndex("kept_maps"), RowCodec.seq(oldMaps));
    spark
        .createDataFrame(
            List.of(org.apache.spark.sql.RowFactory.create(values.toArray())), oldSchema)
        .write()
        .mode("append")
        .parquet(dir.resolve("outputs").toString());
    List<Row> both =
        spark
            .read()
            .option("mergeSchema", "true")
            .parquet(dir.resolve("outputs").toString())
            .selectExpr("id", "kept_maps[0].labels")
            .orderBy("id")
            .collectAsList();
    assertThat(both).extracting(x -> x.getString(0)).containsExactly("v0", "v1");
    assertThat(both.get(0).isNullAt(1)).isTrue();
    assertThat(both.get(1).<Integer>getList(1)).containsExactly(0, -1, 0, 0, 1, 1);
  }

  private static float[] floats(List<Object> list) {
    float[] f = new float[list.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = ((Number) list.get(i)).floatValue();
    }
    return f;
  }
}
