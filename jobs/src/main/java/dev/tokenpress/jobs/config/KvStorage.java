package dev.tokenpress.jobs.config;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import dev.tokenpress.operators.kv.KvPrecision;

/**
 * Precision the runtime keeps KV entries in, unless the plan's operators re-encode them. The
 * integer precisions quantise the whole cache uniformly after prefill with the ZipCache codec (keys
 * per channel, values per token after channel scaling; generated tokens stay float16); they cannot
 * be combined with a plan that quantises the cache itself (zipvl).
 */
public enum KvStorage {
  FLOAT32(KvPrecision.FP32),
  FLOAT16(KvPrecision.FP16),
  INT8(KvPrecision.INT8),
  INT4(KvPrecision.INT4),
  INT2(KvPrecision.INT2);

  private final KvPrecision precision;

  KvStorage(KvPrecision precision) {
    this.precision = precision;
  }

  public KvPrecision precision() {
    return precision;
  }

  @JsonValue
  public String wire() {
    return Enums.wire(this);
  }

  @JsonCreator
  public static KvStorage of(String value) {
    return Enums.parse(KvStorage.class, value);
  }
}
