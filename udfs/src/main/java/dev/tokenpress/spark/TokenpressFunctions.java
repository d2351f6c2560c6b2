package dev.tokenpress.spark;

import static org.apache.spark.sql.types.DataTypes.BooleanType;
import static org.apache.spark.sql.types.DataTypes.FloatType;
import static org.apache.spark.sql.types.DataTypes.IntegerType;
import static org.apache.spark.sql.types.DataTypes.LongType;
import static org.apache.spark.sql.types.DataTypes.createArrayType;

import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.api.java.UDF2;
import scala.collection.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * SQL functions over the Parquet output, registered with one call:
 *
 * <pre>{@code
 * TokenpressFunctions.register(spark);
 * spark.sql("SELECT id, layer, tp_kv_floats(k) AS k FROM kv");
 * }</pre>
 *
 * <table>
 * <caption>Functions</caption>
 * <tr><td>{@code tp_kv_floats(t)}</td><td>{@code array<float>} of a {@code k} or {@code v} struct:
 *     float tensors decoded, quantised ones dequantised with their metadata (the operators'
 *     {@code KvCodecs}); row-major over {@code shape = [rows, kv_heads, head_dim]} (a chunk of one
 * KV head, {@code kv_head} not null, gives {@code [rows, 1, head_dim]}: that head only)</td></tr>
 * <tr><td>{@code tp_tensor_nbytes(t)}</td><td>stored bytes of the tensor's data</td></tr>
 * <tr><td>{@code tp_tensor_numel(t)}</td><td>logical element count (product of {@code shape})</td></tr>
 * <tr><td>{@code tp_kept_mask(kept, n)}</td><td>expands a kept-token list ({@code kept_maps[i].kept},
 *     ascending indices of the {@code n = input_count} tokens entering a stage) to {@code
 *     array<boolean>} of length n: true where kept</td></tr>
 * <tr><td>{@code tp_kept_map(kept, n)}</td><td>expands it to {@code array<int>} of length n: the
 *     token's index after the stage, -1 where dropped</td></tr>
 * <tr><td>{@code tp_kept_original(kept_maps)}</td><td>original indices that survived every
 *     stage of a record ({@code original} of the last kept map; null if no operator ran)</td></tr>
 * </table>
 *
 * <p>All functions return null for a null tensor or map and are deterministic.
 */
public final class TokenpressFunctions {
  private TokenpressFunctions() {}

  public static final String KV_FLOATS = "tp_kv_floats";
  public static final String TENSOR_NBYTES = "tp_tensor_nbytes";
  public static final String TENSOR_NUMEL = "tp_tensor_numel";
  public static final String KEPT_MASK = "tp_kept_mask";
  public static final String KEPT_MAP = "tp_kept_map";
  public static final String KEPT_ORIGINAL = "tp_kept_original";

  /** Registers every function in {@code spark}'s session catalog. */
  public static void register(SparkSession spark) {
    spark
        .udf()
        .register(
            KV_FLOATS,
            (UDF1<Row, float[]>) t -> t == null ? null : RowCodec.tensor(t).dequantize(),
            createArrayType(FloatType, false));
    spark
        .udf()
        .register(
            TENSOR_NBYTES,
            (UDF1<Row, Long>) t -> t == null ? null : (long) ((byte[]) t.getAs("data")).length,
            LongType);
    spark
        .udf()
        .register(
            TENSOR_NUMEL,
            (UDF1<Row, Long>)
                t -> {
                  if (t == null) {
                    return null;
                  }
                  long n = 1;
                  for (int d : RowCodec.ints(t, "shape")) {
                    n *= d;
                  }
                  return n;
                },
            LongType);
    spark
        .udf()
        .register(
            KEPT_MASK,
            (UDF2<Seq<Integer>, Integer, boolean[]>)
                (kept, n) -> kept == null || n == null ? null : keptMask(ints(kept), n),
            createArrayType(BooleanType, false));
    spark
        .udf()
        .register(
            KEPT_MAP,
            (UDF2<Seq<Integer>, Integer, int[]>)
                (kept, n) -> kept == null || n == null ? null : keptMap(ints(kept), n),
            createArrayType(IntegerType, false));
    spark
        .udf()
        .register(
            KEPT_ORIGINAL,
            (UDF1<Seq<Row>, int[]>)
                maps -> {
                  if (maps == null || maps.isEmpty()) {
                    return null;
                  }
                  Row last = maps.last();
                  return ints(last.<Integer>getList(last.fieldIndex("original")));
                },
            createArrayType(IntegerType, false));
  }

  /** {@code mask[i]} is true when token i of the {@code n} entering the stage was kept. */
  public static boolean[] keptMask(int[] kept, int n) {
    boolean[] mask = new boolean[n];
    for (int i : checked(kept, n)) {
      mask[i] = true;
    }
    return mask;
  }

  /** {@code map[i]} is the index after the stage of token i, or -1 when it was dropped. */
  public static int[] keptMap(int[] kept, int n) {
    int[] map = new int[n];
    java.util.Arrays.fill(map, -1);
    int[] k = checked(kept, n);
    for (int j = 0; j < k.length; j++) {
      map[k[j]] = j;
    }
    return map;
  }

  private static int[] checked(int[] kept, int n) {
    if (n < 0) {
      throw new IllegalArgumentException("input count must be >= 0, got " + n);
    }
    for (int i : kept) {
      if (i < 0 || i >= n) {
        throw new IllegalArgumentException("kept index " + i + " is outside [0, " + n + ")");
      }
    }
    return kept;
  }

  private static int[] ints(Seq<Integer> seq) {
    List<Integer> list = CollectionConverters.asJava(seq);
    return ints(list);
  }

  private static int[] ints(List<Integer> list) {
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      Integer v = list.get(i);
      out[i] = v == null ? -1 : v;
    }
    return out;
  }
}
