package dev.tokenpress.spark;

import java.sql.Timestamp;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.LongAccumulator;

/**
 * Runs the model over one partition of {@link OutputSchemas#WORK} rows and emits {@link
 * OutputSchemas#UNION} rows: for each record one {@code output} row, then its {@code kv} rows.
 *
 * <p>The runtime comes from {@link ExecutorRuntimes} (one per executor JVM, loaded on the first
 * record, not for empty partitions; a runtime that fails to load fails the task). Records are processed one at a time as the consumer pulls
 * rows, so a task holds at most one record's result in memory. A record that throws an {@link
 * Exception} becomes an {@code error} row with the exception class and message, unless {@code
 * failFast} is set; {@link Error}s and task interruption (kill, speculation) always propagate.
 */
public final class InferencePartitionFunction implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;

  private final ProcessorFactory factory;
  private final ProcessorSpec spec;
  private final RowProvenance provenance;
  private final boolean failFast;
  private final boolean writeKv;
  private final long maxInputBytes;
  private final Broadcast<SerializableHadoopConf> hadoopConf;
  private final LongAccumulator okRows;
  private final LongAccumulator errorRows;

  public InferencePartitionFunction(
      ProcessorFactory factory,
      ProcessorSpec spec,
      RowProvenance provenance,
      boolean failFast,
      boolean writeKv,
      long maxInputBytes,
      Broadcast<SerializableHadoopConf> hadoopConf,
      LongAccumulator okRows,
      LongAccumulator errorRows) {
    this.factory = factory;
    this.spec = spec;
    this.provenance = provenance;
    this.failFast = failFast;
    this.writeKv = writeKv;
    this.maxInputBytes = maxInputBytes;
    this.hadoopConf = hadoopConf;
    this.okRows = okRows;
    this.errorRows = errorRows;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    return new Iterator<>() {
      private final ArrayDeque<Row> pending = new ArrayDeque<>();
      private RecordProcessor processor;

      @Override
      public boolean hasNext() {
        while (pending.isEmpty() && input.hasNext()) {
          process(input.next());
        }
        return !pending.isEmpty();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return pending.poll();
      }

      private RecordProcessor processor() {
        if (processor == null) {
          processor = ExecutorRuntimes.getOrCreate(factory, spec, intraOpThreads());
        }
        return processor;
      }

      private void process(Row work) {
        RowCodec.InputRecordRef ref = new RowCodec.InputRecordRef(
            work.getString(0), work.getString(1), work.getString(3), work.getString(4));
        // A runtime that cannot load is a job error, not a record error: let it fail the task.
        RecordProcessor p = processor();
        long t0 = System.nanoTime();
        try {
          byte[] bytes = work.isNullAt(2)
              ? InputBytes.read(ref.source(), maxInputBytes, hadoopConf.value().get())
              : InputBytes.check(ref.source(), (byte[]) work.get(2), maxInputBytes);
          if (ref.prompt() == null) {
            throw new IllegalArgumentException("record has no prompt and input.prompt is not set");
          }
          long t1 = System.nanoTime();
          RecordResult r = p.process(new InputRecord(ref.id(), ref.source(), bytes, ref.prompt(), ref.reference()));
          long t2 = System.nanoTime();
          Map<String, Double> timings = new LinkedHashMap<>(r.timingsMs());
          timings.put("read", (t1 - t0) / 1e6);
          timings.put("total", (t2 - t0) / 1e6);
          Timestamp now = new Timestamp(System.currentTimeMillis());
          pending.add(RowFactory.create(
              OutputSchemas.KIND_OUTPUT,
              RowCodec.okRow(ref, r, timings, p.engineInfo(), provenance, now),
              null));
          if (writeKv) {
            for (Row kv : RowCodec.kvRows(ref.id(), r.kvCache(), p.engineInfo(), provenance)) {
              pending.add(RowFactory.create(OutputSchemas.KIND_KV, null, kv));
            }
          }
          okRows.add(1);
        } catch (Exception e) {
          TaskContext tc = TaskContext.get();
          if ((tc != null && tc.isInterrupted()) || Thread.currentThread().isInterrupted()
              || e instanceof InterruptedException) {
            throw e instanceof RuntimeException re ? re : new IllegalStateException("task interrupted", e);
          }
          if (failFast) {
            throw new RecordFailedException(ref.id(), e);
          }
          Timestamp now = new Timestamp(System.currentTimeMillis());
          pending.add(RowFactory.create(
              OutputSchemas.KIND_OUTPUT,
              RowCodec.errorRow(ref, e, (System.nanoTime() - t0) / 1e6,
                  p.engineInfo(), provenance, now),
              null));
          errorRows.add(1);
        }
      }
    };
  }

  /** ORT intra-op threads: the configured value, else the cores of one task slot. */
  private int intraOpThreads() {
    if (spec.intraOpThreads() > 0) {
      return spec.intraOpThreads();
    }
    TaskContext tc = TaskContext.get();
    return tc == null ? 1 : Math.max(1, tc.cpus());
  }
}
