package dev.tokenpress.runtime.bundle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.lm.FusedLlamaRuntime;
import dev.tokenpress.runtime.lm.GenerationResult;
import dev.tokenpress.runtime.lm.LlamaRuntime;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.testing.TinyCheckpoints;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BundleTest {
  @TempDir Path tmp;

  private static int[] generate(Path bundle) {
    try (LlamaRuntime rt = LlamaRuntime.open(Bundle.open(bundle), SessionConfig.singleThreaded())) {
      int[] prompt = {1, 5, 9, 33};
      GenerationResult r =
          rt.generate(
              new LmRequest(
                  rt.embedding().embed(prompt),
                  LmRequest.sequentialPositions(4),
                  new int[0],
                  5,
                  KvPrecision.FP32,
                  false));
      return r.tokenIds();
    }
  }

  @Test
  void inlineAndExternalWeightsGiveTheSameModel() {
    Path ckpt = TinyCheckpoints.write(tmp.resolve("ckpt"), 7, false, true);
    BundleManifest ext =
        BundleBuilder.build(ckpt, tmp.resolve("ext"), new BuildOptions(false, true));
    BundleManifest inl =
        BundleBuilder.build(ckpt, tmp.resolve("inline"), new BuildOptions(false, false));
    assertThat(ext.files()).anyMatch(f -> f.path().equals("lm/weights.bin"));
    assertThat(inl.files()).noneMatch(f -> f.path().endsWith("weights.bin"));
    assertThat(ext.family()).isEqualTo("llama");
    assertThat(ext.lm().graphs().fused()).isNull();
    assertThat(generate(tmp.resolve("ext"))).containsExactly(generate(tmp.resolve("inline")));
    assertThatThrownBy(
            () ->
                FusedLlamaRuntime.open(
                    Bundle.open(tmp.resolve("ext")), SessionConfig.singleThreaded()))
        .isInstanceOf(BundleException.class)
        .hasMessageContaining("--fused");
  }

  @Test
  void corruptedTruncatedOrMissingFilesAreNamed() throws IOException {
    Path ckpt = TinyCheckpoints.write(tmp.resolve("ckpt"), 7, false, false);
    Path b = tmp.resolve("b");
    BundleBuilder.build(ckpt, b, BuildOptions.defaults());
    Bundle.open(b); // intact

    Path weights = b.resolve("lm/weights.bin");
    byte[] orig = Files.readAllBytes(weights);
    byte[] bad = orig.clone();
    bad[bad.length / 2] ^= 1;
    Files.write(weights, bad);
    assertThatThrownBy(() -> Bundle.open(b))
        .isInstanceOf(BundleException.class)
        .hasMessageContaining("lm/weights.bin")
        .hasMessageContaining("sha256");
    Bundle.open(b, Bundle.Verify.SIZE); // size-only check does not read contents

    Files.write(weights, Arrays.copyOf(orig, orig.length - 4));
    assertThatThrownBy(() -> Bundle.open(b, Bundle.Verify.SIZE))
        .isInstanceOf(BundleException.class)
        .hasMessageContaining("lm/weights.bin")
        .hasMessageContaining("bytes");

    Files.write(weights, orig);
    Files.delete(b.resolve("lm/layer_01_mid.onnx"));
    assertThatThrownBy(() -> Bundle.open(b))
        .isInstanceOf(BundleException.class)
        .hasMessageContaining("lm/layer_01_mid.onnx")
        .hasMessageContaining("missing");

    assertThatThrownBy(() -> Bundle.open(tmp.resolve("nothing-here")))
        .isInstanceOf(BundleException.class)
        .hasMessageContaining("bundle.json");
  }

  @Test
  void refusesToOverwriteANonEmptyDirectory() throws IOException {
    Path ckpt = TinyCheckpoints.write(tmp.resolve("ckpt"), 7, false, false);
    Files.createDirectories(tmp.resolve("out"));
    Files.writeString(tmp.resolve("out/keep.txt"), "x");
    assertThatThrownBy(() -> BundleBuilder.build(ckpt, tmp.resolve("out"), BuildOptions.defaults()))
        .hasMessageContaining("not empty");
  }
}
