package dev.tokenpress.spark;

import java.io.Serializable;
import java.util.Objects;

/**
 * Everything an executor needs to build its runtime, and the key of the per-executor cache.
 *
 * @param bundle model bundle location: a local or shared-filesystem directory, a name shipped with
 *     {@code --files}/{@code --archives}, or a Hadoop URI (hdfs://, s3a://) copied once per executor
 * @param planJson the compression plan as JSON
 * @param maxNewTokens generation limit per record
 * @param seed job seed; each record's sampling seed derives from it and the record id
 * @param maxPixels images with more pixels fail with a typed error before decoding
 * @param intraOpThreads ONNX Runtime intra-op threads per call; 0 = cores per task slot
 * @param kvDtype stored element type of unquantised KV tensors (float32, float16, bfloat16)
 */
public record ProcessorSpec(
    String bundle, String planJson, int maxNewTokens, long seed, long maxPixels, int intraOpThreads, DType kvDtype)
    implements Serializable {
  public ProcessorSpec {
    Objects.requireNonNull(bundle, "bundle");
    Objects.requireNonNull(planJson, "planJson");
    Objects.requireNonNull(kvDtype, "kvDtype");
    if (!kvDtype.isFloat()) {
      throw new IllegalArgumentException("kvDtype must be float32, float16 or bfloat16, got " + kvDtype.wireName());
    }
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
    }
    if (intraOpThreads < 0) {
      throw new IllegalArgumentException("intraOpThreads must be >= 0, got " + intraOpThreads);
    }
  }
}
