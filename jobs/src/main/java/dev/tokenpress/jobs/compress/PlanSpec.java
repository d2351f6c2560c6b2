package dev.tokenpress.jobs.compress;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.operators.api.CompressionPlan;

/**
 * The job's compression plan, parsed once on the driver and shipped to executors as it is (it is
 * serializable); rows are stamped with its canonical JSON and hash.
 *
 * @param plan the parsed, validated plan
 */
public record PlanSpec(CompressionPlan plan) {
  /** {@link CompressionPlan#toJson()} (every field, defaults included). */
  public String json() {
    return plan.toJson();
  }

  /** {@link CompressionPlan#planHash()}. */
  public String hash() {
    return plan.planHash();
  }

  /** Parses and validates the config's {@code plan} list; errors name the field {@code plan}. */
  public static PlanSpec of(JsonNode plan) {
    CompressionPlan p;
    try {
      p = CompressionPlan.parse(ConfigLoader.canonicalJson(plan));
    } catch (IllegalArgumentException e) {
      throw new ConfigException(
          "plan", e.getMessage() + " (operators: " + CompressionPlan.operatorNames() + ")");
    }
    return new PlanSpec(p);
  }
}
