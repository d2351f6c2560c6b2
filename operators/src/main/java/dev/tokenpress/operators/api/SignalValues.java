package dev.tokenpress.operators.api;

import dev.tokenpress.operators.tensor.FloatTensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The values of the requested {@link Signal}s that the runtime hands to an operator in a context.
 * Immutable; the runtime fills it with {@link #builder()}.
 */
public final class SignalValues {

  private static final SignalValues EMPTY = new SignalValues(Map.of());

  private final Map<Signal, FloatTensor> values;

  private SignalValues(Map<Signal, FloatTensor> values) {
    this.values = values;
  }

  /** No signals. */
  public static SignalValues empty() {
    return EMPTY;
  }

  /** A builder for the runtime. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The value of {@code signal}.
   *
   * @throws IllegalStateException if the runtime did not supply it, listing what it supplied
   */
  public FloatTensor get(Signal signal) {
    FloatTensor t = values.get(signal);
    if (t == null) {
      throw new IllegalStateException(
          "signal " + signal + " was not supplied by the runtime; supplied: " + values.keySet());
    }
    return t;
  }

  /** Whether {@code signal} was supplied. */
  public boolean contains(Signal signal) {
    return values.containsKey(signal);
  }

  /** The supplied signals, in insertion order. */
  public Set<Signal> signals() {
    return values.keySet();
  }

  @Override
  public String toString() {
    return "SignalValues" + values.keySet();
  }

  /** Collects signal values; {@link #build()} can be called more than once. */
  public static final class Builder {
    private final Map<Signal, FloatTensor> values = new LinkedHashMap<>();

    private Builder() {}

    /**
     * Adds the value of {@code signal}.
     *
     * @throws IllegalArgumentException if a value for {@code signal} was already added or an
     *     argument is null
     */
    public Builder put(Signal signal, FloatTensor value) {
      if (signal == null || value == null) {
        throw new IllegalArgumentException("signal and value must not be null");
      }
      if (values.putIfAbsent(signal, value) != null) {
        throw new IllegalArgumentException("signal " + signal + " supplied twice");
      }
      return this;
    }

    /** An immutable snapshot. */
    public SignalValues build() {
      return new SignalValues(Collections.unmodifiableMap(new LinkedHashMap<>(values)));
    }
  }
}
