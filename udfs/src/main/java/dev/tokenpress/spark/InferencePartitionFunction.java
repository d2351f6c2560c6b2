package dev.tokenpress.spark;

import dev.tokenpress.operators.api.CompressionPlan;
import java.sql.Timestamp;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.LongAccumulator;

/**
 * Runs the model over one partition of {@link OutputSchemas#WORK} rows and emits {@link
 * OutputSchemas#UNION} rows: for each record one {@code output} row, then its {@code kv} rows, in
 * the partition's order.
 *
 * <p>The runtime comes from {@link ExecutorRuntimes} (one per executor JVM, loaded on the first
 * record, not for empty partitions; a runtime that fails to load fails the task). A record that
 * throws an {@link Exception} becomes an {@code error} row with the exception class and message,
 * unless {@code failFast} is set; {@link Error}s and task interruption (kill, speculation) always
 * propagate.
 *
 * <p><b>Where records run.</b> With {@code sharedWorkers} (the default) the task hands its records
 * to the executor's shared inference pool ({@link ExecutorRuntimes#workers}: one thread per task
 * slot, first in, first out) and keeps at most {@code workers} of them in flight (and the
 * executor's tasks together at most twice the pool's threads, see {@link InferencePool}), while its
 * own thread hands the finished records' rows, in order, to the consumer (the Parquet writers):
 * when one task runs out of records, the pool's threads work on the others' records, so no slot
 * idles while its neighbour finishes — the slots of one executor do not run at the same speed
 * (shared vCPUs) and records do not cost the same. Output and order are the same as without it;
 * Spark's task metrics then count the inference CPU on the pool's threads, not the task's. Without
 * it each task runs its records on its own thread, one at a time as the consumer pulls rows. Either
 * way a task holds at most {@code workers} (or one) records' results in memory, and a task that
 * ends (finished, failed or killed) cancels its records still queued.
 */
public final class InferencePartitionFunction implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;

  private final ProcessorFactory factory;
  private final ProcessorSpec spec;
  private final CompressionPlan plan;
  private final RowProvenance provenance;
  private final boolean failFast;
  private final boolean writeKv;
  private final long maxInputBytes;
  private final Broadcast<SerializableHadoopConf> hadoopConf;
  private final LongAccumulator okRows;
  private final LongAccumulator errorRows;
  private final boolean sharedWorkers;
  private final int workers;

  /**
   * @param sharedWorkers run records on the executor's shared inference pool instead of the task's
   *     thread
   * @param workers size of that pool; 0 = the executor's task slots ({@link TaskSlots})
   */
  public InferencePartitionFunction(
      ProcessorFactory factory,
      ProcessorSpec spec,
      CompressionPlan plan,
      RowProvenance provenance,
      boolean failFast,
      boolean writeKv,
      long maxInputBytes,
      Broadcast<SerializableHadoopConf> hadoopConf,
      LongAccumulator okRows,
      LongAccumulator errorRows,
      boolean sharedWorkers,
      int workers) {
    if (workers < 0) {
      throw new IllegalArgumentException("workers must be >= 0, got " + workers);
    }
    this.factory = factory;
    this.spec = spec;
    this.plan = plan;
    this.provenance = provenance;
    this.failFast = failFast;
    this.writeKv = writeKv;
    this.maxInputBytes = maxInputBytes;
    this.hadoopConf = hadoopConf;
    this.okRows = okRows;
    this.errorRows = errorRows;
    this.sharedWorkers = sharedWorkers;
    this.workers = workers;
  }

  /**
   * What one record became: its rows (an output row then KV rows, or one error row) and its error,
   * if any.
   */
  private record Outcome(String id, List<Row> rows, Exception error) {}

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    TaskContext tc = TaskContext.get();
    InferencePool pool = null;
    int window = 1;
    if (sharedWorkers) {
      window = workers > 0 ? workers : slots(tc);
      pool = ExecutorRuntimes.workers(window);
    }
    return new Records(input, pool, window, tc);
  }

  /** The task's side: feeds records to the pool (or runs them), hands their rows out in order. */
  private final class Records implements Iterator<Row> {
    private final Iterator<Row> input;
    private final InferencePool pool;
    private final int window;
    private final TaskContext tc;
    private final ArrayDeque<Future<Outcome>> inFlight = new ArrayDeque<>();
    private final ArrayDeque<Row> pending = new ArrayDeque<>();
    private RecordProcessor processor;
    private Configuration conf;

    Records(Iterator<Row> input, InferencePool pool, int window, TaskContext tc) {
      this.input = input;
      this.pool = pool;
      this.window = window;
      this.tc = tc;
      if (pool != null && tc != null) {
        tc.addTaskCompletionListener(
            (org.apache.spark.util.TaskCompletionListener) ctx -> cancelInFlight());
      }
    }

    @Override
    public boolean hasNext() {
      while (pending.isEmpty()) {
        while (inFlight.size() < window && input.hasNext() && permit()) {
          try {
            submit(input.next());
          } catch (RuntimeException | Error e) {
            if (pool != null) {
              pool.release();
            }
            throw e;
          }
        }
        if (inFlight.isEmpty()) {
          return false;
        }
        take(inFlight.poll());
      }
      return true;
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return pending.poll();
    }

    /**
     * Whether the task may put one more record in flight: always on its own thread; on the pool, if
     * the executor-wide bound has a permit free — waiting for one only when the task has no record
     * in flight (otherwise it writes its oldest record first; see {@link InferencePool}).
     */
    private boolean permit() {
      if (pool == null) {
        return true;
      }
      if (!inFlight.isEmpty()) {
        return pool.tryAcquire();
      }
      try {
        pool.acquire();
        return true;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("task interrupted", e);
      }
    }

    /**
     * Everything that needs the task (runtime, configuration) happens here, on the task's thread.
     */
    private void submit(Row work) {
      RowCodec.InputRecordRef ref =
          new RowCodec.InputRecordRef(
              work.getString(0), work.getString(1), work.getString(3), work.getString(4));
      byte[] inline = work.isNullAt(2) ? null : (byte[]) work.get(2);
      // A runtime that cannot load is a job error, not a record error: let it fail the task.
      if (processor == null) {
        processor = ExecutorRuntimes.getOrCreate(factory, spec, intraOpThreads(tc));
      }
      if (inline == null && conf == null) {
        conf = hadoopConf.value().get();
      }
      RecordProcessor p = processor;
      Configuration c = conf;
      if (pool == null) {
        inFlight.add(CompletableFuture.completedFuture(run(ref, inline, p, c)));
      } else {
        inFlight.add(pool.submit(() -> run(ref, inline, p, c)));
      }
    }

    private void take(Future<Outcome> next) {
      Outcome o;
      try {
        o = next.get();
      } catch (InterruptedException e) {
        next.cancel(false);
        cancelInFlight();
        Thread.currentThread().interrupt();
        throw new IllegalStateException("task interrupted", e);
      } catch (CancellationException e) {
        cancelInFlight();
        throw new IllegalStateException("task ended while its records were running", e);
      } catch (ExecutionException e) {
        cancelInFlight();
        Throwable cause = e.getCause();
        if (cause instanceof Error err) {
          throw err;
        }
        throw cause instanceof RuntimeException re ? re : new IllegalStateException(cause);
      } finally {
        if (pool != null) {
          pool.release();
        }
      }
      if (o.error() == null) {
        okRows.add(1);
      } else {
        if ((tc != null && tc.isInterrupted())
            || Thread.currentThread().isInterrupted()
            || o.error() instanceof InterruptedException) {
          cancelInFlight();
          Exception e = o.error();
          throw e instanceof RuntimeException re
              ? re
              : new IllegalStateException("task interrupted", e);
        }
        if (failFast) {
          cancelInFlight();
          throw new RecordFailedException(o.id(), o.error());
        }
        errorRows.add(1);
      }
      pending.addAll(o.rows());
    }

    /**
     * Drops the records not yet started and returns their permits; a record already running
     * finishes and is discarded (at most one per pool thread).
     */
    private void cancelInFlight() {
      for (Future<Outcome> f : inFlight) {
        f.cancel(false);
        if (pool != null) {
          pool.release();
        }
      }
      inFlight.clear();
    }
  }

  /**
   * One record, on whichever thread runs it: read, process, encode its rows. Never throws an {@link
   * Exception}.
   */
  private Outcome run(
      RowCodec.InputRecordRef ref, byte[] inline, RecordProcessor p, Configuration conf) {
    long t0 = System.nanoTime();
    try {
      byte[] bytes =
          inline == null
              ? InputBytes.read(ref.source(), maxInputBytes, conf)
              : InputBytes.check(ref.source(), inline, maxInputBytes);
      if (ref.prompt() == null) {
        throw new IllegalArgumentException("record has no prompt and input.prompt is not set");
      }
      long t1 = System.nanoTime();
      RecordResult r =
          p.process(
              new InputRecord(ref.id(), ref.source(), bytes, ref.prompt(), ref.reference()), plan);
      long t2 = System.nanoTime();
      Map<String, Double> timings = new LinkedHashMap<>(r.timingsMs());
      timings.put("read", (t1 - t0) / 1e6);
      timings.put("total", (t2 - t0) / 1e6);
      Timestamp now = new Timestamp(System.currentTimeMillis());
      List<Row> rows = new ArrayList<>();
      rows.add(
          RowFactory.create(
              OutputSchemas.KIND_OUTPUT,
              RowCodec.okRow(ref, r, timings, p.engineInfo(), provenance, now),
              null));
      if (writeKv) {
        for (Row kv : RowCodec.kvRows(ref.id(), r.kvCache(), p.engineInfo(), provenance)) {
          rows.add(RowFactory.create(OutputSchemas.KIND_KV, null, kv));
        }
      }
      return new Outcome(ref.id(), rows, null);
    } catch (Exception e) {
      Timestamp now = new Timestamp(System.currentTimeMillis());
      Row error =
          RowFactory.create(
              OutputSchemas.KIND_OUTPUT,
              RowCodec.errorRow(
                  ref, e, (System.nanoTime() - t0) / 1e6, p.engineInfo(), provenance, now),
              null);
      return new Outcome(ref.id(), List.of(error), e);
    }
  }

  /** ORT intra-op threads: the configured value, else the cores of one task slot. */
  private int intraOpThreads(TaskContext tc) {
    if (spec.intraOpThreads() > 0) {
      return spec.intraOpThreads();
    }
    return tc == null ? 1 : Math.max(1, tc.cpus());
  }

  /** The executor's task slots, from the configuration it runs with. */
  private static int slots(TaskContext tc) {
    SparkEnv env = SparkEnv.get();
    int processors = Runtime.getRuntime().availableProcessors();
    if (env == null) {
      return processors;
    }
    SparkConf c = env.conf();
    return TaskSlots.perExecutor(
        c.get("spark.master", ""),
        c.get("spark.executor.cores", null),
        tc == null ? 1 : tc.cpus(),
        processors);
  }
}
