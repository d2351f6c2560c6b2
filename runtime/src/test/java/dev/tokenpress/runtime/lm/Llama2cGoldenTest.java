package dev.tokenpress.runtime.lm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.convert.Llama2cConverter;
import dev.tokenpress.runtime.convert.Llama2cTokenizer;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.Golden;
import dev.tokenpress.runtime.testing.SharedData;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real weights: stories260K (llama2.c) -> HF checkpoint -> bundle -> split runtime reproduces the
 * llama2.c reference greedy ids of GOLDEN.md exactly, and the fused variant gives the same logits.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class Llama2cGoldenTest {
  private Path shared;
  private List<Golden.Case> cases;
  private Llama2cTokenizer tokenizer;
  private LlamaRuntime split;
  private FusedLlamaRuntime fused;

  @BeforeAll
  void build(@TempDir Path tmp) {
    shared = SharedData.stories260KOrNull();
    if (shared == null) {
      return; // every test skips with the message
    }
    cases = Golden.read(shared);
    tokenizer = new Llama2cTokenizer(shared.resolve("tok512.bin"));
    Path hf = tmp.resolve("hf");
    Llama2cConverter.convert(shared.resolve("stories260K.bin"), hf);
    Path bundleDir = tmp.resolve("bundle");
    BundleBuilder.build(hf, bundleDir, new BuildOptions(true, true));
    Bundle bundle = Bundle.open(bundleDir);
    split = LlamaRuntime.open(bundle, SessionConfig.singleThreaded());
    fused = FusedLlamaRuntime.open(bundle, SessionConfig.singleThreaded());
  }

  @AfterAll
  void close() {
    if (split != null) {
      split.close();
    }
    if (fused != null) {
      fused.close();
    }
  }

  private void assumeData() {
    org.junit.jupiter.api.Assumptions.assumeTrue(shared != null, SharedData.stories260KMissing());
  }

  private LmRequest request(int[] promptIds, boolean record) {
    return new LmRequest(
        split.embedding().embed(promptIds),
        LmRequest.sequentialPositions(promptIds.length),
        new int[] {Llama2cTokenizer.BOS},
        Golden.STEPS - promptIds.length + 1,
        KvPrecision.FP32,
        record);
  }

  @Test
  void encoderReproducesGoldenPromptIds() {
    assumeData();
    for (Golden.Case c : cases) {
      assertThat(tokenizer.encode(c.prompt(), true, false))
          .as("prompt %s", c)
          .containsExactly(c.promptIds());
    }
  }

  @Test
  void splitRuntimeReproducesLlama2cGreedyIds() {
    assumeData();
    for (Golden.Case c : cases) {
      GenerationResult r = split.generate(request(c.promptIds(), false));
      assertThat(r.tokenIds()).as("generated ids for %s", c).containsExactly(c.generatedIds());
      String text =
          c.prompt() + tokenizer.decode(c.promptIds()[c.promptIds().length - 1], r.tokenIds());
      assertThat(text).isEqualTo(c.text());
      assertThat(r.kvCache().lengths())
          .containsOnly(c.promptIds().length + r.tokenIds().length - 1);
    }
  }

  @Test
  void fusedVariantGivesTheSameLogits() {
    assumeData();
    for (Golden.Case c : cases) {
      GenerationResult a = split.generate(request(c.promptIds(), true));
      GenerationResult b = fused.generate(request(c.promptIds(), true));
      assertThat(b.tokenIds()).containsExactly(a.tokenIds());
      List<float[]> la = a.stepLogits();
      List<float[]> lb = b.stepLogits();
      assertThat(lb).hasSameSizeAs(la);
      float maxDiff = 0;
      for (int s = 0; s < la.size(); s++) {
        for (int i = 0; i < la.get(s).length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(la.get(s)[i] - lb.get(s)[i]));
        }
      }
      assertThat(maxDiff)
          .as("max |split - fused| logit over all steps for %s", c)
          .isLessThanOrEqualTo(1e-4f);
    }
  }
}
