package dev.tokenpress.jobs.config;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import dev.tokenpress.spark.DType;

/** Element type of KV tensors the plan leaves unquantised. */
public enum KvStorage {
  FLOAT32(DType.FLOAT32),
  FLOAT16(DType.FLOAT16),
  BFLOAT16(DType.BFLOAT16);

  private final DType dtype;

  KvStorage(DType dtype) {
    this.dtype = dtype;
  }

  public DType dtype() {
    return dtype;
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
