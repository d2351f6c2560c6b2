package dev.tokenpress.evaluate.report;

import java.util.Map;
import java.util.Objects;

/**
 * One evaluated plan, as the report shows it.
 *
 * @param label short name shown in legends and tables
 * @param planJson the plan in canonical form ({@code CompressionPlan.toJson()})
 * @param planHash {@code CompressionPlan.planHash()}
 * @param images images evaluated
 * @param questions questions evaluated
 * @param accuracy overall accuracy (mean exact match of the scored kinds)
 * @param loss accuracy loss against the empty plan with its 95 % paired-bootstrap interval, or
 *     {@code null} for the empty plan itself
 * @param accuracyByKind accuracy per question kind
 * @param lossByKind loss per kind against the empty plan with intervals (may be empty)
 * @param meanVisualTokens mean visual tokens kept per question
 * @param flopsRatio analytic FLOPs relative to the empty plan
 * @param kvBytesPerRecord mean KV-cache bytes per record, {@code NaN} when not measured
 * @param msPerRecord measured wall milliseconds per record
 * @param metrics further figures by name (POPE, CHAIR, ...), shown in the table
 */
public record PlanSummary(
    String label,
    String planJson,
    String planHash,
    int images,
    int questions,
    double accuracy,
    Interval loss,
    Map<String, Double> accuracyByKind,
    Map<String, Interval> lossByKind,
    double meanVisualTokens,
    double flopsRatio,
    double kvBytesPerRecord,
    double msPerRecord,
    Map<String, Double> metrics) {
  public PlanSummary {
    Objects.requireNonNull(label, "label");
    Objects.requireNonNull(planJson, "planJson");
    Objects.requireNonNull(planHash, "planHash");
    accuracyByKind = Map.copyOf(accuracyByKind);
    lossByKind = Map.copyOf(lossByKind);
    metrics = Map.copyOf(metrics);
    if (!(accuracy >= 0 && accuracy <= 1)) {
      throw new IllegalArgumentException(
          "accuracy must be in [0, 1], got " + accuracy + " for " + label);
    }
  }
}
