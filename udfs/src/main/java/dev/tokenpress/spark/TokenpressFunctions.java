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
import org.apache.spark.sql.api.java.UDF5;
import scala.collection.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * SQL functions over the Parquet output, registered with one call:
 *
 * <pre>{@code
 * TokenpressFunctions.register(spark);
 * spark.sql("SELECT id, layer, tp_tensor_floats(k) FROM kv");
 * }</pre>
 *
 * <table>
 * <caption>Functions</caption>
 * <tr><td>{@code tp_tensor_floats(t)}</td><td>{@code array<float>} of a float32/float16/bfloat16
 *     tensor struct, C order</td></tr>
 * <tr><td>{@code tp_dequantize(t, scales, zeros, bits, group_size)}</td><td>{@code array<float>}
 *     of any tensor struct; quantised ones with their metadata ({@code zeros} may be null), float
 *     ones as they are: {@code tp_dequantize(k, scales.k, zeros.k, bits, group_size)}</td></tr>
 * <tr><td>{@code tp_tensor_nbytes(t)}</td><td>stored bytes of the tensor's data</td></tr>
 * <tr><td>{@code tp_tensor_numel(t, bits)}</td><td>logical element count (packed codes
 *     unpacked)</td></tr>
 * <tr><td>{@code tp_kept_mask(map)}</td><td>expands a token map ({@code map[i]} = output index of
 *     source token i, -1 dropped) to {@code array<boolean>}: true where kept</td></tr>
 * <tr><td>{@code tp_kept_indices(map)}</td><td>source indices that were kept (or merged)</td></tr>
 * <tr><td>{@code tp_compose_maps(a, b)}</td><td>token map of stage a followed by stage b: where
 *     each source token of a ends after b</td></tr>
 * </table>
 *
 * <p>All functions return null for a null tensor or map and are deterministic.
 */
public final class TokenpressFunctions {
  private TokenpressFunctions() {}

  public static final String TENSOR_FLOATS = "tp_tensor_floats";
  public static final String DEQUANTIZE = "tp_dequantize";
  public static final String TENSOR_NBYTES = "tp_tensor_nbytes";
  public static final String TENSOR_NUMEL = "tp_tensor_numel";
  public static final String KEPT_MASK = "tp_kept_mask";
  public static final String KEPT_INDICES = "tp_kept_indices";
  public static final String COMPOSE_MAPS = "tp_compose_maps";

  /** Registers every function in {@code spark}'s session catalog. */
  public static void register(SparkSession spark) {
    spark.udf().register(TENSOR_FLOATS,
        (UDF1<Row, float[]>) t -> t == null ? null : TensorCodec.decode(RowCodec.tensor(t)),
        createArrayType(FloatType, false));
    spark.udf().register(DEQUANTIZE,
        (UDF5<Row, Row, Row, Integer, Integer, float[]>) (t, scales, zeros, bits, groupSize) -> {
          if (t == null) {
            return null;
          }
          TensorData q = RowCodec.tensor(t);
          if (q.dtype().isFloat()) {
            return TensorCodec.decode(q);
          }
          if (bits == null) {
            throw new IllegalArgumentException("tp_dequantize: bits is null for quantised tensor " + q);
          }
          return TensorCodec.dequantize(q, bits, groupSize == null ? 1 : groupSize,
              RowCodec.tensor(scales), RowCodec.tensor(zeros));
        },
        createArrayType(FloatType, false));
    spark.udf().register(TENSOR_NBYTES,
        (UDF1<Row, Long>) t -> t == null ? null : (long) ((byte[]) t.getAs("data")).length,
        LongType);
    spark.udf().register(TENSOR_NUMEL,
        (UDF2<Row, Integer, Long>) (t, bits) -> {
          if (t == null) {
            return null;
          }
          TensorData d = RowCodec.tensor(t);
          return TensorData.elementCount(TensorCodec.logicalShape(d, bits == null ? d.dtype().bytes() * 8 : bits));
        },
        LongType);
    spark.udf().register(KEPT_MASK,
        (UDF1<Seq<Integer>, boolean[]>) m -> m == null ? null : keptMask(ints(m)),
        createArrayType(BooleanType, false));
    spark.udf().register(KEPT_INDICES,
        (UDF1<Seq<Integer>, int[]>) m -> m == null ? null : keptIndices(ints(m)),
        createArrayType(IntegerType, false));
    spark.udf().register(COMPOSE_MAPS,
        (UDF2<Seq<Integer>, Seq<Integer>, int[]>) (a, b) -> a == null || b == null ? null : compose(ints(a), ints(b)),
        createArrayType(IntegerType, false));
  }

  /** {@code mask[i]} is true when source token i was kept or merged. */
  public static boolean[] keptMask(int[] map) {
    boolean[] mask = new boolean[map.length];
    for (int i = 0; i < map.length; i++) {
      mask[i] = map[i] >= 0;
    }
    return mask;
  }

  /** Source indices whose tokens survived the stage, ascending. */
  public static int[] keptIndices(int[] map) {
    int n = 0;
    for (int t : map) {
      if (t >= 0) {
        n++;
      }
    }
    int[] out = new int[n];
    int j = 0;
    for (int i = 0; i < map.length; i++) {
      if (map[i] >= 0) {
        out[j++] = i;
      }
    }
    return out;
  }

  /** Map of stage a then stage b: {@code out[i] = a[i] < 0 ? -1 : b[a[i]]}. */
  public static int[] compose(int[] a, int[] b) {
    int[] out = new int[a.length];
    for (int i = 0; i < a.length; i++) {
      int mid = a[i];
      if (mid >= b.length) {
        throw new IllegalArgumentException(
            "tp_compose_maps: first map sends token " + i + " to " + mid + ", second map has " + b.length + " sources");
      }
      out[i] = mid < 0 ? -1 : b[mid];
    }
    return out;
  }

  private static int[] ints(Seq<Integer> seq) {
    List<Integer> list = CollectionConverters.asJava(seq);
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      Integer v = list.get(i);
      out[i] = v == null ? -1 : v;
    }
    return out;
  }
}
