package dev.tokenpress.runtime.lm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bundled tiny VLM's language model ({@code models/tiny-llava-shapes}, LLaVA layout): its
 * {@code text_config} and {@code language_model.*} weights load, and the split runtime gives the
 * fused decoder's logits (≤ 1e-4) on a VLM-shaped sequence — text tokens around 256 rows standing
 * in for projected visual tokens — through prefill and decoding.
 */
class TinyLlavaLmTest {
  @Test
  void splitEqualsFusedOnAVlmShapedSequence(@TempDir Path tmp) {
    Path model =
        Path.of(System.getProperty("tokenpress.project.dir", "."), "models", "tiny-llava-shapes");
    assumeTrue(
        Files.isRegularFile(model.resolve("model.safetensors")),
        "skipped: no bundled model at " + model);
    BundleBuilder.build(model, tmp.resolve("bundle"), new BuildOptions(true, true));
    Bundle bundle = Bundle.open(tmp.resolve("bundle"));
    assertThat(bundle.lm().numLayers()).isEqualTo(4);
    assertThat(bundle.lm().numKvHeads()).isEqualTo(2);
    assertThat(bundle.lm().headDim()).isEqualTo(32);
    try (LlamaRuntime split = LlamaRuntime.open(bundle, SessionConfig.singleThreaded());
        FusedLlamaRuntime fused = FusedLlamaRuntime.open(bundle, SessionConfig.singleThreaded())) {
      int d = split.spec().hiddenSize();
      int[] prefix = {1, 5, 9};
      int[] suffix = {28, 42, 11, 14, 45, 10, 6, 9};
      int visual = 256;
      int n = prefix.length + visual + suffix.length;
      float[] x = new float[n * d];
      System.arraycopy(split.embedding().embed(prefix), 0, x, 0, prefix.length * d);
      SplittableRandom rnd = new SplittableRandom(5);
      for (int i = prefix.length * d; i < (prefix.length + visual) * d; i++) {
        x[i] = (float) (rnd.nextDouble() - 0.5);
      }
      System.arraycopy(
          split.embedding().embed(suffix), 0, x, (prefix.length + visual) * d, suffix.length * d);
      LmRequest req =
          new LmRequest(x, LmRequest.sequentialPositions(n), new int[0], 8, KvPrecision.FP32, true);
      GenerationResult a = split.generate(req);
      GenerationResult b = fused.generate(req);
      assertThat(b.tokenIds()).containsExactly(a.tokenIds());
      List<float[]> la = a.stepLogits();
      List<float[]> lb = b.stepLogits();
      float max = 0;
      for (int s = 0; s < la.size(); s++) {
        for (int i = 0; i < la.get(s).length; i++) {
          max = Math.max(max, Math.abs(la.get(s)[i] - lb.get(s)[i]));
        }
      }
      assertThat(max).as("max |split - fused| logit").isLessThanOrEqualTo(1e-4f);
      assertThat(a.kvCache().lengths()).containsOnly(n + 7);
    }
  }
}
