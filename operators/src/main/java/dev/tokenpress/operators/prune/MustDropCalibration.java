package dev.tokenpress.operators.prune;

import dev.tokenpress.operators.api.MustDropConfig;
import java.util.Arrays;
import java.util.List;
import java.util.function.DoubleUnaryOperator;

/**
 * Picks MustDrop's stage-B thresholds for a target mean kept count. γ and α are shares of attention
 * mass, so the kept count varies per image and the authors tune them per dataset (notes §1.4 and
 * pitfall 8: TextVQA 64 → (0.011, 0.01), VizWiz 64 → (0.005, 0.001)).
 *
 * <p>{@link #calibrate} is exact for one pruning point: given each validation image's stage-B input
 * at that point (from an unpruned run or a run with the other stages fixed), it returns the
 * threshold that makes the mean number of kept vision tokens the largest value {@code <= target}
 * reachable, placed halfway between two neighbouring token statistics so that rounding cannot flip
 * a token. The paper's count is an average over all LM layers of a run in which every pruning point
 * acts on the previous one's output; that depends on the model, so {@link #solveMonotone} searches
 * a threshold against a caller-supplied function that runs the split and returns {@link
 * MustDrop#meanVisualTokens} averaged over images.
 */
public final class MustDropCalibration {

  private MustDropCalibration() {}

  /** Which threshold is searched; the other one stays at the config's value. */
  public enum Knob {
    /** γ, {@code global_thr}. */
    GLOBAL,
    /** α, {@code individual_thr}. */
    INDIVIDUAL
  }

  /**
   * One image's stage-B input at one pruning point, as {@link MustDrop#filter} takes it.
   *
   * @param attention {@code [textRows × visual]} head-mean attention over the vision block
   * @param textRows rows after the vision block
   * @param visual vision tokens
   * @param keys key positions in the vision block (never dropped)
   */
  public record Sample(float[] attention, int textRows, int visual, int[] keys) {}

  /**
   * The result.
   *
   * @param config {@code base} with the chosen threshold
   * @param meanKept the mean kept count over the samples with that config (by {@link
   *     MustDrop#filter})
   */
  public record Result(MustDropConfig config, double meanKept) {}

  /**
   * The threshold of {@code knob} for which the mean kept count over {@code samples} is the largest
   * value {@code <= targetMeanKept} (or the smallest reachable one, if the target is below it); the
   * other threshold is {@code base}'s.
   */
  public static Result calibrate(
      MustDropConfig base, Knob knob, List<Sample> samples, double targetMeanKept) {
    if (samples.isEmpty()) {
      throw new IllegalArgumentException("calibration needs at least one sample");
    }
    if (!(targetMeanKept >= 0)) {
      throw new IllegalArgumentException("targetMeanKept must be >= 0, got " + targetMeanKept);
    }
    // statistic of every token that the chosen knob can drop: the share g_j / sum(g) for γ
    // (dropped iff share < γ), the max m_j for α (dropped iff m_j < α)
    double[] stats = new double[0];
    int count = 0;
    long total = 0;
    for (Sample s : samples) {
      total += s.visual();
      double[] g = new double[s.visual()];
      double[] m = new double[s.visual()];
      Arrays.fill(m, Double.NEGATIVE_INFINITY);
      for (int i = 0; i < s.textRows(); i++) {
        for (int j = 0; j < s.visual(); j++) {
          double a = s.attention()[i * s.visual() + j];
          g[j] += a;
          m[j] = Math.max(m[j], a);
        }
      }
      double sum = 0;
      for (double x : g) {
        sum += x;
      }
      boolean[] key = new boolean[s.visual()];
      for (int k : s.keys()) {
        key[k] = true;
      }
      if (stats.length < count + s.visual()) {
        stats = Arrays.copyOf(stats, Math.max(2 * stats.length, count + s.visual()));
      }
      for (int j = 0; j < s.visual(); j++) {
        boolean droppable =
            s.textRows() > 0
                && !key[j]
                && (knob == Knob.GLOBAL
                    ? m[j] < base.individualThr()
                    : g[j] < sum * base.globalThr());
        if (droppable) {
          stats[count++] = knob == Knob.GLOBAL ? g[j] / sum : m[j];
        }
      }
    }
    Arrays.sort(stats, 0, count);
    // drop at least `need` tokens over all samples
    double excess = total - targetMeanKept * samples.size();
    int need = (int) Math.min(count, Math.max(0, Math.ceil(excess - 1e-9)));
    double threshold;
    if (need == 0) {
      threshold = 0;
    } else if (need == count) {
      threshold = 2 * Math.max(stats[count - 1], Double.MIN_NORMAL);
    } else {
      // between the need-th smallest and the next larger distinct statistic
      int hi = need;
      while (hi < count && stats[hi] == stats[need - 1]) {
        hi++;
      }
      threshold = hi == count ? 2 * stats[count - 1] : (stats[need - 1] + stats[hi]) / 2;
    }
    MustDropConfig chosen =
        knob == Knob.GLOBAL
            ? base.withThresholds(threshold, base.individualThr())
            : base.withThresholds(base.globalThr(), threshold);
    MustDrop md = new MustDrop(chosen);
    long kept = 0;
    for (Sample s : samples) {
      kept += md.filter(s.attention(), s.textRows(), s.visual(), s.keys()).kept().length;
    }
    return new Result(chosen, (double) kept / samples.size());
  }

  /**
   * Bisection in log space for a threshold {@code t in [lo, hi]} ({@code 0 < lo < hi}) where a
   * non-increasing function {@code meanKept(t)} (e.g. a run of the validation split returning the
   * paper's layer-averaged count) is closest to {@code target} from below, after {@code iterations}
   * evaluations. Returns the threshold; {@code hi} when even {@code hi} keeps more than {@code
   * target}.
   */
  public static double solveMonotone(
      DoubleUnaryOperator meanKept, double target, double lo, double hi, int iterations) {
    if (!(lo > 0 && hi > lo) || iterations < 1) {
      throw new IllegalArgumentException(
          "need 0 < lo < hi and iterations >= 1, got lo="
              + lo
              + ", hi="
              + hi
              + ", iterations="
              + iterations);
    }
    double a = lo;
    double b = hi;
    if (meanKept.applyAsDouble(a) <= target) {
      return a;
    }
    for (int i = 1; i < iterations; i++) {
      double mid = Math.sqrt(a * b);
      if (meanKept.applyAsDouble(mid) <= target) {
        b = mid;
      } else {
        a = mid;
      }
    }
    return b;
  }
}
