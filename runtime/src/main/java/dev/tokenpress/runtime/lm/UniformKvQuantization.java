package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;

/**
 * An integer {@code kv.dtype} (int8, int4, int2): uniform ZipCache quantisation of the whole cache
 * without any operator. The prompt's entries are appended in float16 and, after prefill (after the
 * plan's {@code KV_FINALIZE} operators), each layer is re-encoded as one ZipCache group at that
 * precision (keys per channel, values per token after channel scaling); decode reads the codes in
 * place. Generated tokens stay float16.
 */
final class UniformKvQuantization {
  private UniformKvQuantization() {}

  /** The cache's append codec for {@code precision}: float16 for the integer precisions. */
  static KvCodec appendCodec(KvPrecision precision) {
    return KvCodec.of(precision.quantized() ? KvPrecision.FP16 : precision);
  }

  /** Quantises every layer's entries at {@code precision} if it is an integer precision. */
  static void afterPrefill(KvCache cache, KvPrecision precision) {
    if (!precision.quantized()) {
      return;
    }
    KvCodec codec = KvCodec.of(precision);
    for (int l = 0; l < cache.numLayers(); l++) {
      LayerKvCache lc = cache.layer(l);
      if (lc.length() > 0) {
        lc.recode(0, lc.length(), codec);
      }
    }
  }
}
