package dev.tokenpress.spark;

import dev.tokenpress.operators.api.CompressionPlan;

/**
 * The seam between the Spark adapters and the model runtime: turns one input record into a
 * {@link RecordResult}. One instance per executor JVM (see {@link ExecutorRuntimes}), shared by
 * the executor's task threads, so implementations must be safe for concurrent use.
 *
 * <p>{@link #process} throws (any {@link RuntimeException}) when the record cannot be processed:
 * a corrupt image, an over-limit input, a prompt too long. The partition function records such
 * failures as {@code error} rows; only {@link Error}s end the task.
 */
public interface RecordProcessor extends AutoCloseable {
  /** One record with the given compression plan (any plan {@link ProcessorFactory#checkPlan} accepts). */
  RecordResult process(InputRecord record, CompressionPlan plan);

  /** Provenance stamped on every row this processor produces. */
  EngineInfo engineInfo();

  @Override
  void close();
}
