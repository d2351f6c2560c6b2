package dev.tokenpress.operators.api;

import dev.tokenpress.operators.json.Json;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * An ordered list of operator configs: the compression applied to every record of a job. Plans are
 * data; they serialise to the job config and into every output row's provenance.
 *
 * <h2>JSON schema</h2>
 *
 * A plan is a JSON array of operator objects, applied in array order (operators at the same hook
 * run in that order, each on the previous one's output). {@code []} is the empty plan: no
 * compression. Each object has {@code "op"}, the operator name, and that operator's keys:
 *
 * <table>
 *   <caption>Operators and their keys</caption>
 *   <tr><th>op</th><th>keys (default)</th><th>hook</th></tr>
 *   <tr><td>{@code random-drop}</td><td>one of {@code keep | keep_ratio | drop_ratio} (required);
 *       {@code seed} (0)</td><td>VISUAL_TOKENS</td></tr>
 *   <tr><td>{@code vtc-cls}</td><td>one of {@code keep | keep_ratio | drop_ratio} (required);
 *       {@code layers} ({@code "16..L-2"}, a {@link LayerRange} over ViT layers)</td>
 *       <td>VISUAL_TOKENS</td></tr>
 *   <tr><td>{@code fastv}</td><td>{@code layer} (2); one of {@code keep | keep_ratio |
 *       drop_ratio} ({@code drop_ratio} 0.5); {@code mode} ({@code "inplace"})</td>
 *       <td>PREFILL_AFTER</td></tr>
 *   <tr><td>{@code tome}</td><td>{@code r} (required; an integer for every ViT layer run, or an
 *       array with one per layer run); {@code prop_attn} (true)</td><td>VISION_LAYER</td></tr>
 *   <tr><td>{@code vmtc}</td><td>one of {@code keep | keep_ratio | drop_ratio} (required);
 *       {@code merge_at} ({@code "projector_input"}) and the options of {@link VmtcConfig}</td>
 *       <td>VISION_LAYER (after the feature layer) or VISUAL_TOKENS ({@code "projected"})</td></tr>
 *   <tr><td>{@code mustdrop}</td><td>see {@link MustDropConfig}</td><td>VISION_LAYER (stage A), PREFILL_AFTER (B), KV_FINALIZE (C), DECODE</td></tr>
 *   <tr><td>{@code var}</td><td>see {@link VarConfig}</td><td>PREFILL (sinks; attention rewrite), DECODE (rewrite)</td></tr>
 *   <tr><td>{@code cmai}</td><td>see {@link CmaiConfig}</td><td>PREFILL_AFTER (focus), PREFILL and DECODE (bias)</td></tr>
 *   <tr><td>{@code zipvl}</td><td>see {@link ZipVlConfig}</td><td>PREFILL, KV_FINALIZE, KV_APPEND</td></tr>
 * </table>
 *
 * <p>Example: {@code
 * [{"op":"vtc-cls","keep":64,"layers":"1..L-2"},{"op":"fastv","layer":2,"drop_ratio":0.5}]}.
 * Budgets are described in {@link Budget}. Parsing is strict: unknown operators, unknown keys,
 * wrong types, out-of-range values and any JSON extension fail with an {@link
 * IllegalArgumentException} that names the plan index, the field and what is allowed.
 *
 * <h2>Canonical form and hash</h2>
 *
 * {@link #toJson()} writes every field, defaults included, in a fixed order and without whitespace
 * (see {@link Json#write}); parsing it gives an equal plan. {@link #planHash()} is the lower-case
 * hex SHA-256 of its UTF-8 bytes, so two plans that mean the same get the same hash however they
 * were written.
 */
public final class CompressionPlan implements Serializable {

  private static final long serialVersionUID = 1L;

  private static final Map<String, Function<Map<String, Object>, OperatorConfig>> PARSERS;

  static {
    Map<String, Function<Map<String, Object>, OperatorConfig>> m = new LinkedHashMap<>();
    m.put(RandomDropConfig.NAME, RandomDropConfig::fromJson);
    m.put(VtcClsConfig.NAME, VtcClsConfig::fromJson);
    m.put(FastVConfig.NAME, FastVConfig::fromJson);
    m.put(ToMeConfig.NAME, ToMeConfig::fromJson);
    m.put(VmtcConfig.NAME, VmtcConfig::fromJson);
    m.put(MustDropConfig.NAME, MustDropConfig::fromJson);
    m.put(DamroConfig.NAME, DamroConfig::fromJson);
    m.put(VarConfig.NAME, VarConfig::fromJson);
    m.put(CmaiConfig.NAME, CmaiConfig::fromJson);
    m.put(ZipVlConfig.NAME, ZipVlConfig::fromJson);
    PARSERS = Collections.unmodifiableMap(m);
  }

  private static final CompressionPlan EMPTY = new CompressionPlan(List.of());

  private final List<OperatorConfig> operators;

  private CompressionPlan(List<OperatorConfig> operators) {
    this.operators = operators;
  }

  /** The names accepted in {@code "op"}, in documentation order. */
  public static Set<String> operatorNames() {
    return PARSERS.keySet();
  }

  /** The empty plan: no compression. */
  public static CompressionPlan empty() {
    return EMPTY;
  }

  /** A plan of the given configs, in order. */
  public static CompressionPlan of(OperatorConfig... operators) {
    return of(List.of(operators));
  }

  /** A plan of the given configs, in order. */
  public static CompressionPlan of(List<? extends OperatorConfig> operators) {
    for (int i = 0; i < operators.size(); i++) {
      if (operators.get(i) == null) {
        throw new IllegalArgumentException("plan[" + i + "] is null");
      }
    }
    return new CompressionPlan(List.copyOf(operators));
  }

  /**
   * Parses a plan (schema in the class comment).
   *
   * @throws IllegalArgumentException on invalid JSON or an invalid operator, naming the index
   */
  public static CompressionPlan parse(String json) {
    Object root;
    try {
      root = Json.parse(json);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("plan: " + e.getMessage(), e);
    }
    if (!(root instanceof List<?> list)) {
      throw new IllegalArgumentException(
          "plan must be a JSON array of operator objects, e.g. "
              + "[{\"op\":\"fastv\",\"layer\":2}]; operators: "
              + operatorNames()
              + "; got "
              + kind(root));
    }
    List<OperatorConfig> configs = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      Object item = list.get(i);
      if (!(item instanceof Map<?, ?>)) {
        throw new IllegalArgumentException(
            "plan["
                + i
                + "] must be an object with an \"op\" key (one of "
                + operatorNames()
                + "), e.g. {\"op\":\"fastv\",\"layer\":2}; got "
                + kind(item));
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> object = (Map<String, Object>) item;
      Object op = object.get("op");
      if (!(op instanceof String name)) {
        throw new IllegalArgumentException(
            "plan[" + i + "] needs \"op\" (a string, one of " + operatorNames() + ")");
      }
      Function<Map<String, Object>, OperatorConfig> parser = PARSERS.get(name);
      if (parser == null) {
        throw new IllegalArgumentException(
            "plan[" + i + "]: unknown operator \"" + name + "\"; allowed: " + operatorNames());
      }
      try {
        configs.add(parser.apply(object));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("plan[" + i + "]: " + e.getMessage(), e);
      }
    }
    return new CompressionPlan(List.copyOf(configs));
  }

  private static String kind(Object v) {
    if (v == null) {
      return "null";
    }
    if (v instanceof Map) {
      return "an object";
    }
    if (v instanceof List) {
      return "an array";
    }
    if (v instanceof String) {
      return "a string";
    }
    if (v instanceof Boolean) {
      return "a boolean";
    }
    return "a number";
  }

  /** The configs, in order (unmodifiable). */
  public List<OperatorConfig> operators() {
    return operators;
  }

  /** Whether the plan compresses nothing. */
  public boolean isEmpty() {
    return operators.isEmpty();
  }

  /** A new operator for each config, in order. */
  public List<TokenOperator> build() {
    List<TokenOperator> ops = new ArrayList<>(operators.size());
    for (OperatorConfig c : operators) {
      ops.add(c.build());
    }
    return List.copyOf(ops);
  }

  /**
   * Builds the operators and validates each against {@code shape}: what a runtime does at plan
   * start, and what a driver does before it starts any work ({@link #validate}).
   *
   * <p>Besides each operator's own {@link TokenOperator#validate} and its signals, a {@code keep}
   * budget must not exceed the visual tokens that can reach the operator (it would keep them all
   * and do nothing): {@link ModelShape#numPatches()} per image, less what the {@link
   * Hook#VISUAL_TOKENS} operators before it keep; {@link Hook#VISION_LAYER} operators with a budget
   * (VMTC) run before all of those, whatever their plan position; a {@link Hook#PREFILL_AFTER}
   * operator sees at most what all of them keep.
   *
   * @throws IllegalArgumentException prefixed with {@code plan[i]} if an operator does not fit the
   *     model, needs a signal the model cannot provide, or keeps more tokens than reach it
   */
  public List<TokenOperator> bind(ModelShape shape) {
    List<TokenOperator> ops = build();
    int[] reaching = visualTokensReaching(ops, shape);
    int quantizer = -1;
    for (int i = 0; i < ops.size(); i++) {
      if (ops.get(i).quantizesKv()) {
        if (quantizer >= 0) {
          throw new IllegalArgumentException(
              "plan["
                  + i
                  + "]: "
                  + ops.get(i).name()
                  + " quantises the KV"
                  + " cache that plan["
                  + quantizer
                  + "] ("
                  + ops.get(quantizer).name()
                  + ") already"
                  + " quantises; a plan may quantise the KV cache once");
        }
        quantizer = i;
      }
    }
    for (int i = 0; i < ops.size(); i++) {
      try {
        TokenOperator op = ops.get(i);
        op.validate(shape);
        for (Signal s : op.signals(shape)) {
          s.validate(shape);
        }
        if (op.config() != null) {
          checkKeep(op.config(), reaching[i], shape);
        }
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("plan[" + i + "]: " + e.getMessage(), e);
      }
    }
    return ops;
  }

  /**
   * Checks the plan against a model without keeping the operators ({@link #bind}): for a driver,
   * before it starts work that the runtime would then refuse.
   *
   * @throws IllegalArgumentException as {@link #bind}
   */
  public void validate(ModelShape shape) {
    bind(shape);
  }

  /** The most visual tokens that can reach each operator (see {@link #bind}). */
  private static int[] visualTokensReaching(List<TokenOperator> ops, ModelShape shape) {
    int[] reaching = new int[ops.size()];
    int visual = shape.numPatches();
    // ViT operators with a budget (VMTC) run before every VISUAL_TOKENS operator
    for (Hook hook : new Hook[] {Hook.VISION_LAYER, Hook.VISUAL_TOKENS}) {
      for (int i = 0; i < ops.size(); i++) {
        if (!ops.get(i).hooks().contains(hook)) {
          continue;
        }
        reaching[i] = visual;
        Budget budget = ops.get(i).config() == null ? null : ops.get(i).config().budget();
        if (budget != null) {
          visual = budget.resolve(visual);
        }
      }
    }
    for (int i = 0; i < ops.size(); i++) {
      if (!ops.get(i).hooks().contains(Hook.VISUAL_TOKENS)
          && !ops.get(i).hooks().contains(Hook.VISION_LAYER)) {
        reaching[i] = visual;
      }
    }
    return reaching;
  }

  private static void checkKeep(OperatorConfig config, int reaching, ModelShape shape) {
    if (config.budget() instanceof Budget.Keep k && k.count() > reaching) {
      throw new IllegalArgumentException(
          config.name()
              + ".keep must be in [1, "
              + reaching
              + "]: at most "
              + reaching
              + " visual tokens reach it (the model has "
              + shape.numPatches()
              + " per image"
              + (reaching < shape.numPatches() ? ", the operators before it keep " + reaching : "")
              + "), so it would keep them all and do nothing; got "
              + k.count());
    }
  }

  /** The union of the signals the operators need on {@code shape}, in first-request order. */
  public static Set<Signal> signals(List<TokenOperator> operators, ModelShape shape) {
    Set<Signal> all = new LinkedHashSet<>();
    for (TokenOperator op : operators) {
      all.addAll(op.signals(shape));
    }
    return Collections.unmodifiableSet(all);
  }

  /** The canonical JSON form (see the class comment). */
  public String toJson() {
    List<Object> list = new ArrayList<>(operators.size());
    for (OperatorConfig c : operators) {
      list.add(c.toJsonObject());
    }
    return Json.write(list);
  }

  /** Lower-case hex SHA-256 of the UTF-8 bytes of {@link #toJson()}. */
  public String planHash() {
    try {
      byte[] d =
          MessageDigest.getInstance("SHA-256").digest(toJson().getBytes(StandardCharsets.UTF_8));
      StringBuilder sb = new StringBuilder(64);
      for (byte b : d) {
        sb.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
      }
      return sb.toString();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof CompressionPlan p && operators.equals(p.operators);
  }

  @Override
  public int hashCode() {
    return operators.hashCode();
  }

  /** The canonical JSON form. */
  @Override
  public String toString() {
    return toJson();
  }
}
