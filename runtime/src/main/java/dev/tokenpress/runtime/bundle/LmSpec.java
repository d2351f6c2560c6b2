package dev.tokenpress.runtime.bundle;

import java.util.List;

/**
 * The language model of a bundle: dimensions, special tokens and files.
 *
 * @param architecture decoder architecture, {@code llama}
 * @param embedding safetensors file with the token embedding table {@code [vocab, hidden]} (the
 *     lookup runs in Java, so visual tokens enter the same way as text)
 * @param embeddingTensor tensor name inside {@link #embedding}
 */
public record LmSpec(
    String architecture,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    int vocabSize,
    int maxPositionEmbeddings,
    double ropeTheta,
    double rmsNormEps,
    int bosTokenId,
    List<Integer> eosTokenIds,
    String embedding,
    String embeddingTensor,
    LmGraphFiles graphs) {

  public LmSpec {
    eosTokenIds = List.copyOf(eosTokenIds);
    if (numLayers < 1 || numHeads < 1 || numKvHeads < 1 || numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "invalid LM dims: layers "
              + numLayers
              + ", heads "
              + numHeads
              + ", kv heads "
              + numKvHeads);
    }
    if (graphs.pre().size() != numLayers
        || graphs.post().size() != numLayers
        || graphs.mid().size() != numLayers - 1) {
      throw new IllegalArgumentException(
          "LM graph lists do not match "
              + numLayers
              + " layers: pre "
              + graphs.pre().size()
              + ", post "
              + graphs.post().size()
              + ", mid "
              + graphs.mid().size());
    }
  }

  public int qWidth() {
    return numHeads * headDim;
  }

  public int kvWidth() {
    return numKvHeads * headDim;
  }
}
