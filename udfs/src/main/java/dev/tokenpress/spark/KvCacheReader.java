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
 * mixed-precision group) restore the layer in entry order; a chunk of one KV head
 * ({@code kv_head} g, shape {@code [rows, 1, D]}) fills that head's channels only. Files written
 * before the {@code kv_head} column existed read as chunks of every KV head.
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

  /**
   * One layer from its chunks: a chunk of every KV head ({@code kv_head} null) fills whole rows,
   * a chunk of KV head g ({@code [rows, 1, D]}) fills head g's channels of its entries; every
   * (entry, KV head) pair must be in exactly one chunk.
   */
  private static KvLayer layer(int layer, List<Row> chunks) {
    int kvHeads = -1;
    int headDim = -1;
    int maxHead = -1;
    int maxEntry = -1;
    for (Row r : chunks) {
      int[] shape = RowCodec.ints(r.getAs("k"), "shape");
      int g = RowCodec.kvHead(r);
      if (shape.length != 3 || (headDim >= 0 && shape[2] != headDim)) {
        throw new IllegalArgumentException("layer " + layer + ": chunk " + r.getAs("chunk") + " has shape "
            + Arrays.toString(shape) + ", chunks must agree on [_, kv_heads, head_dim] (head_dim " + headDim + ")");
      }
      headDim = shape[2];
      if (g < 0) {
        if (kvHeads >= 0 && shape[1] != kvHeads) {
          throw new IllegalArgumentException("layer " + layer + ": chunks disagree on [_, kv_heads, head_dim]");
        }
        kvHeads = shape[1];
      } else {
        if (shape[1] != 1) {
          throw new IllegalArgumentException("layer " + layer + ": chunk " + r.getAs("chunk") + " of kv_head " + g
              + " must have shape [rows, 1, head_dim], found " + Arrays.toString(shape));
        }
        maxHead = Math.max(maxHead, g);
      }
      for (int e : RowCodec.ints(r, "entries")) {
        maxEntry = Math.max(maxEntry, e);
      }
    }
    if (kvHeads < 0) {
      kvHeads = maxHead + 1;
    } else if (maxHead >= kvHeads) {
      throw new IllegalArgumentException("layer " + layer + ": kv_head " + maxHead + " is out of range, the layer has "
          + kvHeads + " KV heads");
    }
    int total = maxEntry + 1;
    int w = kvHeads * headDim;
    float[] k = new float[total * w];
    float[] v = new float[total * w];
    int[] tokens = new int[total];
    int[] positions = new int[total];
    int[] seen = new int[total * kvHeads];
    List<KvStoredChunk> stored = new ArrayList<>(chunks.size());
    for (Row r : chunks) {
      KvTensor tk = RowCodec.tensor(r.getAs("k"));
      KvTensor tv = RowCodec.tensor(r.getAs("v"));
      float[] ck = tk.dequantize();
      float[] cv = tv.dequantize();
      int[] entries = RowCodec.ints(r, "entries");
      int g = RowCodec.kvHead(r);
      stored.add(new KvStoredChunk(entries, g, tk, tv));
      int[] ti = RowCodec.ints(r, "token_index");
      int[] pos = RowCodec.ints(r, "position");
      int g0 = g < 0 ? 0 : g;
      int heads = g < 0 ? kvHeads : 1;
      int cw = heads * headDim;
      for (int i = 0; i < entries.length; i++) {
        int e = entries[i];
        if (e < 0) {
          throw new IllegalArgumentException("layer " + layer + ": entry " + e + " is out of range");
        }
        for (int h = g0; h < g0 + heads; h++) {
          if (seen[e * kvHeads + h]++ > 0) {
            throw new IllegalArgumentException("layer " + layer + ": entry " + e + " of KV head " + h
                + " is stored in more than one chunk");
          }
        }
        System.arraycopy(ck, i * cw, k, e * w + g0 * headDim, cw);
        System.arraycopy(cv, i * cw, v, e * w + g0 * headDim, cw);
        tokens[e] = ti[i];
        positions[e] = pos[i];
      }
    }
    for (int i = 0; i < seen.length; i++) {
      if (seen[i] == 0) {
        throw new IllegalArgumentException("layer " + layer + ": entry " + i / kvHeads + " of KV head " + i % kvHeads
            + " is in no chunk");
      }
    }
    int[] shape = {total, kvHeads, headDim};
    Row first = chunks.get(0);
    boolean hasMeta = RowCodec.hasField(first, "trailing_float");
    return new KvLayer(layer, k, shape, v, shape.clone(), tokens, positions,
        hasMeta ? RowCodec.compression(first.getAs("compression")) : null,
        hasMeta ? first.<Integer>getAs("trailing_float") : 0, stored);
  }
}
