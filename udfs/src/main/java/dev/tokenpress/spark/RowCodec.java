package dev.tokenpress.spark;

import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvTensor;
import dev.tokenpress.operators.kv.LayerKvCache;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Turns records and results into rows of {@link OutputSchemas}, and tensor structs back into the
 * operators' {@link KvTensor}. Field order follows the schemas exactly.
 */
public final class RowCodec {
  /** Error messages longer than this are cut (the class name is always kept). */
  public static final int MAX_ERROR_MESSAGE = 4000;

  private RowCodec() {}

  /** The {@code outputs/} row of a processed record. */
  public static Row okRow(
      InputRecordRef in,
      RecordResult r,
      Map<String, Double> timingsMs,
      EngineInfo engine,
      RowProvenance prov,
      Timestamp now) {
    List<Row> stages = new ArrayList<>(r.stages().size());
    for (StageCount s : r.stages()) {
      stages.add(RowFactory.create(s.stage(), s.tokensIn(), s.tokensOut()));
    }
    List<Row> maps = new ArrayList<>(r.keptMaps().size());
    for (KeptTokens m : r.keptMaps()) {
      maps.add(
          RowFactory.create(
              m.operator(),
              m.hook(),
              m.layer(),
              m.inputCount(),
              m.kept(),
              m.original(),
              m.labels()));
    }
    List<Row> visual = null;
    TokenProvenance vt = r.visualTokens();
    if (vt != null) {
      visual = new ArrayList<>(vt.count());
      for (int t = 0; t < vt.count(); t++) {
        visual.add(RowFactory.create(vt.patches(t), vt.weights(t)));
      }
    }
    List<Row> stats = new ArrayList<>(r.operatorStats().size());
    for (dev.tokenpress.operators.api.OperatorStat st : r.operatorStats()) {
      stats.add(RowFactory.create(st.operator(), st.layer(), st.name(), st.values()));
    }
    Flops f = r.flops();
    KvCache cache = r.kvCache();
    Integer layers = null;
    Integer chunks = null;
    Long entries = null;
    Long bytes = null;
    Integer next = null;
    if (cache != null) {
      layers = cache.numLayers();
      int nc = 0;
      for (int l = 0; l < cache.numLayers(); l++) {
        nc += cache.layer(l).chunkCount();
      }
      chunks = nc;
      long e = 0;
      for (int l : cache.lengths()) {
        e += l;
      }
      entries = e;
      bytes = cache.storedBytes();
      next = cache.nextPosition();
    }
    return RowFactory.create(
        in.id(),
        in.source(),
        in.prompt(),
        in.reference(),
        OutputSchemas.STATUS_OK,
        null,
        r.answer(),
        r.answerTokenIds(),
        seq(stages),
        seq(maps),
        visual == null ? null : seq(visual),
        RowFactory.create(f.vision(), f.prefill(), f.decode(), f.total()),
        map(timingsMs),
        layers,
        chunks,
        entries,
        bytes,
        next,
        prov.planJson(),
        prov.planHash(),
        prov.configHash(),
        engine.modelSha256(),
        engine.engineVersion(),
        prov.runId(),
        prov.batchId(),
        now,
        r.recordSeed(),
        seq(stats));
  }

  /** The {@code outputs/} row of a record that failed. */
  public static Row errorRow(
      InputRecordRef in,
      Throwable error,
      double totalMs,
      EngineInfo engine,
      RowProvenance prov,
      Timestamp now) {
    return RowFactory.create(
        in.id(),
        in.source(),
        in.prompt(),
        in.reference(),
        OutputSchemas.STATUS_ERROR,
        RowFactory.create(error.getClass().getName(), errorMessage(error)),
        null,
        null,
        null,
        null,
        null,
        null,
        map(Map.of("total", totalMs)),
        null,
        null,
        null,
        null,
        null,
        prov.planJson(),
        prov.planHash(),
        prov.configHash(),
        engine == null ? null : engine.modelSha256(),
        engine == null ? null : engine.engineVersion(),
        prov.runId(),
        prov.batchId(),
        now,
        null,
        null);
  }

  /**
   * The {@code visual_tokens} column of an {@code outputs/} row as provenance, or null when absent.
   */
  public static TokenProvenance visualTokens(Row outputsRow) {
    int i = outputsRow.fieldIndex("visual_tokens");
    if (outputsRow.isNullAt(i)) {
      return null;
    }
    List<Row> tokens = outputsRow.getList(i);
    int[][] patches = new int[tokens.size()][];
    float[][] weights = new float[tokens.size()][];
    for (int t = 0; t < tokens.size(); t++) {
      Row v = tokens.get(t);
      patches[t] = ints(v, "patches");
      weights[t] = floats(v, "weights");
    }
    return TokenProvenance.of(patches, weights);
  }

  /**
   * The {@code kv_cache/} rows of a processed record, in (layer, chunk) order; none without a
   * cache.
   */
  public static List<Row> kvRows(String id, KvCache cache, EngineInfo engine, RowProvenance prov) {
    List<Row> rows = new ArrayList<>();
    if (cache == null) {
      return rows;
    }
    for (int layer = 0; layer < cache.numLayers(); layer++) {
      LayerKvCache lc = cache.layer(layer);
      List<KvChunk> chunks = lc.chunks();
      Row compression = compressionRow(lc.compressionInfo());
      int trailing = lc.trailingFloatEntries();
      for (int c = 0; c < chunks.size(); c++) {
        KvChunk ch = chunks.get(c);
        rows.add(
            RowFactory.create(
                id,
                layer,
                c,
                ch.kvHead() < 0 ? null : ch.kvHead(),
                tensorRow(ch.k()),
                tensorRow(ch.v()),
                ch.precision().name(),
                ch.entries(),
                ch.tokenIndex(),
                ch.position(),
                cache.nextPosition(),
                compression,
                trailing,
                prov.planHash(),
                engine.modelSha256(),
                prov.runId(),
                prov.batchId()));
      }
    }
    return rows;
  }

  /** A {@link OutputSchemas#KV_COMPRESSION} struct row; null stays null. */
  static Row compressionRow(KvCompressionInfo i) {
    if (i == null) {
      return null;
    }
    return RowFactory.create(
        i.operator(),
        i.mode(),
        i.tau(),
        i.scored(),
        i.ratioCount(),
        i.important(),
        i.probeSeed(),
        i.bitsHigh(),
        i.bitsLow(),
        i.heads(),
        i.headRatioCounts(),
        i.headImportant());
  }

  /**
   * Reads a {@link OutputSchemas#KV_COMPRESSION} struct back; null stays null. A struct written
   * before {@code heads}, {@code head_ratio_counts} and {@code head_important} existed reads as
   * {@code shared}.
   */
  public static KvCompressionInfo compression(Row r) {
    if (r == null) {
      return null;
    }
    boolean perHead = hasField(r, "heads");
    return new KvCompressionInfo(
        r.getAs("operator"),
        r.getAs("mode"),
        r.<Double>getAs("tau"),
        r.<Integer>getAs("scored"),
        r.<Integer>getAs("ratio_count"),
        r.<Integer>getAs("important"),
        r.<Long>getAs("probe_seed"),
        r.<Integer>getAs("bits_high"),
        r.<Integer>getAs("bits_low"),
        perHead ? r.getAs("heads") : KvCompressionInfo.HEADS_SHARED,
        perHead ? ints(r, "head_ratio_counts") : new int[0],
        perHead ? ints(r, "head_important") : new int[0]);
  }

  /**
   * The {@code kv_head} of a {@code kv_cache} row: -1 for a chunk of every KV head (null, or a file
   * written before the column existed), else the KV head the chunk holds.
   */
  public static int kvHead(Row kvRow) {
    if (!hasField(kvRow, "kv_head")) {
      return -1;
    }
    int i = kvRow.fieldIndex("kv_head");
    return kvRow.isNullAt(i) ? -1 : kvRow.getInt(i);
  }

  /**
   * Whether {@code row}'s schema has a field {@code name} (outputs of older versions lack some).
   */
  static boolean hasField(Row row, String name) {
    return row.schema() != null
        && java.util.Arrays.asList(row.schema().fieldNames()).contains(name);
  }

  /** Spark's Row encoder takes Scala collections for array-of-struct and map columns. */
  static <T> scala.collection.immutable.Seq<T> seq(List<T> list) {
    return CollectionConverters.asScala(list).toSeq();
  }

  static <K, V> scala.collection.Map<K, V> map(Map<K, V> m) {
    return CollectionConverters.asScala(new LinkedHashMap<>(m));
  }

  /** A tensor struct row of {@link OutputSchemas#TENSOR}. */
  public static Row tensorRow(KvTensor t) {
    return RowFactory.create(
        t.data(),
        t.shape(),
        t.dtype(),
        t.layout(),
        t.bits(),
        t.groupSize(),
        t.scales(),
        t.zeros(),
        t.channelScales());
  }

  /** Reads a tensor struct back (validated by {@link KvTensor#of}); null stays null. */
  public static KvTensor tensor(Row row) {
    if (row == null) {
      return null;
    }
    return KvTensor.of(
        row.getAs("dtype"),
        row.getAs("layout"),
        row.getAs("data"),
        ints(row, "shape"),
        row.<Integer>getAs("bits"),
        row.<Integer>getAs("group_size"),
        floats(row, "scales"),
        floats(row, "zeros"),
        floats(row, "channel_scales"));
  }

  static int[] ints(Row row, String field) {
    List<Integer> list = row.getList(row.fieldIndex(field));
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = list.get(i);
    }
    return out;
  }

  static float[] floats(Row row, String field) {
    List<Float> list = row.getList(row.fieldIndex(field));
    float[] out = new float[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = list.get(i);
    }
    return out;
  }

  /**
   * "message; caused by Class: message" for the whole cause chain, cut to {@link
   * #MAX_ERROR_MESSAGE}.
   */
  public static String errorMessage(Throwable e) {
    StringBuilder sb = new StringBuilder(String.valueOf(e.getMessage()));
    Throwable c = e.getCause();
    int depth = 0;
    while (c != null && c != e && depth++ < 5) {
      sb.append("; caused by ").append(c.getClass().getName()).append(": ").append(c.getMessage());
      c = c.getCause();
    }
    return sb.length() > MAX_ERROR_MESSAGE
        ? sb.substring(0, MAX_ERROR_MESSAGE) + "..."
        : sb.toString();
  }

  /** The identifying fields of a work row, available even when reading its bytes failed. */
  public record InputRecordRef(String id, String source, String prompt, String reference) {}
}
