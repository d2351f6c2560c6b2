package dev.tokenpress.jobs.compress;

/**
 * Observes the compress job's commit steps on the driver. Production runs pass {@link #NONE}; the
 * fault-injection tests pass one that kills the driver JVM at a chosen step, to prove that a resume
 * after a crash at any step ends with every id exactly once.
 */
@FunctionalInterface
interface JobProbe {
  /** The driver-side steps of a run, in order (per batch for the first four). */
  enum Step {
    /** Every task of the batch finished and its files are staged; nothing is committed. */
    TASKS_FINISHED,
    /**
     * The batch's commit journal is written: from here on the batch is committed (roll-forward).
     */
    JOURNAL_WRITTEN,
    /** The batch's {@code kv_cache/} files are in place, its {@code outputs/} files not yet. */
    KV_MOVED,
    /** The batch's files are all in place. */
    BATCH_COMMITTED,
    /** Every batch is committed; the final run manifest is not written yet. */
    SUMMARY
  }

  JobProbe NONE = (step, batchId) -> {};

  void at(Step step, String batchId);
}
