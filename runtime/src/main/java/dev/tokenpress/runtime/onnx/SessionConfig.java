package dev.tokenpress.runtime.onnx;

/**
 * ONNX Runtime session settings shared by every graph of a runtime.
 *
 * @param intraOpThreads threads per ORT call; keep {@code intraOp x concurrent tasks <= cores} (0 =
 *     ORT's default of one per physical core)
 * @param allowSpinning whether idle intra-op threads spin (lower latency, burns CPU)
 */
public record SessionConfig(int intraOpThreads, boolean allowSpinning) {
  public SessionConfig {
    if (intraOpThreads < 0) {
      throw new IllegalArgumentException("intraOpThreads must be >= 0, found " + intraOpThreads);
    }
  }

  /**
   * One intra-op thread, no spinning: the right setting for tiny models and many concurrent tasks.
   */
  public static SessionConfig singleThreaded() {
    return new SessionConfig(1, false);
  }
}
