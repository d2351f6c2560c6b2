package dev.tokenpress.runtime.testing;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.OperatorConfig;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * A test operator outside any plan: a name, its hooks and signals; subclasses override the
 * callbacks.
 */
public abstract class TestOperator implements TokenOperator {
  private final String name;
  private final Set<Hook> hooks;
  private final List<Signal> signals;

  protected TestOperator(String name, Set<Hook> hooks, Signal... signals) {
    this.name = name;
    this.hooks = EnumSet.copyOf(hooks);
    this.signals = List.of(signals);
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public OperatorConfig config() {
    return null;
  }

  @Override
  public Set<Hook> hooks() {
    return hooks;
  }

  @Override
  public void validate(ModelShape shape) {}

  @Override
  public List<Signal> signals(ModelShape shape) {
    return signals;
  }
}
