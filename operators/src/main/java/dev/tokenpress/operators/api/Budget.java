package dev.tokenpress.operators.api;

import dev.tokenpress.operators.tensor.Kernels;
import java.io.Serializable;

/**
 * How many of {@code N} tokens an operator keeps. Plans write exactly one of three JSON keys:
 *
 * <ul>
 *   <li>{@code "keep": k} ({@link Keep}): keep {@code min(k, N)} tokens; {@code k >= 1}.
 *   <li>{@code "keep_ratio": r} ({@link KeepRatio}): keep {@code roundHalfUp(r·N)} tokens; {@code 0
 *       < r <= 1}.
 *   <li>{@code "drop_ratio": R} ({@link DropRatio}): keep {@code roundHalfUp((1-R)·N)} tokens;
 *       {@code 0 <= R < 1}. This is FastV's {@code R} ("prune R% of image tokens").
 * </ul>
 *
 * <p>{@code roundHalfUp(x) = floor(x + 0.5)} in double precision ({@link Kernels#roundHalfUp});
 * e.g. {@code drop_ratio 0.5} of 13 tokens keeps 7. A ratio can round to 0 tokens when {@code N} is
 * tiny; operators then keep no token of that kind.
 */
public sealed interface Budget extends Serializable
    permits Budget.Keep, Budget.KeepRatio, Budget.DropRatio {

  /** The JSON keys, in the order tried. */
  java.util.List<String> KEYS = java.util.List.of("keep", "keep_ratio", "drop_ratio");

  /** Number of tokens kept out of {@code n}, in {@code [0, n]}. */
  int resolve(int n);

  /** The JSON key of this form. */
  String key();

  /** The JSON value of this form ({@code Integer} or {@code Double}). */
  Object value();

  /** {@code keep}: a fixed number of tokens. */
  static Budget keep(int count) {
    return new Keep(count);
  }

  /** {@code keep_ratio}: a fraction of tokens kept. */
  static Budget keepRatio(double ratio) {
    return new KeepRatio(ratio);
  }

  /** {@code drop_ratio}: a fraction of tokens dropped. */
  static Budget dropRatio(double ratio) {
    return new DropRatio(ratio);
  }

  /** Keep {@code min(count, N)} tokens. */
  record Keep(int count) implements Budget {
    /** {@code count >= 1}. */
    public Keep {
      if (count < 1) {
        throw new IllegalArgumentException("keep must be >= 1, got " + count);
      }
    }

    @Override
    public int resolve(int n) {
      return Math.min(count, Math.max(n, 0));
    }

    @Override
    public String key() {
      return "keep";
    }

    @Override
    public Object value() {
      return count;
    }
  }

  /** Keep {@code roundHalfUp(ratio·N)} tokens. */
  record KeepRatio(double ratio) implements Budget {
    /** {@code 0 < ratio <= 1}. */
    public KeepRatio {
      if (!(ratio > 0 && ratio <= 1)) {
        throw new IllegalArgumentException("keep_ratio must be in (0, 1], got " + ratio);
      }
    }

    @Override
    public int resolve(int n) {
      return clamp(Kernels.roundHalfUp(ratio * n), n);
    }

    @Override
    public String key() {
      return "keep_ratio";
    }

    @Override
    public Object value() {
      return ratio;
    }
  }

  /** Keep {@code roundHalfUp((1 - ratio)·N)} tokens. */
  record DropRatio(double ratio) implements Budget {
    /** {@code 0 <= ratio < 1}. */
    public DropRatio {
      if (!(ratio >= 0 && ratio < 1)) {
        throw new IllegalArgumentException("drop_ratio must be in [0, 1), got " + ratio);
      }
    }

    @Override
    public int resolve(int n) {
      return clamp(Kernels.roundHalfUp((1.0 - ratio) * n), n);
    }

    @Override
    public String key() {
      return "drop_ratio";
    }

    @Override
    public Object value() {
      return ratio;
    }
  }

  private static int clamp(int k, int n) {
    return Math.max(0, Math.min(k, n));
  }
}
