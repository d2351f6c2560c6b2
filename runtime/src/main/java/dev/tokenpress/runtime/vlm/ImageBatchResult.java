package dev.tokenpress.runtime.vlm;

import java.util.List;

/**
 * What {@link VlmRuntime#generateImage} did for one image: an outcome per request, in request
 * order, and how much work the requests shared.
 *
 * @param outcomes per request, its result or the exception its generation threw
 * @param visionPasses vision tower passes run: one shared by every plan without a ViT operator, one
 *     per plan acting inside the ViT whose requests can adopt it ({@code
 *     HookRunner#visionShareable}), one per request of any other plan acting there
 * @param prefixPrefills LM prefix prefills run for groups of requests sharing a prefix
 * @param prefixedRequests requests that continued a shared prefix instead of prefilling their whole
 *     sequence
 */
public record ImageBatchResult(
    List<Outcome> outcomes, int visionPasses, int prefixPrefills, int prefixedRequests) {

  /** Copies the outcome list. */
  public ImageBatchResult {
    outcomes = List.copyOf(outcomes);
  }

  /**
   * One request's outcome: {@code result} or {@code error}, never both.
   *
   * @param ms the request's wall time: its own work plus its share of the shared work (see {@link
   *     VlmResult#timingsMs()}); for a failure, the time until it failed plus its shares
   */
  public record Outcome(VlmResult result, RuntimeException error, double ms) {
    /** Checks that exactly one of result and error is set. */
    public Outcome {
      if ((result == null) == (error == null)) {
        throw new IllegalArgumentException(
            "an outcome has a result or an error, not both or neither");
      }
    }
  }
}
