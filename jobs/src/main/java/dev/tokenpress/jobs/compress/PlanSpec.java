package dev.tokenpress.jobs.compress;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.operators.api.CompressionPlan;

/**
 * The compression plan as it is stamped on rows: the operators' canonical JSON and plan hash.
 *
 * @param json {@link CompressionPlan#toJson()} (every field, defaults included)
 * @param hash {@link CompressionPlan#planHash()}
 */
public record PlanSpec(String json, String hash) {
  /** Parses and validates the config's {@code plan} list; errors name the field {@code plan}. */
  public static PlanSpec of(JsonNode plan) {
    CompressionPlan p;
    try {
      p = CompressionPlan.parse(ConfigLoader.canonicalJson(plan));
    } catch (IllegalArgumentException e) {
      throw new ConfigException("plan", e.getMessage() + " (operators: " + CompressionPlan.operatorNames() + ")");
    }
    return new PlanSpec(p.toJson(), p.planHash());
  }
}
