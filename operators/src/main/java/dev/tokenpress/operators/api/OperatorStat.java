package dev.tokenpress.operators.api;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * One figure an operator reports about what it did to a record, e.g. VAR's visual sinks at LM layer
 * 2 or CMAI's inhibited (query, image token) pairs; written to the {@code operator_stats} column of
 * every output row. Operators that change attention instead of tokens have no {@link KeptMap} to
 * show, so this is their provenance.
 *
 * <p>Immutable (the values are copied in and out).
 */
public final class OperatorStat implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String operator;
  private final int layer;
  private final String name;
  private final long[] values;

  /**
   * @param operator the operator's plan name, e.g. {@code "var"}
   * @param layer the LM layer the figure belongs to, or -1 for the whole record
   * @param name what the values are, e.g. {@code "visual_sinks"}
   * @param values the figure (one value for a count, several for a list such as sink dimensions)
   */
  public OperatorStat(String operator, int layer, String name, long... values) {
    this.operator = Objects.requireNonNull(operator, "operator");
    this.name = Objects.requireNonNull(name, "name");
    if (layer < -1) {
      throw new IllegalArgumentException("layer must be >= -1, got " + layer);
    }
    this.layer = layer;
    this.values = values.clone();
  }

  public String operator() {
    return operator;
  }

  public int layer() {
    return layer;
  }

  public String name() {
    return name;
  }

  /** A copy of the values. */
  public long[] values() {
    return values.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof OperatorStat s
        && s.operator.equals(operator)
        && s.layer == layer
        && s.name.equals(name)
        && Arrays.equals(s.values, values);
  }

  @Override
  public int hashCode() {
    return Objects.hash(operator, layer, name, Arrays.hashCode(values));
  }

  @Override
  public String toString() {
    return operator
        + (layer >= 0 ? "[" + layer + "]" : "")
        + "."
        + name
        + "="
        + Arrays.toString(values);
  }
}
