package dev.tokenpress.spark;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Element types of the tensor struct's {@code data} bytes, named as NumPy names them so that
 * {@code np.frombuffer(data, dtype).reshape(shape)} works on every stored tensor. Sub-byte
 * quantised values (4 and 2 bits) are stored packed in {@link #UINT8} with the unpacked width in
 * the row's {@code bits} column.
 */
public enum DType {
  FLOAT32("float32", 4),
  FLOAT16("float16", 2),
  /** bfloat16 has no NumPy dtype; read it as {@code uint16} and shift left by 16 into float32. */
  BFLOAT16("bfloat16", 2),
  INT8("int8", 1),
  UINT8("uint8", 1),
  INT32("int32", 4);

  private final String wireName;
  private final int bytes;

  DType(String wireName, int bytes) {
    this.wireName = wireName;
    this.bytes = bytes;
  }

  /** The name stored in the {@code dtype} field. */
  public String wireName() {
    return wireName;
  }

  /** Bytes per stored element. */
  public int bytes() {
    return bytes;
  }

  /** Whether the stored elements are floating point (readable without quantisation metadata). */
  public boolean isFloat() {
    return this == FLOAT32 || this == FLOAT16 || this == BFLOAT16;
  }

  /** Parses a stored {@code dtype} value; the error names the allowed values. */
  public static DType fromWireName(String name) {
    for (DType d : values()) {
      if (d.wireName.equals(name)) {
        return d;
      }
    }
    throw new IllegalArgumentException(
        "unknown dtype '" + name + "', allowed: "
            + Arrays.stream(values()).map(DType::wireName).collect(Collectors.joining(", ")));
  }
}
