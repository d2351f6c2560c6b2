package dev.tokenpress.spark;

import dev.tokenpress.operators.kv.KvPrecision;
import java.io.Serializable;
import java.util.Objects;

/**
 * Everything an executor needs to load its model runtime, and the key of the per-executor cache:
 * the model and its runtime settings, not the compression plan (plans come with each record, see
 * {@link RecordProcessor#process}), so one executor loads a model once however many plans it runs.
 *
 * @param bundle model bundle location: a local or shared-filesystem directory, a name shipped with
 *     {@code --files}/{@code --archives}, or a Hadoop URI (hdfs://, s3a://) copied once per
 *     executor
 * @param maxNewTokens generation limit per record
 * @param seed job seed; each record's sampling seed derives from it and the record id
 * @param maxPixels images with more pixels fail with a typed error before decoding
 * @param intraOpThreads ONNX Runtime intra-op threads per call; 0 = cores per task slot
 * @param kvPrecision precision the runtime keeps KV entries in unless the plan's operators
 *     re-encode them; INT8/INT4/INT2 quantise the whole cache uniformly after prefill
 */
public record ProcessorSpec(
    String bundle,
    int maxNewTokens,
    long seed,
    long maxPixels,
    int intraOpThreads,
    KvPrecision kvPrecision)
    implements Serializable {
  public ProcessorSpec {
    Objects.requireNonNull(bundle, "bundle");
    Objects.requireNonNull(kvPrecision, "kvPrecision");
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
    }
    if (intraOpThreads < 0) {
      throw new IllegalArgumentException("intraOpThreads must be >= 0, got " + intraOpThreads);
    }
  }
}
