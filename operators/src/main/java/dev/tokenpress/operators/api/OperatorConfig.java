package dev.tokenpress.operators.api;

import dev.tokenpress.operators.json.Json;
import java.io.Serializable;
import java.util.Map;

/**
 * The validated configuration of one operator: one record per algorithm, validated in its compact
 * constructor, serialisable to the job config and to every output row's provenance.
 *
 * <p>Sealed, so that the plan parser knows every algorithm; the records live in this package
 * because Java requires the permitted subclasses of a sealed interface in an unnamed module to
 * share its package. The operator classes themselves live in {@code dev.tokenpress.operators.prune}
 * (selections) and {@code dev.tokenpress.operators.merge} (merges).
 */
public sealed interface OperatorConfig extends Serializable
    permits RandomDropConfig,
        VtcClsConfig,
        FastVConfig,
        ToMeConfig,
        VmtcConfig,
        MustDropConfig,
        DamroConfig,
        VarConfig,
        CmaiConfig,
        ZipVlConfig {

  /** The operator's name in plans, e.g. {@code "fastv"}. */
  String name();

  /**
   * How many visual tokens the operator keeps, or null when it has no token budget (e.g. ToMe,
   * which merges {@code r} per ViT layer). {@link CompressionPlan#bind} checks a {@link
   * Budget.Keep} against the number of visual tokens that can reach the operator.
   */
  default Budget budget() {
    return null;
  }

  /** A new operator for this config. */
  TokenOperator build();

  /**
   * The canonical JSON object: {@code "op"} first, then every field including defaults, in the
   * order the record documents.
   */
  Map<String, Object> toJsonObject();

  /** {@link #toJsonObject()} written as canonical JSON. */
  default String toJson() {
    return Json.write(toJsonObject());
  }
}
