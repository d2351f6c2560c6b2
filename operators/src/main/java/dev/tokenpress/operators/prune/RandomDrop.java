package dev.tokenpress.operators.prune;

import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.PositionMode;
import dev.tokenpress.operators.api.RandomDropConfig;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.operators.api.TokenSelection;
import dev.tokenpress.operators.api.VisualTokensContext;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Random visual-token dropping: keeps a uniformly random subset of {@code budget.resolve(N)} of the
 * {@code N} projected visual tokens, in their original (spatial) order. The floor every informed
 * method must beat (used as the random baseline in e.g. FastV, SparseVLM and VTC-CLS ablations).
 *
 * <p>Draw: {@code rng = new SplittableRandom(Seeds.combine(recordSeed, config.seed()))}; a partial
 * Fisher–Yates shuffle of {@code 0..N-1} picks {@code k} indices (for {@code i < k}: swap {@code i}
 * with {@code i + rng.nextInt(N - i)}), which are then sorted ascending. Every {@code k}-subset is
 * equally likely; the result depends only on the two seeds, {@code N} and {@code k}. Positions are
 * {@link PositionMode#REPACK}ed, as for any pre-LLM drop in LLaVA, unless {@code positions} is
 * {@code keep_original}.
 */
public final class RandomDrop implements TokenOperator {

  private static final Set<Hook> HOOKS =
      Collections.unmodifiableSet(EnumSet.of(Hook.VISUAL_TOKENS));

  private final RandomDropConfig config;

  /** An operator for {@code config}. */
  public RandomDrop(RandomDropConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config must not be null");
    }
    this.config = config;
  }

  @Override
  public RandomDropConfig config() {
    return config;
  }

  @Override
  public Set<Hook> hooks() {
    return HOOKS;
  }

  @Override
  public void validate(ModelShape shape) {
    // Nothing model-specific.
  }

  @Override
  public List<Signal> signals(ModelShape shape) {
    return List.of();
  }

  @Override
  public TokenSelection selectVisualTokens(VisualTokensContext context) {
    int n = context.count();
    int k = config.budget().resolve(n);
    if (k >= n) {
      return TokenSelection.keepAll(n);
    }
    SplittableRandom rng = new SplittableRandom(Seeds.combine(context.seed(), config.seed()));
    int[] perm = new int[n];
    for (int i = 0; i < n; i++) {
      perm[i] = i;
    }
    for (int i = 0; i < k; i++) {
      int j = i + rng.nextInt(n - i);
      int t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    int[] kept = Arrays.copyOf(perm, k);
    Arrays.sort(kept);
    return TokenSelection.of(n, kept, config.positions());
  }

  @Override
  public String toString() {
    return "RandomDrop" + config.toJson();
  }
}
