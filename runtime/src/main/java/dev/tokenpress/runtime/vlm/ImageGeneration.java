package dev.tokenpress.runtime.vlm;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.runtime.lm.GenerationResult;
import dev.tokenpress.runtime.lm.LmPrefix;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.media.RgbImage;
import dev.tokenpress.runtime.vision.VisionOutput;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@link VlmRuntime#generateImage}: the requests of one image (its questions, under one or several
 * plans) with their common work done once, where that gives what each request alone gives.
 *
 * <ul>
 *   <li><b>Image.</b> Decoded and preprocessed once.
 *   <li><b>Vision pass.</b> One {@link dev.tokenpress.runtime.vision.VisionEncoder#encodeShared}
 *       pass, with the CLS attention rows any of them asks for, serves every request whose plan has
 *       no operator at {@code VISION_LAYER} ({@link PlanExecution#actsInVision()}): such plans
 *       leave the ViT's computation as it is. A plan acting inside the ViT runs one pass for all
 *       its requests when its ViT operators keep no per-record state and use no seed ({@link
 *       HookRunner#visionShareable()}, e.g. ToMe), else one per request (VMTC's k-means draws on
 *       the request's seed).
 *   <li><b>LM prefix.</b> For a plan whose operators leave the LM alone ({@link
 *       PlanExecution#leavesLmAlone()}: nothing after {@code VISUAL_TOKENS}, no branch, no probe),
 *       the rows before the question text (prompt prefix and the visual rows the plan kept) do not
 *       depend on the question. Requests whose prefix rows are equal, bit for bit (embeddings,
 *       positions, token indices), share one prefill of them ({@link
 *       dev.tokenpress.runtime.lm.LlamaRuntime#prefillPrefix}); each then prefills its own rows
 *       against it and decodes. A plan whose kept tokens depend on the request's seed (random drop)
 *       gives different prefixes and so prefills each request alone; plans acting in the LM (FastV,
 *       MustDrop's LM stage, ZipVL, CMAI, VAR, DAMRO) always do.
 * </ul>
 *
 * <p>Time: each result's {@code timingsMs} holds its own stages plus an even share of the shared
 * ones: decode and preprocessing over all requests, the shared vision pass over the requests that
 * used it, a prefix prefill over the requests that continued it; {@code total} is their sum. FLOPs
 * are each request's own, as if it ran alone.
 */
final class ImageGeneration {
  private final VlmRuntime rt;
  private final List<VlmRequest> requests;
  private final Slot[] slots;
  private int visionPasses;
  private int prefixPrefills;
  private int prefixed;

  /** One request's state through the stages. */
  private static final class Slot {
    final VlmRequest request;
    PlanExecution plan;
    long seed;
    HookRunner rec;
    VisionOutput vis;
    VlmRuntime.Sequence seq;
    final Map<String, Double> ms = new LinkedHashMap<>();
    VlmResult result;
    RuntimeException error;
    double errorMs;

    Slot(VlmRequest request) {
      this.request = request;
    }

    boolean ok() {
      return error == null;
    }

    void fail(RuntimeException e, long since) {
      error = e;
      errorMs = (System.nanoTime() - since) / 1e6;
    }
  }

  ImageGeneration(VlmRuntime rt, List<VlmRequest> requests) {
    this.rt = rt;
    this.requests = List.copyOf(requests);
    this.slots = new Slot[this.requests.size()];
    for (int i = 0; i < slots.length; i++) {
      slots[i] = new Slot(this.requests.get(i));
    }
  }

  ImageBatchResult run() {
    if (slots.length == 0) {
      return new ImageBatchResult(List.of(), 0, 0, 0);
    }
    checkOneImage();
    if (rt.options().fused()) {
      return oneByOne();
    }
    long t0 = System.nanoTime();
    PixelValues pixels;
    double decodeShare;
    double preprocessShare;
    try {
      VlmRequest first = requests.get(0);
      RgbImage image =
          first.image() != null ? first.image() : rt.decoder().decode(first.imageBytes());
      long t1 = System.nanoTime();
      pixels = rt.preprocessor().preprocess(image);
      decodeShare = (t1 - t0) / 1e6 / slots.length;
      preprocessShare = (System.nanoTime() - t1) / 1e6 / slots.length;
    } catch (RuntimeException e) {
      for (Slot s : slots) {
        s.fail(e, t0);
        s.errorMs /= slots.length;
      }
      return outcomes();
    }
    for (Slot s : slots) {
      s.ms.put("image_decode", decodeShare);
      s.ms.put("preprocess", preprocessShare);
      long t = System.nanoTime();
      try {
        s.plan = rt.plan(s.request.plan());
        s.seed = Seeds.recordSeed(s.request.id(), rt.options().jobSeed());
        s.rec = s.plan.record(s.seed);
      } catch (RuntimeException e) {
        s.fail(e, t);
      }
    }
    sharedVision(pixels);
    ownVision(pixels);
    for (Slot s : slots) {
      if (s.ok()) {
        sequence(s);
      }
    }
    languageModel();
    return outcomes();
  }

  private void checkOneImage() {
    VlmRequest first = requests.get(0);
    for (VlmRequest r : requests) {
      boolean same =
          first.image() != null
              ? r.image() == first.image()
              : r.image() == null && Arrays.equals(r.imageBytes(), first.imageBytes());
      if (!same) {
        throw new IllegalArgumentException(
            "generateImage takes the requests of one image; request "
                + r.id()
                + " carries another image than request "
                + first.id());
      }
    }
  }

  /** The fused runtime runs no operators and has no split prefill: each request on its own. */
  private ImageBatchResult oneByOne() {
    List<ImageBatchResult.Outcome> out = new ArrayList<>();
    for (VlmRequest r : requests) {
      long t = System.nanoTime();
      try {
        VlmResult res = rt.generate(r);
        out.add(new ImageBatchResult.Outcome(res, null, res.timingsMs().get("total")));
      } catch (RuntimeException e) {
        out.add(new ImageBatchResult.Outcome(null, e, (System.nanoTime() - t) / 1e6));
      }
    }
    return new ImageBatchResult(out, requests.size(), 0, 0);
  }

  /** One ViT pass for every request whose plan has no operator inside the ViT. */
  private void sharedVision(PixelValues pixels) {
    List<Slot> users = new ArrayList<>();
    Set<Integer> cls = new TreeSet<>();
    for (Slot s : slots) {
      if (s.ok() && !s.plan.actsInVision()) {
        users.add(s);
        cls.addAll(s.plan.clsAttentionLayers());
      }
    }
    if (users.isEmpty()) {
      return;
    }
    long t = System.nanoTime();
    try {
      VisionOutput shared = rt.vision().encodeShared(pixels, cls);
      visionPasses++;
      double share = (System.nanoTime() - t) / 1e6 / users.size();
      for (Slot s : users) {
        s.vis = shared;
        s.ms.put("vision", share);
      }
    } catch (RuntimeException e) {
      for (Slot s : users) {
        s.fail(e, t);
      }
    }
  }

  /**
   * The ViT of plans acting inside it: a pass per request, except that the requests of a plan whose
   * ViT operators keep no per-record state and use no seed ({@code HookRunner#visionShareable},
   * e.g. ToMe) adopt the first request's pass.
   */
  private void ownVision(PixelValues pixels) {
    Map<CompressionPlan, List<Slot>> byPlan = new LinkedHashMap<>();
    for (Slot s : slots) {
      if (s.ok() && s.vis == null) {
        byPlan.computeIfAbsent(s.request.plan(), k -> new ArrayList<>()).add(s);
      }
    }
    for (List<Slot> group : byPlan.values()) {
      Slot lead = null;
      double leadMs = 0;
      List<Slot> adopters = new ArrayList<>();
      for (Slot s : group) {
        long t = System.nanoTime();
        try {
          if (lead != null && s.rec.visionShareable()) {
            s.rec.adoptVision(lead.rec);
            s.vis = lead.vis;
            adopters.add(s);
            continue;
          }
          s.vis = rt.vision().encode(pixels, s.rec);
          visionPasses++;
          s.ms.put("vision", (System.nanoTime() - t) / 1e6);
          if (lead == null && s.rec.visionShareable()) {
            lead = s;
            leadMs = s.ms.get("vision");
          }
        } catch (RuntimeException e) {
          s.fail(e, t);
        }
      }
      if (!adopters.isEmpty()) {
        double share = leadMs / (adopters.size() + 1);
        lead.ms.put("vision", share);
        for (Slot s : adopters) {
          s.ms.put("vision", share);
        }
      }
    }
  }

  /** The visual-token operators and the LM sequence of a request whose ViT stage is done. */
  private void sequence(Slot s) {
    long t = System.nanoTime();
    try {
      if (s.rec != null && !s.plan.actsInVision()) {
        rt.vision().replay(s.vis, s.rec);
      }
      long t1 = System.nanoTime();
      s.seq = rt.sequence(s.request, s.rec, s.vis);
      s.ms.put("operators", (System.nanoTime() - t1) / 1e6);
    } catch (RuntimeException e) {
      s.fail(e, t);
    }
  }

  /** The prefix rows of a sequence, compared bit for bit. */
  private record PrefixKey(float[] embeds, int[] positions, int[] tokenIndices) {
    static PrefixKey of(VlmRuntime.Sequence seq) {
      int p = seq.prefixRows();
      int d = seq.emb().dim();
      return new PrefixKey(
          Arrays.copyOf(seq.lm().inputEmbeds(), p * d),
          Arrays.copyOf(seq.lm().positions(), p),
          Arrays.copyOf(seq.lm().tokenIndices(), p));
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof PrefixKey k
          && Arrays.equals(embeds, k.embeds)
          && Arrays.equals(positions, k.positions)
          && Arrays.equals(tokenIndices, k.tokenIndices);
    }

    @Override
    public int hashCode() {
      return 31 * (31 * Arrays.hashCode(embeds) + Arrays.hashCode(positions))
          + Arrays.hashCode(tokenIndices);
    }
  }

  private void languageModel() {
    Map<PrefixKey, List<Slot>> groups = new LinkedHashMap<>();
    List<Slot> alone = new ArrayList<>();
    for (Slot s : slots) {
      if (!s.ok()) {
        continue;
      }
      if (s.plan.leavesLmAlone()
          && s.seq.prefixRows() > 0
          && s.seq.prefixRows() < s.seq.lm().rows()) {
        groups.computeIfAbsent(PrefixKey.of(s.seq), k -> new ArrayList<>()).add(s);
      } else {
        alone.add(s);
      }
    }
    for (Map.Entry<PrefixKey, List<Slot>> g : groups.entrySet()) {
      List<Slot> members = g.getValue();
      if (members.size() == 1) {
        alone.add(members.get(0));
        continue;
      }
      long t = System.nanoTime();
      LmPrefix prefix;
      try {
        prefix =
            rt.lm()
                .prefillPrefix(
                    part(members.get(0).seq.lm(), 0, members.get(0).seq.prefixRows(), true));
        prefixPrefills++;
      } catch (RuntimeException e) {
        for (Slot s : members) {
          s.fail(e, t);
        }
        continue;
      }
      double share = prefix.prefillMs() / members.size();
      for (Slot s : members) {
        long t1 = System.nanoTime();
        try {
          LmRequest all = s.seq.lm();
          GenerationResult gen =
              rt.lm().generate(prefix, part(all, s.seq.prefixRows(), all.rows(), false));
          prefixed++;
          finish(s, gen, share);
        } catch (RuntimeException e) {
          s.fail(e, t1);
        }
      }
    }
    for (Slot s : alone) {
      long t = System.nanoTime();
      try {
        List<LmRequest> branches =
            s.rec == null ? List.of() : VlmRuntime.branchRequests(s.rec, s.seq);
        GenerationResult gen =
            branches.isEmpty()
                ? rt.lm().generate(s.seq.lm(), s.rec)
                : rt.lm().generate(s.seq.lm(), s.rec, branches);
        finish(s, gen, 0);
      } catch (RuntimeException e) {
        s.fail(e, t);
      }
    }
  }

  /** Rows {@code [from, to)} of {@code r}; a prefix part generates nothing. */
  private static LmRequest part(LmRequest r, int from, int to, boolean prefix) {
    float[] embeds = r.inputEmbeds();
    int d = embeds.length / r.rows();
    return new LmRequest(
        Arrays.copyOfRange(embeds, from * d, to * d),
        Arrays.copyOfRange(r.positions(), from, to),
        Arrays.copyOfRange(r.tokenIndices(), from, to),
        r.stopTokens(),
        prefix ? 0 : r.maxNewTokens(),
        r.kvPrecision(),
        !prefix && r.recordLogits());
  }

  private void finish(Slot s, GenerationResult gen, double prefixShare) {
    s.ms.put("prefill", gen.timings().prefillMs() + prefixShare);
    s.ms.put("decode", gen.timings().decodeMs());
    s.ms.put("decode_attention", gen.timings().decodeAttentionNanos() / 1e6);
    double total = 0;
    for (String k :
        List.of("image_decode", "preprocess", "vision", "operators", "prefill", "decode")) {
      total += s.ms.getOrDefault(k, 0.0);
    }
    s.ms.put("total", total);
    s.result = rt.result(s.seq, s.rec, s.vis, gen, s.ms, s.seed);
  }

  private ImageBatchResult outcomes() {
    List<ImageBatchResult.Outcome> out = new ArrayList<>(slots.length);
    for (Slot s : slots) {
      if (s.ok()) {
        out.add(new ImageBatchResult.Outcome(s.result, null, s.result.timingsMs().get("total")));
      } else {
        double shares =
            s.ms.getOrDefault("image_decode", 0.0) + s.ms.getOrDefault("preprocess", 0.0);
        out.add(new ImageBatchResult.Outcome(null, s.error, s.errorMs + shares));
      }
    }
    return new ImageBatchResult(out, visionPasses, prefixPrefills, prefixed);
  }
}
