package dev.tokenpress.runtime.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.runtime.checkpoint.DType;
import dev.tokenpress.runtime.convert.RandomCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code tokenpress model random}: writes a random-weight checkpoint with a real model's dimensions
 * ({@link RandomCheckpoint}) for benchmarks at real scale.
 */
public final class ModelRandomCommand {
  static final String USAGE =
      "model random --preset llava-1.5-7b|tiny --out DIR --tokenizer DIR [--lm-layers 4]\n"
          + "         [--seed 0] [--dtype f16|bf16|f32]\n"
          + "  Writes a Hugging Face LLaVA checkpoint with random weights (N(0, 0.02), deterministic per seed) and the\n"
          + "  preset's dimensions: llava-1.5-7b = CLIP ViT-L/14-336 (24 layers, 577 tokens), projector 1024->4096->4096,\n"
          + "  Llama width 4096 / 32 heads / MLP 11008 / vocab 32000 with --lm-layers layers (default: the preset's, 4);\n"
          + "  tiny = the same architecture in miniature (tests). Tokenizer files (and the <image> id) come from\n"
          + "  --tokenizer, e.g. models/tiny-llava-shapes. 4 LM layers at f16: 2.9 GB. Build it with `model build`.";

  private ModelRandomCommand() {}

  public static String run(String[] argv) {
    Args a =
        new Args(
            argv,
            Set.of("--preset", "--out", "--tokenizer", "--lm-layers", "--seed", "--dtype"),
            Set.of());
    RandomCheckpoint.Preset preset = RandomCheckpoint.Preset.of(a.required("--preset"));
    RandomCheckpoint.Spec spec = preset.spec();
    spec = spec.withLayers(a.integer("--lm-layers", spec.layers(), 1));
    long seed;
    try {
      seed = Long.parseLong(a.string("--seed", "0"));
    } catch (NumberFormatException e) {
      throw new UsageException("--seed must be an integer, found " + a.string("--seed", ""));
    }
    DType dtype = RandomCheckpoint.dtype(a.string("--dtype", "f16"));
    Path out = a.path("--out");
    Path tokenizer = a.path("--tokenizer");
    long t0 = System.nanoTime();
    spec = RandomCheckpoint.write(spec, out, seed, dtype, tokenizer);
    long bytes;
    try {
      bytes = Files.size(out.resolve("model.safetensors"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    ObjectNode o = Json.object();
    o.put("out", out.toAbsolutePath().toString());
    o.put("preset", preset.id());
    o.put("lm_layers", spec.layers());
    o.put("parameters", spec.parameters());
    o.put("dtype", dtype.name());
    o.put("seed", seed);
    o.put("image_token_index", spec.imageTokenIndex());
    o.put("safetensors_bytes", bytes);
    o.put("seconds", Json.round((System.nanoTime() - t0) / 1e9));
    return Json.write(o);
  }
}
