package dev.tokenpress.spark;

import dev.tokenpress.operators.api.CompressionPlan;
import java.util.ArrayList;
import java.util.List;

/**
 * The seam between the Spark adapters and the model runtime: turns one input record into a {@link
 * RecordResult}. One instance per executor JVM (see {@link ExecutorRuntimes}), shared by the
 * executor's task threads, so implementations must be safe for concurrent use.
 *
 * <p>{@link #process} throws (any {@link RuntimeException}) when the record cannot be processed: a
 * corrupt image, an over-limit input, a prompt too long. The partition function records such
 * failures as {@code error} rows; only {@link Error}s end the task.
 */
public interface RecordProcessor extends AutoCloseable {
  /**
   * One record with the given compression plan (any plan {@link ProcessorFactory#checkPlan}
   * accepts).
   */
  RecordResult process(InputRecord record, CompressionPlan plan);

  /**
   * Every record of {@code records} (one image: the same bytes, e.g. its questions) under every
   * plan of {@code plans}: {@code [plan][record]} outcomes, each what {@link #process} gives for
   * that pair or the {@link RuntimeException} it throws. An implementation may share work between
   * the pairs (the VLM runs one vision pass per image and one prefix prefill per group of equal
   * prefixes); this default runs them one by one, each outcome's {@code ms} its own wall time.
   */
  default List<List<RecordOutcome>> processImage(
      List<InputRecord> records, List<CompressionPlan> plans) {
    List<List<RecordOutcome>> out = new ArrayList<>(plans.size());
    for (CompressionPlan plan : plans) {
      List<RecordOutcome> row = new ArrayList<>(records.size());
      for (InputRecord r : records) {
        long t0 = System.nanoTime();
        try {
          RecordResult res = process(r, plan);
          row.add(new RecordOutcome(res, null, (System.nanoTime() - t0) / 1e6));
        } catch (RuntimeException e) {
          row.add(new RecordOutcome(null, e, (System.nanoTime() - t0) / 1e6));
        }
      }
      out.add(row);
    }
    return out;
  }

  /**
   * One (plan, record) outcome of {@link #processImage}: a result or an error, and the wall time it
   * is charged (its own work plus its share of work it shared with others).
   */
  record RecordOutcome(RecordResult result, RuntimeException error, double ms) {
    /** Checks that exactly one of result and error is set. */
    public RecordOutcome {
      if ((result == null) == (error == null)) {
        throw new IllegalArgumentException(
            "an outcome has a result or an error, not both or neither");
      }
    }
  }

  /** Provenance stamped on every row this processor produces. */
  EngineInfo engineInfo();

  @Override
  void close();
}
