package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.runtime.media.RgbImage;

/**
 * One image + prompt to answer. The image is given encoded ({@link #ofBytes}, decoded inside the
 * runtime with its limits) or already decoded ({@link #ofImage}, e.g. a video frame). Immutable;
 * the byte array is copied.
 */
public final class VlmRequest {
  private final String id;
  private final byte[] imageBytes;
  private final RgbImage image;
  private final String prompt;
  private final CompressionPlan plan;
  private final int maxNewTokens;
  private final boolean recordLogits;
  private final boolean ignoreStop;

  private VlmRequest(
      String id,
      byte[] imageBytes,
      RgbImage image,
      String prompt,
      CompressionPlan plan,
      int maxNewTokens,
      boolean recordLogits,
      boolean ignoreStop) {
    if (id == null) {
      throw new IllegalArgumentException("request id must not be null (it seeds the operators)");
    }
    if (prompt == null) {
      throw new IllegalArgumentException("prompt must not be null");
    }
    if (plan == null) {
      throw new IllegalArgumentException("plan must not be null (use CompressionPlan.empty())");
    }
    this.id = id;
    this.imageBytes = imageBytes;
    this.image = image;
    this.prompt = prompt;
    this.plan = plan;
    this.maxNewTokens = maxNewTokens;
    this.recordLogits = recordLogits;
    this.ignoreStop = ignoreStop;
  }

  /** An encoded image (PNG, JPEG, ...); decoding errors surface as {@code MediaDecodeException}. */
  public static VlmRequest ofBytes(String id, byte[] imageBytes, String prompt) {
    return new VlmRequest(
        id,
        imageBytes == null ? null : imageBytes.clone(),
        null,
        prompt,
        CompressionPlan.empty(),
        -1,
        false,
        false);
  }

  /** An already decoded image. */
  public static VlmRequest ofImage(String id, RgbImage image, String prompt) {
    if (image == null) {
      throw new IllegalArgumentException("image must not be null");
    }
    return new VlmRequest(id, null, image, prompt, CompressionPlan.empty(), -1, false, false);
  }

  public VlmRequest withPlan(CompressionPlan p) {
    return new VlmRequest(id, imageBytes, image, prompt, p, maxNewTokens, recordLogits, ignoreStop);
  }

  /** Overrides {@link VlmOptions#maxNewTokens()} for this request. */
  public VlmRequest withMaxNewTokens(int n) {
    if (n < 0) {
      throw new IllegalArgumentException("maxNewTokens must be >= 0, found " + n);
    }
    return new VlmRequest(id, imageBytes, image, prompt, plan, n, recordLogits, ignoreStop);
  }

  /** Keep the logits of every step in the result (parity tests). */
  public VlmRequest withRecordLogits(boolean r) {
    return new VlmRequest(id, imageBytes, image, prompt, plan, maxNewTokens, r, ignoreStop);
  }

  /** Generate exactly {@code maxNewTokens} tokens, ignoring stop tokens (benchmarks). */
  public VlmRequest withoutStopTokens() {
    return new VlmRequest(id, imageBytes, image, prompt, plan, maxNewTokens, recordLogits, true);
  }

  public boolean ignoresStopTokens() {
    return ignoreStop;
  }

  public String id() {
    return id;
  }

  byte[] imageBytes() {
    return imageBytes;
  }

  RgbImage image() {
    return image;
  }

  public String prompt() {
    return prompt;
  }

  public CompressionPlan plan() {
    return plan;
  }

  /** -1: the runtime's default. */
  public int maxNewTokens() {
    return maxNewTokens;
  }

  public boolean recordLogits() {
    return recordLogits;
  }

  @Override
  public String toString() {
    return "VlmRequest(" + id + ", plan=" + plan.operators().size() + " operators)";
  }
}
