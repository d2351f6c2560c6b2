package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.api.BranchInput;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleException;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.lm.FusedLlamaRuntime;
import dev.tokenpress.runtime.lm.GenerationResult;
import dev.tokenpress.runtime.lm.LlamaRuntime;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.lm.TokenEmbedding;
import dev.tokenpress.runtime.media.ImageDecoder;
import dev.tokenpress.runtime.media.ImagePreprocessor;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.media.RgbImage;
import dev.tokenpress.runtime.text.EncodedPrompt;
import dev.tokenpress.runtime.text.PromptEncoder;
import dev.tokenpress.runtime.vision.FusedVisionEncoder;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionConfig;
import dev.tokenpress.runtime.vision.VisionEncoder;
import dev.tokenpress.runtime.vision.VisionOutput;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A LLaVA-family VLM over a model bundle, end to end:
 *
 * <pre>
 * image bytes → decode (RGB8) → preprocess (CLIP) → vision tower + projector (split graphs,
 *   signals computed only when an operator asks) [VISION_LAYER operators] → [VISUAL_TOKENS operators]
 *   → LM sequence: text embeddings of the prompt with the kept (possibly merged) visual tokens at
 *     the image placeholder, explicit position ids (SequenceLayout) → LM prefill [PREFILL, PREFILL_AFTER]
 *   → [KV_FINALIZE] → greedy decode [DECODE, LOGITS, KV_APPEND] → answer, token ids, counts,
 *     kept maps, provenance of every visual token, FLOPs, timings, KV cache
 * </pre>
 *
 * <p>Every operator of a plan is called through one {@link HookRunner} per record, at every hook it
 * declares. The number of visual tokens reaching the LM varies per record.
 *
 * <p>Thread-safe: one instance per bundle per JVM serves concurrent requests (sessions are shared;
 * every request has its own buffers and cache). Close once.
 */
public final class VlmRuntime implements AutoCloseable {
  private final Bundle bundle;
  private final VlmOptions options;
  private final VisionConfig visionConfig;
  private final ModelShape shape;
  private final ImageDecoder decoder;
  private final ImagePreprocessor preprocessor;
  private final PromptEncoder prompts;
  private final VisionEncoder vision;
  private final FusedVisionEncoder fusedVision;
  private final LlamaRuntime lm;
  private final FusedLlamaRuntime fusedLm;
  private final int[] stopTokens;
  private final Map<CompressionPlan, PlanExecution> plans = new ConcurrentHashMap<>();

  private VlmRuntime(
      Bundle bundle,
      VlmOptions options,
      VisionBundle.Spec spec,
      PromptEncoder prompts,
      VisionEncoder vision,
      FusedVisionEncoder fusedVision,
      LlamaRuntime lm,
      FusedLlamaRuntime fusedLm) {
    this.bundle = bundle;
    this.options = options;
    this.visionConfig = spec.config();
    this.decoder = new ImageDecoder(options.decode());
    this.preprocessor = new ImagePreprocessor(spec.preprocessor());
    this.prompts = prompts;
    this.vision = vision;
    this.fusedVision = fusedVision;
    this.lm = lm;
    this.fusedLm = fusedLm;
    LmSpec l = bundle.lm();
    this.stopTokens = l.eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
    this.shape = withSinkDims(shape(visionConfig, l), bundle);
  }

  /**
   * The model as operators see it, read from the bundle's manifest alone (no session is created):
   * for checking a plan on a driver ({@link #checkPlan}).
   */
  public static ModelShape shape(Bundle bundle) {
    return withSinkDims(shape(VisionBundle.spec(bundle).config(), bundle.lm()), bundle);
  }

  /** The VAR sink dimensions stored in the manifest ({@code analysis.var.sink_dims}), if any. */
  private static ModelShape withSinkDims(ModelShape shape, Bundle bundle) {
    com.fasterxml.jackson.databind.JsonNode var = bundle.manifest().analysis("var");
    if (var == null || !var.has("sink_dims")) {
      return shape;
    }
    List<Integer> dims = new ArrayList<>();
    for (com.fasterxml.jackson.databind.JsonNode d : var.get("sink_dims")) {
      dims.add(d.intValue());
    }
    return shape.withLmSinkDims(dims);
  }

  private static ModelShape shape(VisionConfig vision, LmSpec lm) {
    int layersRun = vision.layersRun();
    if (layersRun < 1) {
      throw new BundleException(
          "vision_feature_layer "
              + vision.featureLayer()
              + " selects the embeddings; "
              + "operators need at least one ViT layer");
    }
    return new ModelShape(
        vision.numLayers(),
        vision.numHeads(),
        vision.gridSize(),
        vision.gridSize(),
        true,
        layersRun - 1,
        lm.numLayers(),
        lm.numHeads(),
        lm.numKvHeads(),
        lm.hiddenSize());
  }

  /**
   * Checks {@code plan} against a model of {@code shape} exactly as {@link #validate} does on an
   * open runtime, without one: a driver calls it with {@link #shape(Bundle)} before it starts any
   * work.
   *
   * @throws IllegalArgumentException prefixed with {@code plan[i]}, naming the field, the value and
   *     what this model allows
   */
  public static void checkPlan(CompressionPlan plan, ModelShape shape) {
    new PlanExecution(plan, shape);
  }

  /** Opens a bundle directory (verified per {@link VlmOptions#verify()}) and loads its sessions. */
  public static VlmRuntime open(Path bundleDir, VlmOptions options) {
    Bundle bundle = Bundle.open(bundleDir, options.verify());
    VisionBundle.Spec spec = VisionBundle.spec(bundle);
    List<AutoCloseable> opened = new ArrayList<>();
    try {
      PromptEncoder prompts =
          track(
              opened,
              PromptEncoder.load(
                  bundle.resolve("source_config.json"),
                  bundle.resolve("tokenizer.json"),
                  bundle.resolve("tokenizer_config.json")));
      VisionEncoder vision = null;
      FusedVisionEncoder fusedVision = null;
      LlamaRuntime lm = null;
      FusedLlamaRuntime fusedLm = null;
      if (options.fused()) {
        fusedVision = track(opened, VisionBundle.openFused(bundle, options.session()));
        fusedLm = track(opened, FusedLlamaRuntime.open(bundle, options.session()));
      } else {
        vision = track(opened, VisionBundle.openSplit(bundle, options.session()));
        lm = track(opened, LlamaRuntime.open(bundle, options.session()));
      }
      if (spec.config().textHiddenSize() != bundle.lm().hiddenSize()) {
        throw new BundleException(
            "projector outputs "
                + spec.config().textHiddenSize()
                + " features, the LM takes "
                + bundle.lm().hiddenSize());
      }
      return new VlmRuntime(bundle, options, spec, prompts, vision, fusedVision, lm, fusedLm);
    } catch (RuntimeException e) {
      for (int i = opened.size() - 1; i >= 0; i--) {
        try {
          opened.get(i).close();
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

  public Bundle bundle() {
    return bundle;
  }

  /** The model as operators see it (for plan validation). */
  public ModelShape shape() {
    return shape;
  }

  public PromptEncoder prompts() {
    return prompts;
  }

  public ImageDecoder decoder() {
    return decoder;
  }

  public ImagePreprocessor preprocessor() {
    return preprocessor;
  }

  /**
   * Validates {@code plan} against this model (operators' field ranges, signals this bundle can
   * compute, hooks this runtime runs); throws {@link IllegalArgumentException} naming the problem.
   */
  public void validate(CompressionPlan plan) {
    prepared(plan);
  }

  private PlanExecution prepared(CompressionPlan plan) {
    PlanExecution p = plans.get(plan);
    if (p == null) {
      p = new PlanExecution(plan, shape);
      if (plans.size() < 64) {
        plans.put(plan, p);
      }
    }
    return p;
  }

  /**
   * Answers one request; typed errors for bad images ({@code MediaDecodeException}) and prompts.
   */
  public VlmResult generate(VlmRequest request) {
    return generate(request, null);
  }

  /**
   * As {@link #generate(VlmRequest)}, with {@code probe}, an operator outside any plan (a
   * diagnostic such as {@code tokenpress var sinks}, which reads the LM's hidden states), called
   * after the plan's operators at its hooks; null for none.
   */
  public VlmResult generate(VlmRequest request, dev.tokenpress.operators.api.TokenOperator probe) {
    long t0 = System.nanoTime();
    PlanExecution plan = prepared(request.plan());
    if (options.fused() && !plan.isEmpty()) {
      throw new IllegalArgumentException(
          "the fused runtime runs no operators; use the split runtime for plan "
              + request.plan().toJson());
    }
    RgbImage image =
        request.image() != null ? request.image() : decoder.decode(request.imageBytes());
    long t1 = System.nanoTime();
    PixelValues pixels = preprocessor.preprocess(image);
    long t2 = System.nanoTime();

    long recordSeed = Seeds.recordSeed(request.id(), options.jobSeed());
    HookRunner rec = probe == null ? plan.record(recordSeed) : plan.record(recordSeed, probe);
    VisionOutput vis = options.fused() ? fusedVision.encode(pixels) : vision.encode(pixels, rec);
    long t3 = System.nanoTime();
    Sequence seq = sequence(request, rec, vis);
    long t4 = System.nanoTime();
    List<LmRequest> branches = rec == null ? List.of() : branchRequests(rec, seq);
    GenerationResult gen =
        options.fused()
            ? fusedLm.generate(seq.lm())
            : branches.isEmpty()
                ? lm.generate(seq.lm(), rec)
                : lm.generate(seq.lm(), rec, branches);
    long t5 = System.nanoTime();

    Map<String, Double> ms = new LinkedHashMap<>();
    ms.put("image_decode", (t1 - t0) / 1e6);
    ms.put("preprocess", (t2 - t1) / 1e6);
    ms.put("vision", (t3 - t2) / 1e6);
    ms.put("operators", (t4 - t3) / 1e6);
    ms.put("prefill", gen.timings().prefillMs());
    ms.put("decode", gen.timings().decodeMs());
    ms.put("decode_attention", gen.timings().decodeAttentionNanos() / 1e6);
    ms.put("total", (System.nanoTime() - t0) / 1e6);
    return result(seq, rec, vis, gen, ms, recordSeed);
  }

  /**
   * Every request of {@code requests} (one image, any prompts and plans) with the work they have in
   * common done once: {@link ImageGeneration} describes what is shared and when. Each outcome is
   * what {@link #generate(VlmRequest)} gives for its request (answers alike, logits within float
   * rounding), or the exception it throws.
   *
   * @throws IllegalArgumentException when the requests do not all carry the same image
   */
  public ImageBatchResult generateImage(List<VlmRequest> requests) {
    return new ImageGeneration(this, requests).run();
  }

  // ---------------------------------------------------------------- stages, shared with
  // ImageGeneration

  VlmOptions options() {
    return options;
  }

  PlanExecution plan(CompressionPlan plan) {
    return prepared(plan);
  }

  VisionEncoder vision() {
    return vision;
  }

  LlamaRuntime lm() {
    return lm;
  }

  int numImageTokens() {
    return visionConfig.numImageTokens();
  }

  /**
   * The LM sequence of one record: the prompt's text embeddings with the visual tokens the plan's
   * {@code VISUAL_TOKENS} operators kept at the image placeholder, in the layout's order.
   *
   * @param prompt the encoded prompt, {@code prefix + n visual tokens + suffix}
   * @param lm the LM request of the whole sequence
   * @param prefixRows how many leading rows come before the first suffix row (prompt prefix + kept
   *     visual rows)
   */
  record Sequence(
      EncodedPrompt prompt,
      int n,
      SequenceLayout layout,
      TokenProvenance provenance,
      TokenEmbedding emb,
      LmRequest lm,
      int prefixRows) {}

  Sequence sequence(VlmRequest request, HookRunner rec, VisionOutput vis) {
    int n = visionConfig.numImageTokens();
    EncodedPrompt prompt = prompts.encode(request.prompt(), n);
    int[] prefix = prompt.prefix();
    int[] suffix = prompt.suffix();
    float[] visual;
    SequenceLayout layout;
    TokenProvenance provenance;
    if (rec == null) {
      visual = vis.features();
      layout = SequenceLayout.prefill(prefix.length, vis.tokens(), suffix.length, List.of());
      provenance = TokenProvenance.identity(vis.tokens());
    } else {
      visual =
          rec.visualTokens(vis.features(), vis.tokens(), vis.dim(), prefix.length, suffix.length);
      layout = rec.layout();
      provenance = rec.visualProvenance();
    }
    TokenEmbedding emb = options.fused() ? fusedLm.embedding() : lm.embedding();
    int d = emb.dim();
    float[] embeds = new float[layout.length() * d];
    int v = 0;
    int prefixRows = 0;
    for (int r = 0; r < layout.length(); r++) {
      int orig = layout.originalIndex(r);
      if (orig < prefix.length + n) {
        prefixRows = r + 1;
      }
      if (layout.isVisual(r)) {
        System.arraycopy(visual, v++ * d, embeds, r * d, d);
      } else {
        int id = orig < prefix.length ? prefix[orig] : suffix[orig - prefix.length - n];
        emb.lookup(id, embeds, r * d);
      }
    }
    int maxNew = request.maxNewTokens() >= 0 ? request.maxNewTokens() : options.maxNewTokens();
    LmRequest lmRequest =
        new LmRequest(
            embeds,
            layout.positionIds(),
            layout.originalIndices(),
            request.ignoresStopTokens() ? new int[0] : stopTokens,
            maxNew,
            options.kvPrecision(),
            request.recordLogits());
    return new Sequence(prompt, n, layout, provenance, emb, lmRequest, prefixRows);
  }

  /**
   * The result of one record from its stages ({@code ms}: wall time per stage, see {@link
   * VlmResult#timingsMs()}).
   */
  VlmResult result(
      Sequence seq,
      HookRunner rec,
      VisionOutput vis,
      GenerationResult gen,
      Map<String, Double> ms,
      long recordSeed) {
    int[] ids = gen.tokenIds();
    String answer = prompts.tokenizer().decode(ids);
    Map<String, Long> flops = new LinkedHashMap<>();
    flops.put("vision", vis.flops());
    flops.put("prefill", gen.flops().prefill());
    flops.put("decode", gen.flops().decode());
    flops.put("total", vis.flops() + gen.flops().total());
    return new VlmResult(
            answer,
            ids,
            gen.stopReason(),
            seq.prompt().ids(),
            seq.n(),
            seq.layout().visualCount(),
            seq.layout(),
            rec == null ? List.of() : rec.keptMaps(),
            seq.provenance(),
            flops,
            ms,
            gen.kvCache(),
            gen.stepLogits(),
            recordSeed)
        .withOperatorStats(rec == null ? List.of() : rec.stats());
  }

  /**
   * The LM requests of the plan's {@code BRANCH} sequences: {@code prefix + branch visual rows +
   * suffix} with compact positions and token indices {@code 0..len-1}, the main request's limits.
   */
  static List<LmRequest> branchRequests(HookRunner rec, Sequence seq) {
    TokenEmbedding emb = seq.emb();
    int[] prefix = seq.prompt().prefix();
    int[] suffix = seq.prompt().suffix();
    LmRequest main = seq.lm();
    List<BranchInput> inputs = rec.branches();
    if (inputs.isEmpty()) {
      return List.of();
    }
    int d = emb.dim();
    List<LmRequest> out = new ArrayList<>(inputs.size());
    for (BranchInput b : inputs) {
      int k = b.count();
      int len = prefix.length + k + suffix.length;
      float[] embeds = new float[len * d];
      for (int i = 0; i < prefix.length; i++) {
        emb.lookup(prefix[i], embeds, i * d);
      }
      float[] f = b.features().toArray();
      System.arraycopy(f, 0, embeds, prefix.length * d, k * d);
      for (int i = 0; i < suffix.length; i++) {
        emb.lookup(suffix[i], embeds, (prefix.length + k + i) * d);
      }
      int[] pos = new int[len];
      for (int i = 0; i < len; i++) {
        pos[i] = i;
      }
      out.add(
          new LmRequest(
              embeds,
              pos,
              pos.clone(),
              new int[0],
              main.maxNewTokens(),
              main.kvPrecision(),
              false));
    }
    return out;
  }

  @Override
  public void close() {
    RuntimeException failure = null;
    for (AutoCloseable c : new AutoCloseable[] {lm, fusedLm, vision, fusedVision, prompts}) {
      if (c == null) {
        continue;
      }
      try {
        c.close();
      } catch (Exception e) {
        if (failure == null) {
          failure = new IllegalStateException("cannot close the VLM runtime cleanly", e);
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }
}
