package dev.tokenpress.spark;

import java.io.Serializable;
import java.util.Objects;

/**
 * Provenance stamped on every row of one batch: the plan (JSON and hash), the hash of the resolved
 * job config, and the run and batch ids.
 */
public record RowProvenance(
    String planJson, String planHash, String configHash, String runId, String batchId)
    implements Serializable {
  public RowProvenance {
    Objects.requireNonNull(planJson, "planJson");
    Objects.requireNonNull(planHash, "planHash");
    Objects.requireNonNull(configHash, "configHash");
    Objects.requireNonNull(runId, "runId");
    Objects.requireNonNull(batchId, "batchId");
  }

  /** The same provenance for another batch of the run. */
  public RowProvenance withBatch(String newBatchId) {
    return new RowProvenance(planJson, planHash, configHash, runId, newBatchId);
  }
}
