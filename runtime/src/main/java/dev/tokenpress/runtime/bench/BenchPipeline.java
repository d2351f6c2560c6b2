package dev.tokenpress.runtime.bench;

import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.lm.FusedLlamaRuntime;
import dev.tokenpress.runtime.lm.GenerationResult;
import dev.tokenpress.runtime.lm.LlamaRuntime;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.lm.TokenEmbedding;
import dev.tokenpress.runtime.media.DecodeOptions;
import dev.tokenpress.runtime.media.ImageDecoder;
import dev.tokenpress.runtime.media.ImagePreprocessor;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.media.RgbImage;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.text.EncodedPrompt;
import dev.tokenpress.runtime.text.PromptEncoder;
import dev.tokenpress.runtime.vision.FusedVisionEncoder;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionEncoder;
import dev.tokenpress.runtime.vision.VisionOutput;
import java.util.ArrayList;
import java.util.List;

/**
 * The VLM path with the empty plan, on the split graphs or on the fused ones, generating exactly
 * the requested number of tokens (no stop token) so that both variants do the same work:
 * decode → preprocess → vision tower + projector → LM input (prompt embeddings with the visual
 * tokens spliced in, sequential positions) → prefill → greedy decode. It is the path
 * {@code VlmRuntime} runs for an empty plan, minus stop tokens; {@code BenchPipelineTest} checks
 * that both give the same tokens.
 */
final class BenchPipeline implements AutoCloseable {
  /** Stage names, in the order of {@link Run#stageMs()}. */
  static final String[] STAGES = {"image_decode", "preprocess", "vision", "embed", "prefill", "decode", "total"};

  private final boolean fused;
  private final ImageDecoder decoder = new ImageDecoder(DecodeOptions.DEFAULT);
  private final ImagePreprocessor preprocessor;
  private final PromptEncoder prompts;
  private final int imageTokens;
  private final VisionEncoder vision;
  private final FusedVisionEncoder fusedVision;
  private final LlamaRuntime lm;
  private final FusedLlamaRuntime fusedLm;

  /**
   * One generation's outputs and wall times.
   *
   * @param tokens generated ids
   * @param stepLogits logits before each choice, or null when not recorded
   * @param stageMs wall time per {@link #STAGES} entry
   * @param decodeSteps decode forward passes (tokens after the first)
   * @param cpuMs CPU time of the calling thread over the whole run (ORT runs single-threaded
   *     graphs on the caller's thread), less sensitive to machine load than wall time
   * @param decodeOrtMs wall time of the decode steps spent in ORT calls (split only, else NaN)
   * @param decodeAttentionMs wall time of the decode steps spent in Java attention (split only)
   */
  record Run(int[] tokens, List<float[]> stepLogits, double[] stageMs, int decodeSteps, double cpuMs,
      double decodeOrtMs, double decodeAttentionMs) {}

  private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();

  private BenchPipeline(Bundle bundle, SessionConfig session, boolean fused) {
    VisionBundle.Spec spec = VisionBundle.spec(bundle);
    this.fused = fused;
    this.preprocessor = new ImagePreprocessor(spec.preprocessor());
    this.imageTokens = spec.config().numImageTokens();
    List<AutoCloseable> opened = new ArrayList<>();
    try {
      this.prompts = track(opened, PromptEncoder.load(bundle.resolve("source_config.json"),
          bundle.resolve("tokenizer.json"), bundle.resolve("tokenizer_config.json")));
      this.vision = fused ? null : track(opened, VisionBundle.openSplit(bundle, session));
      this.fusedVision = fused ? track(opened, VisionBundle.openFused(bundle, session)) : null;
      this.lm = fused ? null : track(opened, LlamaRuntime.open(bundle, session));
      this.fusedLm = fused ? track(opened, FusedLlamaRuntime.open(bundle, session)) : null;
    } catch (RuntimeException e) {
      closeAll(opened, e);
      throw e;
    }
  }

  /** The split runtime's graphs (per-layer vision and LM, Java decode attention). */
  static BenchPipeline split(Bundle bundle, SessionConfig session) {
    return new BenchPipeline(bundle, session, false);
  }

  /** The fused graphs (bundle built with {@code --fused}). */
  static BenchPipeline fused(Bundle bundle, SessionConfig session) {
    return new BenchPipeline(bundle, session, true);
  }

  private static <T extends AutoCloseable> T track(List<AutoCloseable> opened, T c) {
    opened.add(c);
    return c;
  }

  /** Answers {@code question} about the encoded image with exactly {@code newTokens} tokens. */
  Run run(byte[] imageBytes, String question, int newTokens, boolean recordLogits) {
    long c0 = THREADS.getCurrentThreadCpuTime();
    long t0 = System.nanoTime();
    RgbImage image = decoder.decode(imageBytes);
    long t1 = System.nanoTime();
    PixelValues pixels = preprocessor.preprocess(image);
    long t2 = System.nanoTime();
    VisionOutput vis = fused ? fusedVision.encode(pixels) : vision.encode(pixels);
    long t3 = System.nanoTime();
    EncodedPrompt prompt = prompts.encode(question, imageTokens);
    TokenEmbedding emb = fused ? fusedLm.embedding() : lm.embedding();
    int d = emb.dim();
    int[] prefix = prompt.prefix();
    int[] suffix = prompt.suffix();
    int rows = prefix.length + vis.tokens() + suffix.length;
    float[] embeds = new float[rows * d];
    int r = 0;
    for (int id : prefix) {
      emb.lookup(id, embeds, d * r++);
    }
    System.arraycopy(vis.features(), 0, embeds, d * r, vis.tokens() * d);
    r += vis.tokens();
    for (int id : suffix) {
      emb.lookup(id, embeds, d * r++);
    }
    LmRequest req = new LmRequest(embeds, LmRequest.sequentialPositions(rows), new int[0], newTokens, KvPrecision.FP32,
        recordLogits);
    long t4 = System.nanoTime();
    GenerationResult gen = fused ? fusedLm.generate(req) : lm.generate(req);
    long t5 = System.nanoTime();
    long c5 = THREADS.getCurrentThreadCpuTime();
    double[] ms = {
        (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6, (t4 - t3) / 1e6, gen.timings().prefillMs(),
        gen.timings().decodeMs(), (t5 - t0) / 1e6};
    double ort = fused ? Double.NaN : gen.timings().decodeOrtNanos() / 1e6;
    double att = fused ? Double.NaN : gen.timings().decodeAttentionNanos() / 1e6;
    return new Run(gen.tokenIds(), gen.stepLogits(), ms, gen.timings().decodeSteps(), (c5 - c0) / 1e6, ort, att);
  }

  @Override
  public void close() {
    List<AutoCloseable> all = new ArrayList<>();
    for (AutoCloseable c : new AutoCloseable[] {prompts, vision, fusedVision, lm, fusedLm}) {
      if (c != null) {
        all.add(c);
      }
    }
    closeAll(all, null);
  }

  private static void closeAll(List<AutoCloseable> opened, RuntimeException primary) {
    RuntimeException failure = primary;
    for (int i = opened.size() - 1; i >= 0; i--) {
      try {
        opened.get(i).close();
      } catch (Exception e) {
        if (failure == null) {
          failure = new IllegalStateException("cannot close the benchmark pipeline cleanly", e);
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (primary == null && failure != null) {
      throw failure;
    }
  }
}
