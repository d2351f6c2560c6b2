package dev.tokenpress.evaluate.report;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Plan summaries for the report tests: an empty plan and five compressing plans with awkward
 * labels.
 */
final class ReportFixtures {
  private ReportFixtures() {}

  static List<PlanSummary> plans() {
    List<PlanSummary> out = new ArrayList<>();
    out.add(plan("empty", "[]", 0.81, null, 256, 1.0, 1_200_000, 410));
    out.add(
        plan(
            "fastv k=64",
            "[{\"op\":\"fastv\",\"keep\":64}]",
            0.77,
            new Interval(0.04, 0.02, 0.06),
            64,
            0.78,
            950_000,
            330));
    out.add(
        plan(
            "vtc-cls 25%",
            "[{\"op\":\"vtc-cls\",\"keep\":64}]",
            0.79,
            new Interval(0.02, 0.005, 0.035),
            64,
            0.57,
            600_000,
            290));
    out.add(
        plan(
            "random 11%",
            "[{\"op\":\"random-drop\",\"keep\":28}]",
            0.62,
            new Interval(0.19, 0.16, 0.22),
            28,
            0.50,
            500_000,
            260));
    out.add(
        plan(
            "tome r=8 </script><b>x</b>",
            "[{\"op\":\"tome\",\"r\":8}]",
            0.75,
            new Interval(0.06, 0.04, 0.08),
            64,
            0.38,
            600_000,
            240));
    out.add(
        plan(
            "kv off",
            "[{\"op\":\"fastv\",\"keep\":128}]",
            0.80,
            new Interval(0.01, -0.005, 0.025),
            128,
            0.85,
            Double.NaN,
            380));
    return out;
  }

  private static PlanSummary plan(
      String label,
      String json,
      double acc,
      Interval loss,
      double tokens,
      double flops,
      double kv,
      double ms) {
    Map<String, Double> kinds =
        Map.of(
            "exists", acc + 0.05, "color", acc + 0.1, "count", acc - 0.05, "position", acc - 0.1);
    Map<String, Interval> lossKinds =
        loss == null ? Map.of() : Map.of("exists", loss, "count", loss);
    return new PlanSummary(
        label,
        json,
        Integer.toHexString(json.hashCode()) + "0123456789abcdef",
        300,
        1800,
        acc,
        loss,
        kinds,
        lossKinds,
        tokens,
        flops,
        kv,
        ms,
        Map.of("chair_i", 0.1 + (1 - acc) / 2, "pope_f1", acc));
  }
}
