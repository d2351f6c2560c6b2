package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.kernels.AttentionRows;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.bundle.LmSpec;
import java.util.function.Supplier;

/**
 * The runtime's view of one prefill layer, and the source of its signals: the rows the layer ran on
 * (with original position ids and token indices), this layer's Q and K for them (RoPE applied), the
 * layer's cache after the rows were stored, and the layer's input hidden states on request. Signals
 * are computed only when an operator asks for them, over the rows the {@link HookRunner} names (the
 * rows left by earlier operators at the same hook).
 */
final class PrefillLayer implements HookRunner.SignalSource {
  private final int layer;
  private final LmSpec spec;
  private final int[] tokenIndices;
  private final float[] q;
  private final LayerKvCache cache;
  private final Supplier<float[]> hidden;
  private float[] cacheKeys;
  private int[] cacheOrder;

  PrefillLayer(
      int layer,
      LmSpec spec,
      int[] tokenIndices,
      float[] q,
      LayerKvCache cache,
      Supplier<float[]> hidden) {
    this.layer = layer;
    this.spec = spec;
    this.tokenIndices = tokenIndices;
    this.q = q;
    this.cache = cache;
    this.hidden = hidden;
  }

  int rows() {
    return tokenIndices.length;
  }

  @Override
  public FloatTensor compute(Signal signal, SequenceLayout layout, int[] rows) {
    if (signal.layer() != layer) {
      throw new IllegalStateException("signal " + signal + " requested at LM layer " + layer);
    }
    if (signal instanceof Signal.LmHiddenStates) {
      int d = spec.hiddenSize();
      float[] all = hidden.get();
      float[] out = new float[rows.length * d];
      for (int i = 0; i < rows.length; i++) {
        System.arraycopy(all, rows[i] * d, out, i * d, d);
      }
      return FloatTensor.wrap(out, rows.length, d);
    }
    if (signal instanceof Signal.LmQueries) {
      return FloatTensor.wrap(gatherRows(q, spec.qWidth(), rows), rows.length, spec.qWidth());
    }
    if (signal instanceof Signal.LmKeys) {
      requireWholeCache();
      if (cacheKeys == null) {
        cacheKeys = cache.keys();
        cacheOrder = cache.tokenIndices();
      }
      return FloatTensor.wrap(
          gatherRows(cacheKeys, spec.kvWidth(), rows), rows.length, spec.kvWidth());
    }
    int heads = spec.numHeads();
    if (signal instanceof Signal.QueryRowAttention a) {
      int[] qr = a.rows().resolve(layout);
      float[] logits = attention(qr, rows, false);
      int all = tokenIndices.length;
      float[] mean = new float[qr.length * all];
      for (int i = 0; i < qr.length; i++) {
        float[] one = new float[heads * all];
        System.arraycopy(logits, i * heads * all, one, 0, one.length);
        System.arraycopy(Kernels.headMeanSoftmax(one, heads, all), 0, mean, i * all, all);
      }
      return FloatTensor.wrap(keyColumns(mean, qr.length, rows), qr.length, rows.length);
    }
    if (signal instanceof Signal.QueryRowHeadAttention a) {
      int[] qr = a.rows().resolve(layout);
      float[] probs = attention(qr, rows, true);
      return FloatTensor.wrap(
          keyColumns(probs, qr.length * heads, rows), qr.length, heads, rows.length);
    }
    throw new IllegalArgumentException("signal " + signal + " is not computed in LM prefill");
  }

  /**
   * Per-head probabilities (or logits) {@code [qr, heads, cache]} of layout rows {@code qr} over
   * every key of the layer.
   */
  private float[] attention(int[] layoutRows, int[] rows, boolean probabilities) {
    requireWholeCache();
    if (cacheKeys == null) {
      cacheKeys = cache.keys();
      cacheOrder = cache.tokenIndices();
    }
    int[] viewRows = new int[layoutRows.length];
    for (int i = 0; i < viewRows.length; i++) {
      viewRows[i] = rows[layoutRows[i]];
    }
    if (probabilities) {
      return AttentionRows.compute(
          q,
          viewRows,
          tokenIndices,
          cacheKeys,
          cacheOrder,
          spec.numHeads(),
          spec.numKvHeads(),
          spec.headDim(),
          (float) (1.0 / Math.sqrt(spec.headDim())),
          null);
    }
    return AttentionRows.logits(
        q,
        viewRows,
        tokenIndices,
        cacheKeys,
        cacheOrder,
        spec.numHeads(),
        spec.numKvHeads(),
        spec.headDim(),
        (float) (1.0 / Math.sqrt(spec.headDim())),
        null);
  }

  private void requireWholeCache() {
    if (cache.length() != tokenIndices.length) {
      throw new IllegalStateException(
          "attention signals need a cache of the layer's "
              + tokenIndices.length
              + " rows at layer "
              + layer
              + ", found "
              + cache.length()
              + " entries");
    }
  }

  private static float[] gatherRows(float[] x, int width, int[] rows) {
    float[] out = new float[rows.length * width];
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(x, rows[i] * width, out, i * width, width);
    }
    return out;
  }

  /**
   * The key columns of {@code rows} of a {@code [n, cache]} array: keys of rows dropped by earlier
   * operators at this hook are left out, without renormalising.
   */
  private float[] keyColumns(float[] x, int n, int[] rows) {
    int all = tokenIndices.length;
    if (rows.length == all) {
      return x;
    }
    float[] out = new float[n * rows.length];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < rows.length; j++) {
        out[i * rows.length + j] = x[i * all + rows[j]];
      }
    }
    return out;
  }
}
