package dev.tokenpress.runtime.testing;

import dev.tokenpress.runtime.checkpoint.DType;
import dev.tokenpress.runtime.convert.RandomCheckpoint;
import java.nio.file.Path;

/**
 * Writes small random Llama / LLaVA-layout checkpoints (seeded) for runtime tests, with the
 * project's generator ({@link RandomCheckpoint}, the one behind {@code model random}) at these
 * dimensions.
 */
public final class TinyCheckpoints {
  public static final int HIDDEN = 32;
  public static final int INTERMEDIATE = 48;
  public static final int LAYERS = 3;
  public static final int HEADS = 4;
  public static final int KV_HEADS = 2;
  public static final int HEAD_DIM = 8;
  public static final int VOCAB = 64;
  public static final int MAX_POS = 96;

  /** Weights large enough that attention is far from uniform (the signals tests need contrast). */
  static final double STD = 0.3;

  static final double NORM_JITTER = 0.1;

  private TinyCheckpoints() {}

  /**
   * @param llava LLaVA layout: {@code text_config} and {@code language_model.} weight names (the
   *     names a LLaVA checkpoint of transformers &lt; 4.52 uses), no vision tower
   * @param tied tie_word_embeddings (no lm_head tensor)
   */
  public static Path write(Path dir, long seed, boolean llava, boolean tied) {
    RandomCheckpoint.Spec spec =
        new RandomCheckpoint.Spec(
            null,
            llava,
            HIDDEN,
            INTERMEDIATE,
            LAYERS,
            HEADS,
            KV_HEADS,
            VOCAB,
            MAX_POS,
            tied,
            VOCAB - 1,
            STD,
            NORM_JITTER);
    RandomCheckpoint.write(spec, dir, seed, DType.F32, null);
    return dir;
  }
}
