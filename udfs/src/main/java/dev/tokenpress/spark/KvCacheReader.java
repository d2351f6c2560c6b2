package dev.tokenpress.spark;

import static org.apache.spark.sql.functions.col;

import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Loads one record's KV cache from a job's output as the operators' {@link KvCache}, rebuilt from
 * its stored chunks without re-quantising ({@link KvCache#fromChunks}): the same stored bytes
 * ({@link LayerKvCache#chunks()}, {@link LayerKvCache#storedBytes()}), the same dequantised floats
 * ({@link LayerKvCache#keys()}, {@link LayerKvCache#values()}, {@code [T, H_kv, D]} in C order),
 * token indices, positions, precisions, compression record and trailing float entries, so the
 * runtime's kernels read it as they read the cache that was written. Rows are taken in {@code
 * chunk} order per layer; a layer's interleaved chunks of a mixed-precision group become one group,
 * chunks with {@code kv_head} g a per-KV-head group. Files written before the {@code kv_head}
 * column existed read as chunks of every KV head. The record id is not part of the cache: callers
 * keep it.
 *
 * <pre>{@code
 * KvCache kv = KvCacheReader.load(spark, "/data/out", "images/000123.png");
 * float[] k0 = kv.layer(0).keys();   // [T, H_kv, D], C order
 * }</pre>
 */
public final class KvCacheReader {
  private KvCacheReader() {}

  /**
   * Reads {@code outputDir/kv_cache} filtered to {@code id} (the filter is pushed into Parquet).
   */
  public static KvCache load(SparkSession spark, String outputDir, String id) {
    String dir = new Path(outputDir, "kv_cache").toString();
    List<Row> rows = spark.read().parquet(dir).where(col("id").equalTo(id)).collectAsList();
    if (rows.isEmpty()) {
      throw new IllegalArgumentException("no KV cache rows for id '" + id + "' under " + dir);
    }
    return fromRows(id, rows);
  }

  /**
   * The provenance of the visual tokens of record {@code id} from {@code outputDir/outputs} (column
   * {@code visual_tokens}): for every visual token that entered the LM, the original patches it
   * stands for and their weights; null when the row has none.
   */
  public static TokenProvenance visualTokens(SparkSession spark, String outputDir, String id) {
    String dir = new Path(outputDir, "outputs").toString();
    List<Row> rows =
        spark
            .read()
            .parquet(dir)
            .where(col("id").equalTo(id))
            .select("id", "visual_tokens")
            .collectAsList();
    if (rows.size() != 1) {
      throw new IllegalArgumentException(
          rows.size() + " outputs rows for id '" + id + "' under " + dir + "; expected 1");
    }
    return RowCodec.visualTokens(rows.get(0));
  }

  /**
   * Builds the cache from {@code kv_cache} rows of one id (any order): layers 0 to the largest
   * {@code layer} (a layer without rows is empty), each from its rows in {@code chunk} order. New
   * entries would be appended at {@link #appendCodec} of the stored chunks.
   *
   * @throws IllegalArgumentException when a row belongs to another id, or the chunks do not form
   *     the layer (naming layer, entry and KV head), or a layer's {@code trailing_float} disagrees
   *     with its chunks
   */
  public static KvCache fromRows(String id, List<Row> rows) {
    TreeMap<Integer, List<Row>> byLayer = new TreeMap<>();
    int next = -1;
    for (Row r : rows) {
      String rid = r.getAs("id");
      if (!id.equals(rid)) {
        throw new IllegalArgumentException("row of id '" + rid + "' passed for id '" + id + "'");
      }
      byLayer.computeIfAbsent(r.<Integer>getAs("layer"), l -> new ArrayList<>()).add(r);
      next = r.<Integer>getAs("next_position");
    }
    int numLayers = byLayer.isEmpty() ? 0 : byLayer.lastKey() + 1;
    List<List<KvChunk>> chunks = new ArrayList<>(numLayers);
    List<KvCompressionInfo> compressions = new ArrayList<>(numLayers);
    int[] trailing = new int[numLayers];
    for (int l = 0; l < numLayers; l++) {
      List<Row> layer = new ArrayList<>(byLayer.getOrDefault(l, List.of()));
      layer.sort(Comparator.comparingInt(r -> r.<Integer>getAs("chunk")));
      List<KvChunk> cs = new ArrayList<>(layer.size());
      for (Row r : layer) {
        try {
          cs.add(chunk(r));
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              "layer " + l + ": chunk " + r.getAs("chunk") + ": " + e.getMessage(), e);
        }
      }
      chunks.add(cs);
      boolean hasMeta = !layer.isEmpty() && RowCodec.hasField(layer.get(0), "trailing_float");
      compressions.add(hasMeta ? RowCodec.compression(layer.get(0).getAs("compression")) : null);
      trailing[l] = hasMeta ? layer.get(0).<Integer>getAs("trailing_float") : -1;
    }
    KvCache cache = KvCache.fromChunks(appendCodec(chunks), chunks, compressions, next);
    for (int l = 0; l < numLayers; l++) {
      int t = cache.layer(l).trailingFloatEntries();
      if (trailing[l] >= 0 && trailing[l] != t) {
        throw new IllegalArgumentException(
            "layer "
                + l
                + ": trailing_float "
                + trailing[l]
                + " of id '"
                + id
                + "' does not match its chunks, which end in "
                + t
                + " float entries");
      }
    }
    return cache;
  }

  /**
   * One {@code kv_cache} row as the operators' chunk ({@code kv_head} null or absent: every KV
   * head).
   */
  static KvChunk chunk(Row r) {
    return KvChunk.of(
        RowCodec.ints(r, "entries"),
        RowCodec.ints(r, "token_index"),
        RowCodec.ints(r, "position"),
        KvPrecision.valueOf(r.getAs("precision")),
        RowCodec.tensor(r.getAs("k")),
        RowCodec.tensor(r.getAs("v")),
        RowCodec.kvHead(r));
  }

  /**
   * The codec a rebuilt cache appends with (the stored form does not record the run's): FP32 when
   * any chunk is float32, else FP16 (the runtime's append codec for float16 and quantised caches).
   */
  static KvCodec appendCodec(List<List<KvChunk>> layers) {
    for (List<KvChunk> l : layers) {
      for (KvChunk c : l) {
        if (c.precision() == KvPrecision.FP32) {
          return KvCodec.of(KvPrecision.FP32);
        }
      }
    }
    return KvCodec.of(KvPrecision.FP16);
  }
}
