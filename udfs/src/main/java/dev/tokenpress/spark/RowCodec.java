package dev.tokenpress.spark;

import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Turns records and results into rows of {@link OutputSchemas} and tensor structs back into
 * {@link TensorData}. Field order follows the schemas exactly.
 */
public final class RowCodec {
  /** Error messages longer than this are cut (the class name is always kept). */
  public static final int MAX_ERROR_MESSAGE = 4000;

  private RowCodec() {}

  /** The {@code outputs/} row of a processed record. */
  public static Row okRow(
      InputRecordRef in, RecordResult r, Map<String, Double> timingsMs, EngineInfo engine, RowProvenance prov,
      Timestamp now) {
    List<Row> stages = new ArrayList<>(r.stages().size());
    for (StageCount s : r.stages()) {
      stages.add(RowFactory.create(s.stage(), s.tokensIn(), s.tokensOut()));
    }
    List<Row> maps = new ArrayList<>(r.keptMaps().size());
    for (KeptTokens m : r.keptMaps()) {
      maps.add(RowFactory.create(m.operator(), m.hook(), m.layer(), m.inputCount(), m.kept(), m.original()));
    }
    Flops f = r.flops();
    long entries = 0;
    long bytes = 0;
    int layers = 0;
    int lastLayer = -1;
    for (KvChunk c : r.kv()) {
      entries += c.length();
      bytes += c.storedBytes();
      if (c.layer() != lastLayer) {
        layers++;
        lastLayer = c.layer();
      }
    }
    return RowFactory.create(
        in.id(), in.source(), in.prompt(), in.reference(),
        OutputSchemas.STATUS_OK, null,
        r.answer(), r.answerTokenIds(), seq(stages), seq(maps),
        RowFactory.create(f.vision(), f.prefill(), f.decode(), f.total()),
        map(timingsMs),
        layers, entries, bytes, r.nextPosition(),
        prov.planJson(), prov.planHash(), prov.configHash(),
        engine.modelSha256(), engine.engineVersion(),
        prov.runId(), prov.batchId(), now);
  }

  /** The {@code outputs/} row of a record that failed. */
  public static Row errorRow(
      InputRecordRef in, Throwable error, double totalMs, EngineInfo engine, RowProvenance prov, Timestamp now) {
    return RowFactory.create(
        in.id(), in.source(), in.prompt(), in.reference(),
        OutputSchemas.STATUS_ERROR,
        RowFactory.create(error.getClass().getName(), errorMessage(error)),
        null, null, null, null, null,
        map(Map.of("total", totalMs)),
        null, null, null, null,
        prov.planJson(), prov.planHash(), prov.configHash(),
        engine == null ? null : engine.modelSha256(), engine == null ? null : engine.engineVersion(),
        prov.runId(), prov.batchId(), now);
  }

  /** The {@code kv_cache/} rows of a processed record, in (layer, chunk) order. */
  public static List<Row> kvRows(String id, RecordResult r, EngineInfo engine, RowProvenance prov) {
    List<Row> rows = new ArrayList<>(r.kv().size());
    for (KvChunk c : r.kv()) {
      KvQuant q = c.quant();
      rows.add(RowFactory.create(
          id, c.layer(), c.chunk(), tensorRow(c.k()), tensorRow(c.v()),
          q == null ? null : q.scheme(),
          q == null ? c.k().dtype().bytes() * 8 : q.bits(),
          q == null ? null : q.groupSize(),
          q == null ? null : RowFactory.create(tensorRow(q.kScales()), tensorRow(q.vScales())),
          q == null || (q.kZeros() == null && q.vZeros() == null)
              ? null
              : RowFactory.create(tensorRow(q.kZeros()), tensorRow(q.vZeros())),
          c.tokenIndex(), c.position(), r.nextPosition(),
          prov.planHash(), engine.modelSha256(), prov.runId(), prov.batchId()));
    }
    return rows;
  }

  /** Spark's Row encoder takes Scala collections for array and map columns. */
  static <T> scala.collection.immutable.Seq<T> seq(List<T> list) {
    return CollectionConverters.asScala(list).toSeq();
  }

  static <K, V> scala.collection.Map<K, V> map(Map<K, V> m) {
    return CollectionConverters.asScala(new LinkedHashMap<>(m));
  }

  /** A tensor struct row, or null. */
  public static Row tensorRow(TensorData t) {
    if (t == null) {
      return null;
    }
    return RowFactory.create(t.data(), t.shape(), t.dtype().wireName(), t.layout());
  }

  /** Reads a tensor struct (as a {@link Row}) back; null stays null. */
  public static TensorData tensor(Row row) {
    if (row == null) {
      return null;
    }
    byte[] data = row.getAs("data");
    List<Integer> shapeList = row.getList(row.fieldIndex("shape"));
    int[] shape = new int[shapeList.size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = shapeList.get(i);
    }
    return TensorData.wrap(data, shape, DType.fromWireName(row.getAs("dtype")), row.getAs("layout"));
  }

  /** "message; caused by Class: message" for the whole cause chain, cut to {@link #MAX_ERROR_MESSAGE}. */
  public static String errorMessage(Throwable e) {
    StringBuilder sb = new StringBuilder(String.valueOf(e.getMessage()));
    Throwable c = e.getCause();
    int depth = 0;
    while (c != null && c != e && depth++ < 5) {
      sb.append("; caused by ").append(c.getClass().getName()).append(": ").append(c.getMessage());
      c = c.getCause();
    }
    return sb.length() > MAX_ERROR_MESSAGE ? sb.substring(0, MAX_ERROR_MESSAGE) + "..." : sb.toString();
  }

  /** The identifying fields of a work row, available even when reading its bytes failed. */
  public record InputRecordRef(String id, String source, String prompt, String reference) {}
}
