package dev.tokenpress.evaluate.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PairedBootstrapTest {
  private static final List<String> KINDS = List.of("color", "count", "exists", "position");

  /**
   * {@code images} images with one question per kind; the plan answers wrong with probability
   * {@code pWrong}.
   */
  private static Map<String, PairedBootstrap.Scored>[] runs(int images, double pWrong, long seed) {
    Random rnd = new Random(seed);
    Map<String, PairedBootstrap.Scored> base = new LinkedHashMap<>();
    Map<String, PairedBootstrap.Scored> plan = new LinkedHashMap<>();
    for (int i = 0; i < images; i++) {
      for (String k : KINDS) {
        String q = "img" + i + "-" + k;
        base.put(q, new PairedBootstrap.Scored("img" + i, k, 1.0));
        plan.put(
            q, new PairedBootstrap.Scored("img" + i, k, rnd.nextDouble() < pWrong ? 0.0 : 1.0));
      }
    }
    @SuppressWarnings("unchecked")
    Map<String, PairedBootstrap.Scored>[] out = new Map[] {base, plan};
    return out;
  }

  @Test
  void pointEstimatesAreTheMeanOfPerKindAccuracies() {
    Map<String, PairedBootstrap.Scored> base = new LinkedHashMap<>();
    Map<String, PairedBootstrap.Scored> plan = new LinkedHashMap<>();
    // exists: 2 questions (base 2/2, plan 1/2); count: 1 question (base 0/1, plan 1/1)
    base.put("a", new PairedBootstrap.Scored("i1", "exists", 1));
    base.put("b", new PairedBootstrap.Scored("i2", "exists", 1));
    base.put("c", new PairedBootstrap.Scored("i1", "count", 0));
    plan.put("a", new PairedBootstrap.Scored("i1", "exists", 1));
    plan.put("b", new PairedBootstrap.Scored("i2", "exists", 0));
    plan.put("c", new PairedBootstrap.Scored("i1", "count", 1));
    PairedBootstrap.Result r = PairedBootstrap.compare(base, plan, 200, 1);
    assertThat(r.baseline()).isEqualTo(0.5); // (1 + 0) / 2
    assertThat(r.accuracy()).isEqualTo(0.75); // (0.5 + 1) / 2
    assertThat(r.loss().estimate()).isEqualTo(-0.25);
    assertThat(r.accuracyByKind()).containsEntry("exists", 0.5).containsEntry("count", 1.0);
    assertThat(r.lossByKind().get("count").estimate()).isEqualTo(-1.0);
  }

  @Test
  void identicalRunsHaveAZeroInterval() {
    Map<String, PairedBootstrap.Scored>[] r = runs(50, 0.3, 3);
    PairedBootstrap.Result same = PairedBootstrap.compare(r[1], r[1], 500, 9);
    assertThat(same.loss()).isEqualTo(new Interval(0, 0, 0));
  }

  /**
   * 400 images, one question per kind, 20 % of the plan's answers wrong at random: the loss is
   * about 0.2 with a standard error of sqrt(0.2 * 0.8 / 1600) = 0.01, so the 95 % interval spans
   * about +-0.0196 around the estimate.
   */
  @Test
  void intervalHasTheWidthTheBinomialPredicts() {
    Map<String, PairedBootstrap.Scored>[] r = runs(400, 0.2, 5);
    PairedBootstrap.Result res = PairedBootstrap.compare(r[0], r[1], 2000, 11);
    double est = res.loss().estimate();
    assertThat(est).isCloseTo(0.2, within(0.03));
    assertThat(est - res.loss().lo()).isCloseTo(0.0196, within(0.004));
    assertThat(res.loss().hi() - est).isCloseTo(0.0196, within(0.004));
    // deterministic for a seed; another seed moves the bounds only by Monte-Carlo noise
    assertThat(PairedBootstrap.compare(r[0], r[1], 2000, 11)).isEqualTo(res);
    PairedBootstrap.Result other = PairedBootstrap.compare(r[0], r[1], 2000, 12);
    assertThat(other.loss().lo()).isCloseTo(res.loss().lo(), within(0.003));
  }

  @Test
  void questionsMustMatch() {
    Map<String, PairedBootstrap.Scored>[] r = runs(5, 0.2, 1);
    Map<String, PairedBootstrap.Scored> fewer = new LinkedHashMap<>(r[1]);
    fewer.remove("img0-color");
    assertThatThrownBy(() -> PairedBootstrap.compare(r[0], fewer, 100, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("img0-color");
    Map<String, PairedBootstrap.Scored> moved = new LinkedHashMap<>(r[1]);
    moved.put("img0-color", new PairedBootstrap.Scored("img1", "color", 1));
    assertThatThrownBy(() -> PairedBootstrap.compare(r[0], moved, 100, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("differs");
    assertThatThrownBy(() -> PairedBootstrap.compare(r[0], r[1], 5, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("resamples");
  }
}
