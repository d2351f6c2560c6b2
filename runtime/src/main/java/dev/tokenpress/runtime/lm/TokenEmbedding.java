package dev.tokenpress.runtime.lm;

import dev.tokenpress.runtime.checkpoint.SafetensorsFile;
import dev.tokenpress.runtime.checkpoint.TensorEntry;
import java.nio.file.Path;

/**
 * The token embedding table, looked up in Java (one row copy per token instead of an ORT call), so
 * text tokens and projected visual tokens enter the decoder the same way, as input embeddings.
 * Tables up to {@value #HEAP_LIMIT_BYTES} bytes are held on the heap; larger ones are read row by
 * row from the file. Thread-safe.
 */
public final class TokenEmbedding implements AutoCloseable {
  static final long HEAP_LIMIT_BYTES = 256L << 20;

  private final SafetensorsFile file;
  private final String tensor;
  private final int vocab;
  private final int dim;
  private final float[] table;

  public TokenEmbedding(Path path, String tensor) {
    this.file = SafetensorsFile.open(path);
    this.tensor = tensor;
    TensorEntry e = file.entry(tensor);
    if (e.rank() != 2) {
      file.close();
      throw new IllegalArgumentException("embedding " + e + " in " + path + " is not 2-D");
    }
    this.vocab = (int) e.dim(0);
    this.dim = (int) e.dim(1);
    this.table = (long) vocab * dim * 4 <= HEAP_LIMIT_BYTES ? file.readFloats(tensor) : null;
  }

  public int vocabSize() {
    return vocab;
  }

  public int dim() {
    return dim;
  }

  /** Writes the embedding of {@code tokenId} into {@code dst[off .. off+dim)}. */
  public void lookup(int tokenId, float[] dst, int off) {
    if (tokenId < 0 || tokenId >= vocab) {
      throw new IllegalArgumentException(
          "token id " + tokenId + " outside the vocabulary [0, " + vocab + ")");
    }
    if (table != null) {
      System.arraycopy(table, tokenId * dim, dst, off, dim);
    } else {
      file.readFloats(tensor, (long) tokenId * dim, dst, off, dim);
    }
  }

  /** Embeddings of a token sequence, {@code ids.length x dim} row-major. */
  public float[] embed(int[] ids) {
    float[] out = new float[ids.length * dim];
    for (int i = 0; i < ids.length; i++) {
      lookup(ids[i], out, i * dim);
    }
    return out;
  }

  @Override
  public void close() {
    file.close();
  }
}
