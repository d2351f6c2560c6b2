package dev.tokenpress.runtime.lm;

import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.onnx.GraphSession;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * The split LM runtime over a bundle: one session per graph it calls (pre of layer 0, the per-layer
 * "post + next pre" graphs, the tail, and prefill attention), the Java embedding table, and {@link
 * #generate}, which owns the token stream and the KV cache (see {@link SplitGeneration} for the
 * calling sequence).
 *
 * <p>Thread-safe: sessions are shared, every generation has its own buffers and cache. Open one per
 * bundle per JVM.
 */
public final class LlamaRuntime implements AutoCloseable {
  private final LmSpec spec;
  private final TokenEmbedding embedding;
  private final GraphSession pre0;
  private final GraphSession[] mid;
  private final GraphSession tail;
  private final GraphSession attention;

  private LlamaRuntime(
      LmSpec spec,
      TokenEmbedding embedding,
      GraphSession pre0,
      GraphSession[] mid,
      GraphSession tail,
      GraphSession attention) {
    this.spec = spec;
    this.embedding = embedding;
    this.pre0 = pre0;
    this.mid = mid;
    this.tail = tail;
    this.attention = attention;
  }

  /** Loads the sessions the split path calls; the bundle was verified when opened. */
  public static LlamaRuntime open(Bundle bundle, SessionConfig config) {
    LmSpec spec = bundle.lm();
    List<AutoCloseable> opened = new ArrayList<>();
    try {
      TokenEmbedding emb =
          track(
              opened, new TokenEmbedding(bundle.resolve(spec.embedding()), spec.embeddingTensor()));
      if (emb.dim() != spec.hiddenSize() || emb.vocabSize() != spec.vocabSize()) {
        throw new IllegalArgumentException(
            "embedding table is "
                + emb.vocabSize()
                + "x"
                + emb.dim()
                + ", bundle says "
                + spec.vocabSize()
                + "x"
                + spec.hiddenSize());
      }
      GraphSession pre0 =
          track(opened, GraphSession.open(bundle.resolve(spec.graphs().pre().get(0)), config));
      GraphSession[] mid = new GraphSession[spec.numLayers() - 1];
      for (int l = 0; l < mid.length; l++) {
        mid[l] =
            track(opened, GraphSession.open(bundle.resolve(spec.graphs().mid().get(l)), config));
      }
      GraphSession tail =
          track(opened, GraphSession.open(bundle.resolve(spec.graphs().tail()), config));
      GraphSession att =
          track(opened, GraphSession.open(bundle.resolve(spec.graphs().attention()), config));
      return new LlamaRuntime(spec, emb, pre0, mid, tail, att);
    } catch (RuntimeException e) {
      for (AutoCloseable c : opened) {
        try {
          c.close();
        } catch (Exception suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
  }

  private static <T extends AutoCloseable> T track(List<AutoCloseable> opened, T c) {
    opened.add(c);
    return c;
  }

  public LmSpec spec() {
    return spec;
  }

  public TokenEmbedding embedding() {
    return embedding;
  }

  GraphSession pre0() {
    return pre0;
  }

  GraphSession mid(int layer) {
    return mid[layer];
  }

  GraphSession tail() {
    return tail;
  }

  GraphSession attention() {
    return attention;
  }

  /** Greedy generation with no operator. */
  public GenerationResult generate(LmRequest request) {
    return generate(request, null);
  }

  /**
   * Greedy generation with a plan's operators acting at the LM hooks ({@code hooks} may be null).
   * Without a layout set on {@code hooks}, the request's rows are all text rows.
   */
  public GenerationResult generate(LmRequest request, HookRunner hooks) {
    try (SplitGeneration g = new SplitGeneration(this, request, hooks)) {
      return g.run();
    }
  }

  /**
   * {@link #generate(LmRequest, HookRunner)} with the plan's {@code BRANCH} sequences ({@link
   * HookRunner#branches()}, built into requests by the caller, in that order): each runs through
   * the LM with its own KV cache in step with the main sequence, and the {@code LOGITS} operators
   * read their logits. The result's cache is the main sequence's; FLOPs and timings include the
   * branches.
   */
  public GenerationResult generate(LmRequest request, HookRunner hooks, List<LmRequest> branches) {
    try (SplitGeneration g = new SplitGeneration(this, request, hooks, branches)) {
      return g.run();
    }
  }

  /**
   * Prefills {@code prefix}'s rows with no operator and keeps them for continuations ({@link
   * #generate(LmPrefix, LmRequest)}); the request's limits are not used.
   */
  public LmPrefix prefillPrefix(LmRequest prefix) {
    try (SplitGeneration g = new SplitGeneration(this, prefix, null)) {
      return g.prefillPrefix();
    }
  }

  /**
   * Greedy generation with no operator of the sequence {@code prefix} + {@code rest}: {@code
   * rest}'s rows (token indices from {@link LmPrefix#nextTokenIndex()} on) are prefilled as one
   * chunk against the prefix's keys and values, then decoding runs as in {@link
   * #generate(LmRequest)}. Gives what {@link #generate(LmRequest)} gives on the whole sequence up
   * to float rounding (the prefix rows attend over fewer masked keys); the FLOPs are those of the
   * whole sequence's prefill, the prefill time is that of {@code rest} alone.
   */
  public GenerationResult generate(LmPrefix prefix, LmRequest rest) {
    if (rest.tokenIndicesShared()[0] < prefix.nextTokenIndex()) {
      throw new IllegalArgumentException(
          "the continuation starts at token index "
              + rest.tokenIndicesShared()[0]
              + ", the prefix ends before "
              + prefix.nextTokenIndex());
    }
    try (SplitGeneration g = new SplitGeneration(this, prefix, rest)) {
      return g.run();
    }
  }

  @Override
  public void close() {
    for (GraphSession s : mid) {
      s.close();
    }
    pre0.close();
    tail.close();
    attention.close();
    embedding.close();
  }
}
