package dev.tokenpress.jobs.launch;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.Success$;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.util.LongAccumulator;
import scala.Tuple4;
import scala.collection.Iterator;

/**
 * Driver-side progress of a job's Spark stages: units done / total, units/s, ETA and errors,
 * printed at a steady interval (the compress job counts rows, the evaluate and tune jobs (plan,
 * question) evaluations).
 *
 * <p>Counts come from two accumulators updated per unit by the partition function. Finished tasks
 * contribute their final values; running tasks contribute the partial values that executor
 * heartbeats carry ({@code spark.executor.heartbeatInterval}), so progress moves inside long tasks
 * too. A task that fails or is killed stops counting. The figures are live estimates; the final
 * summary counts committed rows.
 */
public final class Progress extends SparkListener implements AutoCloseable {
  private final LongAccumulator ok;
  private final LongAccumulator errorAcc;
  private final long alreadyDone;
  private final long total;
  private final PrintStream out;
  private final String unit;
  private final long startNanos = System.nanoTime();
  private final AtomicLong finishedOk = new AtomicLong();
  private final AtomicLong finishedErrors = new AtomicLong();
  private final Map<Long, long[]> running = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timer;
  private volatile String phase = "";

  /**
   * Starts printing to {@code out} every {@code intervalSeconds}; register it with {@code
   * sparkContext().addSparkListener} and close it when the stages are done.
   *
   * @param ok units that succeeded, added to by the tasks
   * @param errors units that became error rows
   * @param alreadyDone units done before this run (resume), counted as done
   * @param total all units, including {@code alreadyDone}
   * @param unit what a unit is called in the line, e.g. {@code "rows"}
   */
  public Progress(
      LongAccumulator ok,
      LongAccumulator errors,
      long alreadyDone,
      long total,
      int intervalSeconds,
      String unit,
      PrintStream out) {
    this.ok = ok;
    this.errorAcc = errors;
    this.unit = unit;
    this.alreadyDone = alreadyDone;
    this.total = total;
    this.out = out;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "tokenpress-progress");
              t.setDaemon(true);
              return t;
            });
    timer.scheduleAtFixedRate(
        () -> out.println(line()), intervalSeconds, intervalSeconds, TimeUnit.SECONDS);
  }

  /** Text appended to every line, e.g. the batch or round. */
  public void phase(String p) {
    phase = p;
  }

  @Override
  public void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate update) {
    Iterator<Tuple4<Object, Object, Object, scala.collection.immutable.Seq<AccumulableInfo>>> it =
        update.accumUpdates().iterator();
    while (it.hasNext()) {
      Tuple4<Object, Object, Object, scala.collection.immutable.Seq<AccumulableInfo>> t = it.next();
      long taskId = (Long) t._1();
      long[] v = values(t._4());
      if (v != null) {
        running.put(taskId, v);
      }
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd end) {
    running.remove(end.taskInfo().taskId());
    if (end.reason() == Success$.MODULE$) {
      long[] v = values(end.taskInfo().accumulables());
      if (v != null) {
        finishedOk.addAndGet(v[0]);
        finishedErrors.addAndGet(v[1]);
      }
    }
  }

  private long[] values(scala.collection.Seq<AccumulableInfo> infos) {
    long[] v = null;
    Iterator<AccumulableInfo> it = infos.iterator();
    while (it.hasNext()) {
      AccumulableInfo a = it.next();
      if ((a.id() == ok.id() || a.id() == errorAcc.id()) && a.update().isDefined()) {
        if (v == null) {
          v = new long[2];
        }
        long n = ((Number) a.update().get()).longValue();
        v[a.id() == ok.id() ? 0 : 1] = n;
      }
    }
    return v;
  }

  /** Units processed in this run so far (ok + error), estimated. */
  public long processed() {
    long n = finishedOk.get() + finishedErrors.get();
    for (long[] v : running.values()) {
      n += v[0] + v[1];
    }
    return n;
  }

  /** Units that became error rows so far, estimated. */
  public long errors() {
    long n = finishedErrors.get();
    for (long[] v : running.values()) {
      n += v[1];
    }
    return n;
  }

  /** The progress line as printed: live estimates from the listener events so far. */
  public String line() {
    return line(processed(), errors());
  }

  /**
   * The line with exact counts, from the accumulators' merged values on the driver: call it after
   * the Spark action returned (listener events arrive asynchronously, so {@link #line()} may still
   * lag there).
   */
  public String finalLine() {
    return line(ok.value() + errorAcc.value(), errorAcc.value());
  }

  private String line(long processed, long errorCount) {
    long done = Math.min(total, alreadyDone + processed);
    double secs = (System.nanoTime() - startNanos) / 1e9;
    double rate = secs > 0 ? processed / secs : 0;
    String eta = rate > 0 ? format(Duration.ofSeconds((long) ((total - done) / rate))) : "?";
    double pct = total == 0 ? 100 : 100.0 * done / total;
    return String.format(
        Locale.ROOT,
        "[tokenpress] %d/%d %s (%.1f%%) | %.2f %s/s | ETA %s | errors %d%s",
        done,
        total,
        unit,
        pct,
        rate,
        unit,
        eta,
        errorCount,
        phase.isEmpty() ? "" : " | " + phase);
  }

  static String format(Duration d) {
    long s = d.getSeconds();
    if (s >= 3600) {
      return String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60);
    }
    if (s >= 60) {
      return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
    }
    return s + "s";
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
