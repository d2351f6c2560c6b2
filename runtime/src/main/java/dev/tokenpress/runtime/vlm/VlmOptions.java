package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.media.DecodeOptions;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.io.Serializable;

/**
 * How a {@link VlmRuntime} runs.
 *
 * @param session ONNX Runtime threads for every graph
 * @param decode image limits and alpha policy
 * @param maxNewTokens default generation limit (a request may override it)
 * @param kvPrecision precision of the KV cache entries
 * @param jobSeed combined with each record id into the operators' per-record seed
 * @param verify how much of the bundle to check when opening it
 * @param fused run the conventional single-graph vision tower and decoder instead of the split
 *     graphs (no operators; for comparisons and benchmarks)
 */
public record VlmOptions(
    SessionConfig session,
    DecodeOptions decode,
    int maxNewTokens,
    KvPrecision kvPrecision,
    long jobSeed,
    Bundle.Verify verify,
    boolean fused)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  public VlmOptions {
    if (session == null || decode == null || kvPrecision == null || verify == null) {
      throw new IllegalArgumentException(
          "session, decode, kvPrecision and verify must not be null");
    }
    if (maxNewTokens < 0) {
      throw new IllegalArgumentException("maxNewTokens must be >= 0, found " + maxNewTokens);
    }
  }

  /**
   * One ORT thread, default image limits, 64 new tokens, fp32 KV cache, split graphs, full
   * verification.
   */
  public static VlmOptions defaults() {
    return new VlmOptions(
        SessionConfig.singleThreaded(),
        DecodeOptions.DEFAULT,
        64,
        KvPrecision.FP32,
        0L,
        Bundle.Verify.FULL,
        false);
  }

  public VlmOptions withSession(SessionConfig s) {
    return new VlmOptions(s, decode, maxNewTokens, kvPrecision, jobSeed, verify, fused);
  }

  public VlmOptions withMaxNewTokens(int n) {
    return new VlmOptions(session, decode, n, kvPrecision, jobSeed, verify, fused);
  }

  public VlmOptions withFused(boolean f) {
    return new VlmOptions(session, decode, maxNewTokens, kvPrecision, jobSeed, verify, f);
  }

  public VlmOptions withKvPrecision(KvPrecision p) {
    return new VlmOptions(session, decode, maxNewTokens, p, jobSeed, verify, fused);
  }

  public VlmOptions withDecode(DecodeOptions d) {
    return new VlmOptions(session, d, maxNewTokens, kvPrecision, jobSeed, verify, fused);
  }
}
