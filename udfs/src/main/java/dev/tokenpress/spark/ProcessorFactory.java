package dev.tokenpress.spark;

import dev.tokenpress.operators.api.CompressionPlan;
import java.io.Serializable;

/**
 * Creates the per-executor {@link RecordProcessor}. Shipped to executors inside the partition
 * function, so it must be serializable, and it is part of the {@link ExecutorRuntimes} cache key,
 * so it must have value equality (a record or an enum).
 */
public interface ProcessorFactory extends Serializable {
  /**
   * Loads the model; called at most once per executor JVM per (factory, spec, threads), whatever
   * plans the executor's records use.
   *
   * @param intraOpThreads ONNX Runtime intra-op threads for each call (cores / task slots)
   */
  RecordProcessor create(ProcessorSpec spec, int intraOpThreads);

  /** Cheap provenance for the driver (reads the bundle manifest, does not load the model). */
  EngineInfo describe(ProcessorSpec spec);

  /**
   * Checks a plan against the spec's model on the driver, as cheaply as {@link #describe} (no model
   * is loaded), with the same rules {@link #create} applies, so that a plan the model cannot run
   * fails before any task starts.
   *
   * @throws IllegalArgumentException prefixed with {@code plan[i]}, naming the operator field, the
   *     value and what this model allows
   */
  void checkPlan(ProcessorSpec spec, CompressionPlan plan);
}
