package dev.tokenpress.jobs.compress;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.jobs.config.ConfigLoader;

/**
 * The compression plan as it is stamped on rows: canonical JSON and its hash.
 *
 * @param json canonical JSON (sorted keys)
 * @param hash lower-case hex SHA-256 of {@code json}
 */
public record PlanSpec(String json, String hash) {
  /** From the config's {@code plan} list. */
  public static PlanSpec of(JsonNode plan) {
    String json = ConfigLoader.canonicalJson(plan);
    return new PlanSpec(json, ConfigLoader.sha256(json));
  }
}
