package dev.tokenpress.runtime.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.runtime.bundle.BuildOptions;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleBuilder;
import dev.tokenpress.runtime.bundle.BundleFile;
import dev.tokenpress.runtime.bundle.BundleManifest;
import java.nio.file.Path;
import java.util.Set;

/** {@code tokenpress model build --checkpoint DIR --out DIR [--fused] [--inline-weights]}. */
public final class ModelBuildCommand {
  static final String USAGE =
      "model build --checkpoint DIR --out DIR [--fused] [--inline-weights]\n"
          + "  Builds a model bundle (per-layer ONNX graphs + bundle.json) from a Hugging Face Llama or LLaVA\n"
          + "  checkpoint directory. --fused also writes the single-graph decoder with KV-cache inputs/outputs\n"
          + "  (for comparisons); --inline-weights keeps weights inside every graph instead of one shared\n"
          + "  lm/weights.bin (only for models well under 2 GB). Prints the bundle's model_sha256 (sha256 of\n"
          + "  bundle.json, as recorded by the compress job); the same checkpoint always builds to the same bytes.";

  private ModelBuildCommand() {}

  public static String run(String[] argv) {
    Args a = new Args(argv, Set.of("--checkpoint", "--out"), Set.of("--fused", "--inline-weights"));
    Path ckpt = a.path("--checkpoint");
    Path out = a.path("--out");
    long t0 = System.nanoTime();
    BundleManifest m =
        BundleBuilder.build(
            ckpt, out, new BuildOptions(a.flag("--fused"), !a.flag("--inline-weights")));
    long bytes = 0;
    for (BundleFile f : m.files()) {
      bytes += f.bytes();
    }
    ObjectNode o = Json.object();
    o.put("bundle", out.toAbsolutePath().toString());
    o.put("model_sha256", Bundle.sha256(out.resolve(BundleManifest.FILE_NAME)));
    o.put("family", m.family());
    o.put("lm_layers", m.lm().numLayers());
    o.put("files", m.files().size());
    o.put("bytes", bytes);
    o.put("fused", m.lm().graphs().fused() != null);
    o.put("seconds", Json.round((System.nanoTime() - t0) / 1e9));
    return Json.write(o);
  }
}
