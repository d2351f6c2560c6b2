package dev.tokenpress.spark;

import static org.apache.spark.sql.functions.col;

import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.kv.KvTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Loads one record's KV cache from a job's output as float32 tensors: every chunk is dequantised
 * with the operators' codecs ({@link KvTensor#dequantize()}) and its rows are put back at their
 * {@code entries} positions, so a layer's chunks (including the interleaved chunks of a
 * mixed-precision group) restore the layer in entry order.
 *
 * <pre>{@code
 * KvCache kv = KvCacheReader.load(spark, "/data/out", "images/000123.png");
 * float[] k0 = kv.layer(0).k();   // [T, H_kv, D], C order
 * }</pre>
 */
public final class KvCacheReader {
  private KvCacheReader() {}

  /** Reads {@code outputDir/kv_cache} filtered to {@code id} (the filter is pushed into Parquet). */
  public static KvCache load(SparkSession spark, String outputDir, String id) {
    String dir = new Path(outputDir, "kv_cache").toString();
    List<Row> rows = spark.read().parquet(dir).where(col("id").equalTo(id)).collectAsList();
    if (rows.isEmpty()) {
      throw new IllegalArgumentException("no KV cache rows for id '" + id + "' under " + dir);
    }
    return fromRows(id, rows);
  }

  /**
   * The provenance of the visual tokens of record {@code id} from {@code outputDir/outputs}
   * (column {@code visual_tokens}): for every visual token that entered the LM, the original
   * patches it stands for and their weights; null when the row has none.
   */
  public static TokenProvenance visualTokens(SparkSession spark, String outputDir, String id) {
    String dir = new Path(outputDir, "outputs").toString();
    List<Row> rows = spark.read().parquet(dir).where(col("id").equalTo(id)).select("id", "visual_tokens")
        .collectAsList();
    if (rows.size() != 1) {
      throw new IllegalArgumentException(rows.size() + " outputs rows for id '" + id + "' under " + dir
          + "; expected 1");
    }
    return RowCodec.visualTokens(rows.get(0));
  }

  /** Builds the cache from {@code kv_cache} rows of one id (any order). */
  public static KvCache fromRows(String id, List<Row> rows) {
    Map<Integer, List<Row>> byLayer = new TreeMap<>();
    int next = -1;
    for (Row r : rows) {
      String rid = r.getAs("id");
      if (!id.equals(rid)) {
        throw new IllegalArgumentException("row of id '" + rid + "' passed for id '" + id + "'");
      }
      byLayer.computeIfAbsent(r.<Integer>getAs("layer"), l -> new ArrayList<>()).add(r);
      next = r.<Integer>getAs("next_position");
    }
    List<KvLayer> layers = new ArrayList<>(byLayer.size());
    for (Map.Entry<Integer, List<Row>> e : byLayer.entrySet()) {
      layers.add(layer(e.getKey(), e.getValue()));
    }
    return new KvCache(id, next, layers);
  }

  private static KvLayer layer(int layer, List<Row> chunks) {
    int total = 0;
    int[] rowShape = null;
    for (Row r : chunks) {
      int[] shape = RowCodec.ints(r.getAs("k"), "shape");
      if (rowShape == null) {
        rowShape = shape;
      } else if (shape.length != rowShape.length || shape[1] != rowShape[1] || shape[2] != rowShape[2]) {
        throw new IllegalArgumentException("layer " + layer + ": chunks disagree on [_, kv_heads, head_dim]");
      }
      total += shape[0];
    }
    int w = rowShape[1] * rowShape[2];
    float[] k = new float[total * w];
    float[] v = new float[total * w];
    int[] tokens = new int[total];
    int[] positions = new int[total];
    boolean[] seen = new boolean[total];
    List<KvStoredChunk> stored = new ArrayList<>(chunks.size());
    for (Row r : chunks) {
      KvTensor tk = RowCodec.tensor(r.getAs("k"));
      KvTensor tv = RowCodec.tensor(r.getAs("v"));
      float[] ck = tk.dequantize();
      float[] cv = tv.dequantize();
      int[] entries = RowCodec.ints(r, "entries");
      stored.add(new KvStoredChunk(entries, tk, tv));
      int[] ti = RowCodec.ints(r, "token_index");
      int[] pos = RowCodec.ints(r, "position");
      for (int i = 0; i < entries.length; i++) {
        int e = entries[i];
        if (e < 0 || e >= total || seen[e]) {
          throw new IllegalArgumentException("layer " + layer + ": entry " + e + " is out of range or repeated");
        }
        seen[e] = true;
        System.arraycopy(ck, i * w, k, e * w, w);
        System.arraycopy(cv, i * w, v, e * w, w);
        tokens[e] = ti[i];
        positions[e] = pos[i];
      }
    }
    int[] shape = {total, rowShape[1], rowShape[2]};
    Row first = chunks.get(0);
    boolean hasMeta = first.schema() != null && Arrays.asList(first.schema().fieldNames()).contains("trailing_float");
    return new KvLayer(layer, k, shape, v, shape.clone(), tokens, positions,
        hasMeta ? RowCodec.compression(first.getAs("compression")) : null,
        hasMeta ? first.<Integer>getAs("trailing_float") : 0, stored);
  }
}
