package dev.tokenpress.runtime.checkpoint;

/** Element types of safetensors tensors that the runtime reads as float. */
public enum DType {
  F32(4),
  F16(2),
  BF16(2);

  private final int bytes;

  DType(int bytes) {
    this.bytes = bytes;
  }

  public int bytes() {
    return bytes;
  }

  /** Parses a safetensors dtype string; names the tensor in the error. */
  static DType parse(String s, String tensor) {
    switch (s) {
      case "F32":
        return F32;
      case "F16":
        return F16;
      case "BF16":
        return BF16;
      default:
        throw new IllegalArgumentException(
            "tensor " + tensor + " has dtype " + s + "; only F32, F16 and BF16 are supported");
    }
  }
}
