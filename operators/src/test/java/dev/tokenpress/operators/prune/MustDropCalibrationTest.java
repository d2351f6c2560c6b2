package dev.tokenpress.operators.prune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.tokenpress.operators.api.MustDropConfig;
import dev.tokenpress.operators.tensor.Kernels;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The calibration picks the best reachable threshold, checked against a brute-force scan. */
class MustDropCalibrationTest {

  private static List<MustDropCalibration.Sample> samples(long seed) {
    Random rnd = new Random(seed);
    List<MustDropCalibration.Sample> out = new ArrayList<>();
    for (int n = 0; n < 6; n++) {
      int text = 2 + rnd.nextInt(3);
      int visual = 10 + rnd.nextInt(15);
      int seq = visual + text + 3;
      float[] a = new float[text * visual];
      for (int i = 0; i < text; i++) {
        float[] logits = new float[seq];
        for (int j = 0; j < seq; j++) {
          logits[j] = (float) (rnd.nextGaussian() * 2);
        }
        float[] p = Kernels.softmax(logits);
        System.arraycopy(p, 3, a, i * visual, visual);
      }
      out.add(new MustDropCalibration.Sample(a, text, visual, new int[] {rnd.nextInt(visual)}));
    }
    return out;
  }

  private static double meanKept(MustDropConfig c, List<MustDropCalibration.Sample> samples) {
    MustDrop md = new MustDrop(c);
    double k = 0;
    for (MustDropCalibration.Sample s : samples) {
      k += md.filter(s.attention(), s.textRows(), s.visual(), s.keys()).kept().length;
    }
    return k / samples.size();
  }

  @Test
  void calibratedThresholdIsTheBestReachableBelowTheTarget() {
    List<MustDropCalibration.Sample> samples = samples(42);
    MustDropConfig base = MustDropConfig.defaults().withThresholds(0.01, 1.0);
    for (MustDropCalibration.Knob knob : MustDropCalibration.Knob.values()) {
      MustDropConfig b =
          knob == MustDropCalibration.Knob.GLOBAL ? base : base.withThresholds(0.5, 0.01);
      for (double target : new double[] {0, 3.5, 8, 12.2, 1000}) {
        MustDropCalibration.Result r = MustDropCalibration.calibrate(b, knob, samples, target);
        assertThat(r.meanKept()).isCloseTo(meanKept(r.config(), samples), within(0.0));
        // brute force over a fine log grid of thresholds: nothing reachable is closer from below
        double best = Double.NEGATIVE_INFINITY;
        double min = Double.POSITIVE_INFINITY;
        for (int e = -4000; e <= 400; e++) {
          double t = Math.pow(10, e / 1000.0);
          MustDropConfig c =
              knob == MustDropCalibration.Knob.GLOBAL
                  ? b.withThresholds(t, b.individualThr())
                  : b.withThresholds(b.globalThr(), t);
          double k = meanKept(c, samples);
          min = Math.min(min, k);
          if (k <= target) {
            best = Math.max(best, k);
          }
        }
        if (best == Double.NEGATIVE_INFINITY) {
          assertThat(r.meanKept()).as(knob + " target " + target).isEqualTo(min);
        } else {
          assertThat(r.meanKept())
              .as(knob + " target " + target)
              .isLessThanOrEqualTo(target)
              .isGreaterThanOrEqualTo(best);
        }
      }
    }
  }

  @Test
  void solveMonotoneFindsTheCrossing() {
    // kept(t) = 100 - 10 * log10(t / 1e-4), non-increasing; kept <= 70 from t = 0.1
    double t =
        MustDropCalibration.solveMonotone(x -> 100 - 10 * Math.log10(x / 1e-4), 70, 1e-4, 1, 60);
    assertThat(t).isCloseTo(0.1, within(1e-9));
    assertThat(MustDropCalibration.solveMonotone(x -> 0, 70, 1e-4, 1, 5)).isEqualTo(1e-4);
    assertThat(MustDropCalibration.solveMonotone(x -> 100, 70, 1e-4, 1, 5)).isEqualTo(1.0);
  }
}
