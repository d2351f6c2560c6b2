package dev.tokenpress.jobs.compress;

import java.util.Map;

/**
 * What a {@code compress} run did.
 *
 * @param runId id stamped on this run's rows
 * @param outputPath qualified output directory
 * @param inputs records in the corpus
 * @param alreadyCommitted records skipped because an earlier run committed them
 * @param processed records processed by this run (ok + error)
 * @param ok records of this run with status ok
 * @param errors records of this run with status error
 * @param errorClasses error counts by exception class (this run)
 * @param kvRows kv_cache rows written by this run
 * @param batches commits made by this run
 * @param seconds wall time of the run
 * @param excluded entries of a directory corpus that are not records, by reason (see {@link
 *     dev.tokenpress.jobs.corpus.DirectoryListing}); empty for manifests
 */
public record RunSummary(
    String runId,
    String outputPath,
    long inputs,
    long alreadyCommitted,
    long processed,
    long ok,
    long errors,
    Map<String, Long> errorClasses,
    long kvRows,
    int batches,
    double seconds,
    Map<String, Long> excluded) {
  public RunSummary {
    excluded = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(excluded));
  }

  /** Excluded entries of all reasons. */
  public long excludedTotal() {
    return excluded.values().stream().mapToLong(Long::longValue).sum();
  }

  /** Records per second of this run. */
  public double rowsPerSecond() {
    return seconds > 0 ? processed / seconds : 0;
  }
}
