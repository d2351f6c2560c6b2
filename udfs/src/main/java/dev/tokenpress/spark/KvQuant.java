package dev.tokenpress.spark;

import java.util.Objects;

/**
 * Quantisation metadata of one KV chunk (see {@link TensorCodec} for the stored form).
 * {@code kZeros}/{@code vZeros} may be null (symmetric codes).
 *
 * @param scheme codec name, {@code affine} for {@code q * scale + zero}
 * @param bits bits per stored code (8, 4 or 2)
 * @param groupSize consecutive elements sharing a scale along the grouped axis
 */
public record KvQuant(
    String scheme, int bits, int groupSize, TensorData kScales, TensorData kZeros, TensorData vScales, TensorData vZeros) {
  public KvQuant {
    Objects.requireNonNull(scheme, "scheme");
    if (bits != 8 && bits != 4 && bits != 2) {
      throw new IllegalArgumentException("bits must be 8, 4 or 2, got " + bits);
    }
    if (groupSize < 1) {
      throw new IllegalArgumentException("groupSize must be >= 1, got " + groupSize);
    }
    Objects.requireNonNull(kScales, "kScales");
    Objects.requireNonNull(vScales, "vScales");
  }
}
