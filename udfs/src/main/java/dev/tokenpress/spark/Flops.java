package dev.tokenpress.spark;

/** Analytic FLOPs of one record, split by phase. */
public record Flops(long vision, long prefill, long decode) {
  public long total() {
    return vision + prefill + decode;
  }
}
