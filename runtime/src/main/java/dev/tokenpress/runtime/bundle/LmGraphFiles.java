package dev.tokenpress.runtime.bundle;

import java.util.List;

/**
 * The LM graph files of a bundle (paths relative to the bundle directory).
 *
 * @param pre per layer: hidden, position_ids -> q, k, v
 * @param post per layer: attn, hidden -> hidden_out
 * @param mid per layer i &lt; L-1: post of i fused with pre of i+1
 * @param tail post of the last layer fused with final norm + LM head
 * @param head final norm + LM head
 * @param attention generic prefill attention (q, k, v, bias -> attn)
 * @param fused the whole decoder with KV-cache inputs/outputs, or null if not built
 */
public record LmGraphFiles(
    List<String> pre,
    List<String> post,
    List<String> mid,
    String tail,
    String head,
    String attention,
    String fused) {
  public LmGraphFiles {
    pre = List.copyOf(pre);
    post = List.copyOf(post);
    mid = List.copyOf(mid);
  }
}
