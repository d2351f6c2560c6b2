package dev.tokenpress.jobs.compress;

import dev.tokenpress.spark.OutputSchemas;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.util.AccumulatorV2;

/**
 * Counts of the {@code outputs/} rows a run writes — ok, error, error classes, KV rows — taken by
 * the write job itself, so a run's summary needs no read-back of the output.
 *
 * <p>{@link BatchWrite}'s tasks add each {@code outputs/} row as they write it, and Spark applies a
 * result task's accumulator updates once per partition (a failed or duplicate speculative attempt
 * contributes nothing), so the counts are those of the rows that the committed write holds.
 */
public final class OutputTally extends AccumulatorV2<Row, OutputTally.Counts> {
  private static final long serialVersionUID = 1L;
  private static final int STATUS = OutputSchemas.OUTPUTS.fieldIndex("status");
  private static final int ERROR = OutputSchemas.OUTPUTS.fieldIndex("error");
  private static final int KV_CHUNKS = OutputSchemas.OUTPUTS.fieldIndex("kv_chunks");

  /** Snapshot of the counts. */
  public record Counts(long ok, long errors, long kvRows, Map<String, Long> errorClasses)
      implements java.io.Serializable {}

  private long ok;
  private long errors;
  private long kvRows;
  private final LinkedHashMap<String, Long> errorClasses = new LinkedHashMap<>();

  @Override
  public boolean isZero() {
    return ok == 0 && errors == 0 && kvRows == 0 && errorClasses.isEmpty();
  }

  @Override
  public OutputTally copy() {
    OutputTally t = new OutputTally();
    t.merge(this);
    return t;
  }

  @Override
  public void reset() {
    ok = 0;
    errors = 0;
    kvRows = 0;
    errorClasses.clear();
  }

  /** Adds one {@code outputs/} row ({@link OutputSchemas#OUTPUTS} layout). */
  @Override
  public void add(Row row) {
    if (OutputSchemas.STATUS_OK.equals(row.getString(STATUS))) {
      ok++;
      kvRows += row.isNullAt(KV_CHUNKS) ? 0 : row.getInt(KV_CHUNKS);
    } else {
      errors++;
      Row error = row.isNullAt(ERROR) ? null : row.getStruct(ERROR);
      String cls = error == null || error.isNullAt(0) ? "(unknown)" : error.getString(0);
      errorClasses.merge(cls, 1L, Long::sum);
    }
  }

  @Override
  public void merge(AccumulatorV2<Row, Counts> other) {
    OutputTally o = (OutputTally) other;
    ok += o.ok;
    errors += o.errors;
    kvRows += o.kvRows;
    o.errorClasses.forEach((k, v) -> errorClasses.merge(k, v, Long::sum));
  }

  @Override
  public Counts value() {
    return new Counts(ok, errors, kvRows, Map.copyOf(errorClasses));
  }
}
