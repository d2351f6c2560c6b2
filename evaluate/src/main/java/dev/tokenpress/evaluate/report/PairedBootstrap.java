package dev.tokenpress.evaluate.report;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Accuracy loss of a plan against a baseline on the same questions, with a 95 % paired-bootstrap
 * interval over images: each resample draws the images with replacement and takes every question of
 * a drawn image (questions of one image are not independent), for both runs alike. Accuracy is the
 * mean over the question kinds of each kind's exact-match accuracy (the project's "overall"). The
 * interval is the 2.5th and 97.5th percentile of the resampled losses (the order statistics at
 * {@code floor(0.025 )} and {@code floor(0.975 )}), as {@code
 * bin/tokenpress-eval-compare} computes it. The draws depend only on the seed and the number of
 * images, so every plan compared with the same seed on the same questions sees the same resamples.
 */
public final class PairedBootstrap {
  /**
   * One scored question.
   *
   * @param image the cluster it is resampled with
   * @param kind question kind
   * @param correct 1 or 0 (or a mean over repeated runs)
   */
  public record Scored(String image, String kind, double correct) {}

  /**
   * @param baseline the baseline's accuracy
   * @param accuracy the plan's accuracy
   * @param loss {@code baseline - accuracy} with its interval
   * @param lossByKind the same per kind
   * @param accuracyByKind the plan's accuracy per kind
   */
  public record Result(
      double baseline,
      double accuracy,
      Interval loss,
      Map<String, Interval> lossByKind,
      Map<String, Double> accuracyByKind) {}

  private PairedBootstrap() {}

  /**
   * Compares {@code plan} with {@code baseline} (both keyed by question id).
   *
   * @throws IllegalArgumentException when the two do not hold the same questions, or a question's
   *     image or kind differs between them
   */
  public static Result compare(
      Map<String, Scored> baseline, Map<String, Scored> plan, int resamples, long seed) {
    if (resamples < 10) {
      throw new IllegalArgumentException("resamples must be >= 10, got " + resamples);
    }
    if (baseline.isEmpty()) {
      throw new IllegalArgumentException("no questions to compare");
    }
    for (String q : baseline.keySet()) {
      Scored p = plan.get(q);
      if (p == null) {
        throw new IllegalArgumentException(
            "question " + q + " is in the baseline but not in the plan's results");
      }
      Scored b = baseline.get(q);
      if (!p.image().equals(b.image()) || !p.kind().equals(b.kind())) {
        throw new IllegalArgumentException("question " + q + " differs: " + b + " vs " + p);
      }
    }
    if (plan.size() != baseline.size()) {
      throw new IllegalArgumentException(
          "the plan's results hold "
              + plan.size()
              + " questions, the baseline's "
              + baseline.size());
    }
    TreeMap<String, Integer> imageIndex = new TreeMap<>();
    TreeMap<String, Integer> kindIndex = new TreeMap<>();
    for (Scored s : baseline.values()) {
      imageIndex.putIfAbsent(s.image(), 0);
      kindIndex.putIfAbsent(s.kind(), 0);
    }
    int k = 0;
    for (Map.Entry<String, Integer> e : imageIndex.entrySet()) {
      e.setValue(k++);
    }
    List<String> kinds = new ArrayList<>(kindIndex.keySet());
    for (int i = 0; i < kinds.size(); i++) {
      kindIndex.put(kinds.get(i), i);
    }
    int nImages = imageIndex.size();
    int nKinds = kinds.size();
    // per image and kind: correct sums of both runs and the count
    double[] cb = new double[nImages * nKinds];
    double[] cp = new double[nImages * nKinds];
    int[] n = new int[nImages * nKinds];
    for (Map.Entry<String, Scored> e : baseline.entrySet()) {
      Scored b = e.getValue();
      int cell = imageIndex.get(b.image()) * nKinds + kindIndex.get(b.kind());
      cb[cell] += b.correct();
      cp[cell] += plan.get(e.getKey()).correct();
      n[cell]++;
    }
    int[] all = new int[nImages];
    Arrays.setAll(all, i -> i);
    double[] pointBase = perKind(cb, n, all, nKinds);
    double[] pointPlan = perKind(cp, n, all, nKinds);

    double[][] lossSamples = new double[nKinds + 1][resamples];
    SplittableRandom rnd = new SplittableRandom(seed);
    int[] sample = new int[nImages];
    for (int r = 0; r < resamples; r++) {
      for (int i = 0; i < nImages; i++) {
        sample[i] = rnd.nextInt(nImages);
      }
      double[] b = perKind(cb, n, sample, nKinds);
      double[] p = perKind(cp, n, sample, nKinds);
      for (int j = 0; j <= nKinds; j++) {
        lossSamples[j][r] = b[j] - p[j];
      }
    }
    Map<String, Interval> byKind = new LinkedHashMap<>();
    Map<String, Double> accByKind = new LinkedHashMap<>();
    for (int j = 0; j < nKinds; j++) {
      byKind.put(kinds.get(j), interval(pointBase[j] - pointPlan[j], lossSamples[j]));
      accByKind.put(kinds.get(j), pointPlan[j]);
    }
    return new Result(
        pointBase[nKinds],
        pointPlan[nKinds],
        interval(pointBase[nKinds] - pointPlan[nKinds], lossSamples[nKinds]),
        byKind,
        accByKind);
  }

  /**
   * Per-kind accuracy over the sampled images, then their mean (last element). A kind with no
   * question in the sample is left out of the mean and reported as the mean of the others.
   */
  private static double[] perKind(double[] correct, int[] count, int[] images, int nKinds) {
    double[] c = new double[nKinds];
    int[] m = new int[nKinds];
    for (int img : images) {
      int base = img * nKinds;
      for (int j = 0; j < nKinds; j++) {
        c[j] += correct[base + j];
        m[j] += count[base + j];
      }
    }
    double[] out = new double[nKinds + 1];
    double sum = 0;
    int kindsPresent = 0;
    for (int j = 0; j < nKinds; j++) {
      if (m[j] > 0) {
        out[j] = c[j] / m[j];
        sum += out[j];
        kindsPresent++;
      }
    }
    double mean = kindsPresent == 0 ? 0 : sum / kindsPresent;
    for (int j = 0; j < nKinds; j++) {
      if (m[j] == 0) {
        out[j] = mean;
      }
    }
    out[nKinds] = mean;
    return out;
  }

  private static Interval interval(double estimate, double[] samples) {
    double[] s = samples.clone();
    Arrays.sort(s);
    int last = s.length - 1;
    return new Interval(estimate, s[(int) (0.025 * last)], s[(int) (0.975 * last)]);
  }
}
