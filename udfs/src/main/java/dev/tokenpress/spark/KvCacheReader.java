package dev.tokenpress.spark;

import static org.apache.spark.sql.functions.col;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Loads one record's KV cache from a job's output as float32 tensors, dequantising packed chunks
 * and concatenating a layer's chunks along T.
 *
 * <pre>{@code
 * KvCache kv = KvCacheReader.load(spark, "/data/out", "img-000123.png");
 * float[] k0 = kv.layer(0).k();   // [H_kv, T, D], C order
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
      List<Row> chunks = e.getValue();
      chunks.sort(Comparator.comparingInt(r -> r.<Integer>getAs("chunk")));
      layers.add(layer(e.getKey(), chunks));
    }
    return new KvCache(id, next, layers);
  }

  private static KvLayer layer(int layer, List<Row> chunks) {
    List<float[]> ks = new ArrayList<>();
    List<float[]> vs = new ArrayList<>();
    List<int[]> kShapes = new ArrayList<>();
    List<int[]> vShapes = new ArrayList<>();
    List<Integer> tokens = new ArrayList<>();
    List<Integer> positions = new ArrayList<>();
    for (Row r : chunks) {
      TensorData k = RowCodec.tensor(r.getAs("k"));
      TensorData v = RowCodec.tensor(r.getAs("v"));
      int bits = r.<Integer>getAs("bits");
      Integer group = r.getAs("group_size");
      Row scales = r.getAs("scales");
      Row zeros = r.getAs("zeros");
      ks.add(TensorCodec.dequantize(k, bits, group == null ? 1 : group,
          scales == null ? null : RowCodec.tensor(scales.getAs("k")),
          zeros == null ? null : RowCodec.tensor(zeros.getAs("k"))));
      vs.add(TensorCodec.dequantize(v, bits, group == null ? 1 : group,
          scales == null ? null : RowCodec.tensor(scales.getAs("v")),
          zeros == null ? null : RowCodec.tensor(zeros.getAs("v"))));
      kShapes.add(TensorCodec.logicalShape(k, bits));
      vShapes.add(TensorCodec.logicalShape(v, bits));
      tokens.addAll(r.<Integer>getList(r.fieldIndex("token_index")));
      positions.addAll(r.<Integer>getList(r.fieldIndex("position")));
    }
    int[] kShape = concatShape(layer, kShapes);
    int[] vShape = concatShape(layer, vShapes);
    return new KvLayer(layer, concatAlongT(ks, kShapes, kShape), kShape, concatAlongT(vs, vShapes, vShape), vShape,
        tokens.stream().mapToInt(Integer::intValue).toArray(),
        positions.stream().mapToInt(Integer::intValue).toArray());
  }

  private static int[] concatShape(int layer, List<int[]> shapes) {
    int[] first = shapes.get(0);
    int t = 0;
    for (int[] s : shapes) {
      if (s.length != 3 || s[0] != first[0] || s[2] != first[2]) {
        throw new IllegalArgumentException("layer " + layer + ": chunks disagree on [H_kv, _, D]");
      }
      t += s[1];
    }
    return new int[] {first[0], t, first[2]};
  }

  /** Concatenates C-order [H, T_i, D] blocks into [H, sum T_i, D]. */
  static float[] concatAlongT(List<float[]> parts, List<int[]> shapes, int[] total) {
    if (parts.size() == 1) {
      return parts.get(0);
    }
    int h = total[0];
    int d = total[2];
    float[] out = new float[h * total[1] * d];
    for (int head = 0; head < h; head++) {
      int dst = head * total[1] * d;
      for (int p = 0; p < parts.size(); p++) {
        int tp = shapes.get(p)[1];
        System.arraycopy(parts.get(p), head * tp * d, out, dst, tp * d);
        dst += tp * d;
      }
    }
    return out;
  }
}
