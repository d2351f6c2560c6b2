package dev.tokenpress.runtime.lm;

import dev.tokenpress.runtime.bundle.LmSpec;
import java.util.Arrays;

/**
 * Analytic FLOPs of one generation, counted the same way for every plan: 2 FLOPs per
 * multiply-accumulate of the matrix products (projections, attention scores and weighted sums over
 * the actual query and KV lengths, MLP, LM head); norms, RoPE and softmax are not counted.
 */
public final class LmFlops {
  private final long[] prefillPerLayer;
  private final long prefillHead;
  private final long decode;
  private final int decodeSteps;

  LmFlops(long[] prefillPerLayer, long prefillHead, long decode, int decodeSteps) {
    this.prefillPerLayer = prefillPerLayer.clone();
    this.prefillHead = prefillHead;
    this.decode = decode;
    this.decodeSteps = decodeSteps;
  }

  /** One decoder layer: {@code rows} query rows attending over {@code kvLength} entries. */
  public static long layer(LmSpec s, long rows, long kvLength) {
    long d = s.hiddenSize();
    long proj = 2 * rows * d * (s.qWidth() + 2L * s.kvWidth()) + 2 * rows * s.qWidth() * d;
    long attn = 4 * rows * kvLength * s.headDim() * s.numHeads();
    long mlp = 6 * rows * d * s.intermediateSize();
    return proj + attn + mlp;
  }

  /**
   * One decoder layer whose attention ran sparsely: projections and MLP over {@code rows} rows,
   * attention of {@code attnQueries} query rows over {@code attnKeys} keys.
   */
  public static long layer(LmSpec s, long rows, long attnQueries, long attnKeys) {
    return layer(s, rows, 0) + 4 * attnQueries * attnKeys * s.headDim() * s.numHeads();
  }

  /** The LM head over {@code rows} rows. */
  public static long head(LmSpec s, long rows) {
    return 2 * rows * s.hiddenSize() * s.vocabSize();
  }

  public long[] prefillPerLayer() {
    return prefillPerLayer.clone();
  }

  /** Prefill: all layers plus the head over the rows whose logits were computed. */
  public long prefill() {
    long t = prefillHead;
    for (long f : prefillPerLayer) {
      t += f;
    }
    return t;
  }

  public long decode() {
    return decode;
  }

  public int decodeSteps() {
    return decodeSteps;
  }

  public long total() {
    return prefill() + decode;
  }

  @Override
  public String toString() {
    return "LmFlops(prefill="
        + prefill()
        + ", decode="
        + decode
        + " over "
        + decodeSteps
        + " steps, perLayer="
        + Arrays.toString(prefillPerLayer)
        + ")";
  }
}
