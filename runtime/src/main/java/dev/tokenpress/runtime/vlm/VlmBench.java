package dev.tokenpress.runtime.vlm;

import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vision.FusedVisionEncoder;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionEncoder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Split vs fused on the same bundle, images, prompt and threads, interleaved image by image so
 * machine load hits both alike. Measures the vision tower alone and the whole request (image
 * decode, preprocessing, vision, prefill and a fixed number of new tokens — no stop token).
 */
public final class VlmBench {
  /** Medians and means in ms; {@code ratio} = split / fused of the mean end-to-end time. */
  public record Report(int images, int newTokens, int threads, double splitVisionMs, double fusedVisionMs,
      double splitMsPerImage, double fusedMsPerImage, double ratio, double visionRatio, double decodeTokensPerS,
      boolean sameTokens) {
    public Map<String, Object> toMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("images", images);
      m.put("new_tokens", newTokens);
      m.put("threads", threads);
      m.put("split_ms_per_image", round(splitMsPerImage));
      m.put("fused_ms_per_image", round(fusedMsPerImage));
      m.put("ratio", round(ratio));
      m.put("split_vision_ms_per_image", round(splitVisionMs));
      m.put("fused_vision_ms_per_image", round(fusedVisionMs));
      m.put("vision_ratio", round(visionRatio));
      m.put("decode_tokens_per_s", round(decodeTokensPerS));
      m.put("same_tokens", sameTokens);
      return m;
    }

    private static double round(double v) {
      return Double.isFinite(v) ? Math.round(v * 1e4) / 1e4 : v;
    }
  }

  private VlmBench() {}

  /**
   * @param images encoded images (each used once per runtime per round)
   * @param warmup untimed passes over the first images
   */
  public static Report run(Path bundleDir, List<byte[]> images, String prompt, int newTokens, int threads, int warmup) {
    if (images.isEmpty()) {
      throw new IllegalArgumentException("the benchmark needs at least one image");
    }
    SessionConfig sc = new SessionConfig(threads, false);
    VlmOptions base = VlmOptions.defaults().withSession(sc).withMaxNewTokens(newTokens);
    Bundle bundle = Bundle.open(bundleDir, Bundle.Verify.SIZE);
    try (VlmRuntime split = VlmRuntime.open(bundleDir, base);
        VlmRuntime fused = VlmRuntime.open(bundleDir, base.withFused(true));
        VisionEncoder sv = VisionBundle.openSplit(bundle, sc);
        FusedVisionEncoder fv = VisionBundle.openFused(bundle, sc)) {
      for (int i = 0; i < warmup; i++) {
        byte[] img = images.get(i % images.size());
        split.generate(request(i, img, prompt, newTokens));
        fused.generate(request(i, img, prompt, newTokens));
      }
      int n = images.size();
      double[] s = new double[n];
      double[] f = new double[n];
      double[] svMs = new double[n];
      double[] fvMs = new double[n];
      double decodeMs = 0;
      int decodeTokens = 0;
      boolean same = true;
      for (int i = 0; i < n; i++) {
        byte[] img = images.get(i);
        VlmResult rs = split.generate(request(i, img, prompt, newTokens));
        VlmResult rf = fused.generate(request(i, img, prompt, newTokens));
        s[i] = rs.timingsMs().get("total");
        f[i] = rf.timingsMs().get("total");
        decodeMs += rs.timingsMs().get("decode");
        decodeTokens += Math.max(0, rs.tokenIds().length - 1);
        same &= Arrays.equals(rs.tokenIds(), rf.tokenIds());
        PixelValues px = split.preprocessor().preprocess(split.decoder().decode(img));
        long t0 = System.nanoTime();
        sv.encode(px);
        long t1 = System.nanoTime();
        fv.encode(px);
        long t2 = System.nanoTime();
        svMs[i] = (t1 - t0) / 1e6;
        fvMs[i] = (t2 - t1) / 1e6;
      }
      double sm = mean(s);
      double fm = mean(f);
      return new Report(n, newTokens, threads, mean(svMs), mean(fvMs), sm, fm, sm / fm, mean(svMs) / mean(fvMs),
          decodeTokens / (decodeMs / 1000), same);
    }
  }

  private static VlmRequest request(int i, byte[] img, String prompt, int newTokens) {
    return VlmRequest.ofBytes("bench-" + i, img, prompt).withMaxNewTokens(newTokens).withoutStopTokens();
  }

  private static double mean(double[] a) {
    double t = 0;
    for (double v : a) {
      t += v;
    }
    return t / a.length;
  }
}
