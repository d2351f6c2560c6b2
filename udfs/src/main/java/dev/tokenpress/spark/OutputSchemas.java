package dev.tokenpress.spark;

import static org.apache.spark.sql.types.DataTypes.BinaryType;
import static org.apache.spark.sql.types.DataTypes.DoubleType;
import static org.apache.spark.sql.types.DataTypes.FloatType;
import static org.apache.spark.sql.types.DataTypes.IntegerType;
import static org.apache.spark.sql.types.DataTypes.LongType;
import static org.apache.spark.sql.types.DataTypes.StringType;
import static org.apache.spark.sql.types.DataTypes.TimestampType;
import static org.apache.spark.sql.types.DataTypes.createArrayType;
import static org.apache.spark.sql.types.DataTypes.createMapType;
import static org.apache.spark.sql.types.DataTypes.createStructField;
import static org.apache.spark.sql.types.DataTypes.createStructType;

import java.util.List;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The Spark schemas of the work rows, the two output datasets and the one-pass union between them.
 * Column names are the public contract of the Parquet output (see docs/spark.md).
 */
public final class OutputSchemas {
  private OutputSchemas() {}

  /** Status value of a row that was processed. */
  public static final String STATUS_OK = "ok";

  /** Status value of a row whose input failed; {@code error} says why. */
  public static final String STATUS_ERROR = "error";

  /**
   * One stored K or V tensor (see the operators' {@code KvCodecs} for the formats): the first four
   * fields are the storage of Arrow's canonical variable-shape tensor ({@code data}, logical {@code
   * shape [rows, kv_heads, head_dim]}, {@code dtype}, {@code layout}); the rest is its quantisation
   * metadata ({@code bits}, {@code group_size}, float32 {@code scales}, {@code zeros}, {@code
   * channel_scales}; empty arrays for float dtypes).
   */
  public static final StructType TENSOR =
      createStructType(
          List.of(
              createStructField("data", BinaryType, false),
              createStructField("shape", createArrayType(IntegerType, false), false),
              createStructField("dtype", StringType, false),
              createStructField("layout", StringType, false),
              createStructField("bits", IntegerType, false),
              createStructField("group_size", IntegerType, false),
              createStructField("scales", createArrayType(FloatType, false), false),
              createStructField("zeros", createArrayType(FloatType, false), false),
              createStructField("channel_scales", createArrayType(FloatType, false), false)));

  /** Input to the partition function: one corpus record still to process. */
  public static final StructType WORK =
      createStructType(
          List.of(
              createStructField("id", StringType, false),
              createStructField("source", StringType, true),
              createStructField("bytes", BinaryType, true),
              createStructField("prompt", StringType, true),
              createStructField("reference", StringType, true)));

  public static final StructType ERROR =
      createStructType(
          List.of(
              createStructField("class", StringType, false),
              createStructField("message", StringType, true)));

  public static final StructType STAGE =
      createStructType(
          List.of(
              createStructField("stage", StringType, false),
              createStructField("tokens_in", IntegerType, false),
              createStructField("tokens_out", IntegerType, false)));

  /**
   * One applied selection or reduction; {@code labels} (nullable, last so that the change was
   * additive) is the operator's label of every input token, e.g. VMTC's cluster assignment.
   */
  public static final StructType KEPT_MAP =
      createStructType(
          List.of(
              createStructField("operator", StringType, false),
              createStructField("hook", StringType, false),
              createStructField("layer", IntegerType, false),
              createStructField("input_count", IntegerType, false),
              createStructField("kept", createArrayType(IntegerType, false), false),
              createStructField("original", createArrayType(IntegerType, false), false),
              createStructField("labels", createArrayType(IntegerType, false), true)));

  /** One visual token that entered the LM: the original patches it stands for and their weights. */
  public static final StructType VISUAL_TOKEN =
      createStructType(
          List.of(
              createStructField("patches", createArrayType(IntegerType, false), false),
              createStructField("weights", createArrayType(FloatType, false), false)));

  /**
   * One figure an operator reports about a record ({@code OperatorStat}): e.g. VAR's {@code
   * sink_dims} (layer -1) and {@code sinks}, {@code visual_sinks}, {@code prefill_pairs}, {@code
   * decode_pairs} per LM layer; CMAI's {@code prefill_inhibited_pairs} and {@code
   * decode_inhibited_pairs} per inhibited layer.
   */
  public static final StructType OPERATOR_STAT =
      createStructType(
          List.of(
              createStructField("operator", StringType, false),
              createStructField("layer", IntegerType, false),
              createStructField("name", StringType, false),
              createStructField("values", createArrayType(LongType, false), false)));

  public static final StructType FLOPS =
      createStructType(
          List.of(
              createStructField("vision", LongType, false),
              createStructField("prefill", LongType, false),
              createStructField("decode", LongType, false),
              createStructField("total", LongType, false)));

  /** {@code outputs/}: one row per input record. */
  public static final StructType OUTPUTS =
      createStructType(
          List.of(
              createStructField("id", StringType, false),
              createStructField("source", StringType, true),
              createStructField("prompt", StringType, true),
              createStructField("reference", StringType, true),
              createStructField("status", StringType, false),
              createStructField("error", ERROR, true),
              createStructField("answer", StringType, true),
              createStructField("answer_token_ids", createArrayType(IntegerType, false), true),
              createStructField("stages", createArrayType(STAGE, false), true),
              createStructField("kept_maps", createArrayType(KEPT_MAP, false), true),
              createStructField("visual_tokens", createArrayType(VISUAL_TOKEN, false), true),
              createStructField("flops", FLOPS, true),
              createStructField("timings_ms", createMapType(StringType, DoubleType, false), true),
              createStructField("kv_layers", IntegerType, true),
              createStructField("kv_chunks", IntegerType, true),
              createStructField("kv_entries", LongType, true),
              createStructField("kv_bytes", LongType, true),
              createStructField("next_position", IntegerType, true),
              createStructField("plan", StringType, false),
              createStructField("plan_hash", StringType, false),
              createStructField("config_hash", StringType, false),
              createStructField("model_sha256", StringType, true),
              createStructField("engine_version", StringType, true),
              createStructField("run_id", StringType, false),
              createStructField("batch_id", StringType, false),
              createStructField("created_at", TimestampType, false),
              createStructField("record_seed", LongType, true),
              createStructField("operator_stats", createArrayType(OPERATOR_STAT, false), true)));

  /**
   * What a KV-quantising operator (ZipVL) decided for a layer after prefill, the same on every row
   * of the layer (the operators' {@code KvCompressionInfo}): operator and mode, {@code tau}, the
   * rows scored ({@code scored}, n), Eq. 6's count ({@code ratio_count}, p), the tokens stored at
   * {@code bits_high} ({@code important}; 16 = float16), {@code bits_low}, and the seed of the
   * layer's random probe rows. {@code heads}: {@code shared} (one important set for every KV head)
   * or {@code per_kv_head} (one per KV head: {@code head_ratio_counts} and {@code head_important}
   * give each head's p and count, {@code ratio_count} is their largest p and {@code important} the
   * size of the union of the heads' sets; both arrays empty when shared). Files written before
   * these three fields existed read as {@code shared}.
   */
  public static final StructType KV_COMPRESSION =
      createStructType(
          List.of(
              createStructField("operator", StringType, false),
              createStructField("mode", StringType, false),
              createStructField("tau", DoubleType, false),
              createStructField("scored", IntegerType, false),
              createStructField("ratio_count", IntegerType, false),
              createStructField("important", IntegerType, false),
              createStructField("probe_seed", LongType, false),
              createStructField("bits_high", IntegerType, false),
              createStructField("bits_low", IntegerType, false),
              createStructField("heads", StringType, false),
              createStructField("head_ratio_counts", createArrayType(IntegerType, false), false),
              createStructField("head_important", createArrayType(IntegerType, false), false)));

  /**
   * {@code kv_cache/}: one row per (id, layer, chunk); a chunk is one stored form of a run of the
   * layer's entries (row i of the chunk is entry {@code entries[i]} of the layer, so the two chunks
   * of a mixed-precision group restore the order). {@code kv_head} is null for a chunk of every KV
   * head ({@code k}/{@code v} of shape {@code [rows, kv_heads, head_dim]}) and g for a chunk of KV
   * head g only ({@code [rows, 1, head_dim]}, a per-KV-head mixed-precision group); every (entry,
   * KV head) pair of a layer is in exactly one chunk. {@code batch_id} becomes the directory
   * partition ({@code kv_cache/batch_id=.../}) so that a batch whose outputs never committed can be
   * removed as a unit.
   */
  public static final StructType KV_CACHE =
      createStructType(
          List.of(
              createStructField("id", StringType, false),
              createStructField("layer", IntegerType, false),
              createStructField("chunk", IntegerType, false),
              createStructField("kv_head", IntegerType, true),
              createStructField("k", TENSOR, false),
              createStructField("v", TENSOR, false),
              createStructField("precision", StringType, false),
              createStructField("entries", createArrayType(IntegerType, false), false),
              createStructField("token_index", createArrayType(IntegerType, false), false),
              createStructField("position", createArrayType(IntegerType, false), false),
              createStructField("next_position", IntegerType, false),
              createStructField("compression", KV_COMPRESSION, true),
              createStructField("trailing_float", IntegerType, false),
              createStructField("plan_hash", StringType, false),
              createStructField("model_sha256", StringType, true),
              createStructField("run_id", StringType, false),
              createStructField("batch_id", StringType, false)));

  /** Discriminator values of {@link #UNION}. */
  public static final String KIND_OUTPUT = "output";

  public static final String KIND_KV = "kv";

  /**
   * What one inference pass emits: per record one {@code output} row followed by its {@code kv}
   * rows. Persisted once, then projected into the two datasets.
   */
  public static final StructType UNION =
      createStructType(
          List.of(
              createStructField("kind", StringType, false),
              createStructField("out", OUTPUTS, true),
              createStructField("kv", KV_CACHE, true)));

  /** Names of the top-level fields of {@code schema}. */
  public static String[] names(StructType schema) {
    StructField[] fields = schema.fields();
    String[] n = new String[fields.length];
    for (int i = 0; i < fields.length; i++) {
      n[i] = fields[i].name();
    }
    return n;
  }
}
