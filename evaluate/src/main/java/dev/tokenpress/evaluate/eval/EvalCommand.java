package dev.tokenpress.evaluate.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.datasets.Question;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.datasets.SceneObject;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.TokenProvenance;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.prune.MustDrop;
import dev.tokenpress.runtime.bundle.BundleCache;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.lm.LmFlops;
import dev.tokenpress.runtime.lm.StopReason;
import dev.tokenpress.runtime.media.RgbImage;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vision.VisionBundle;
import dev.tokenpress.runtime.vision.VisionConfig;
import dev.tokenpress.runtime.vision.VisionFlops;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRequest;
import dev.tokenpress.runtime.vlm.VlmResult;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code tokenpress eval}: accuracy of a compression plan on ShapesVQA, scored as the training
 * script scores it ({@link AnswerScoring}), with the FLOPs the plan spends relative to the empty
 * plan on the same questions.
 *
 * <p>The FLOPs ratio compares each question's analytic FLOPs with those of the same question run
 * uncompressed for the same number of generated tokens (all visual tokens through every ViT and LM
 * layer, the same {@link VisionFlops}/{@link LmFlops} counting), so it measures the plan and not a
 * change in answer length.
 */
public final class EvalCommand {
  public static final String USAGE =
      "eval [--bundle DIR] [--plan JSON|@FILE] [--split test] [--images 200] [--start 0]\n"
          + "         [--kinds exists,color,count,position,caption] [--max-new-tokens 48] [--threads 1] [--workers 1]\n"
          + "         [--seed 1234] [--details FILE] [--kv-dtype float32]\n"
          + "  Answers the ShapesVQA questions of --images images of --split (generated with --seed; 1234 is the\n"
          + "  bundled models' data) with --bundle (a bundle, or an HF checkpoint built into a cached bundle; default\n"
          + "  the bundled evaluation model models/tiny-llava-shapes) on the split runtime and --plan (default [],\n"
          + "  no compression); prints\n"
          + "  per-kind exact-match accuracy, overall (mean of exists/color/count/position), caption object F1,\n"
          + "  CHAIR, visual tokens kept (into the LM, after LM-side drops, and the number after each LM layer averaged\n"
          + "  over the layers, the count MustDrop and SparseVLM report), the share of object patches kept (object_patch_recall) and of kept\n"
          + "  tokens on objects, the KV cache's stored bytes after generation (mean_kv_bytes; split runtime\n"
          + "  only), FLOPs per question and their ratio to the empty plan, prefill ms per question and decode ms per\n"
          + "  generated token, the operators' stats averaged per question (operator_stats_mean), wall time.\n"
          + "  --workers runs that many requests at once on one runtime (results do not depend on it).\n"
          + "  --details writes one JSON line per question (image, question_id, kind, question, expected, answer,\n"
          + "  correct; correct is null for captions; prefill_ms, decode_ms, decode_steps), sorted by question id,\n"
          + "  for paired comparisons of plans (bin/tokenpress-eval-compare). Hallucination: POPE metrics of the\n"
          + "  exists questions (accuracy, precision, recall, F1, yes ratio; all, and per negative sampling random /\n"
          + "  adversarial of the image's absent-object question), CHAIR_S / CHAIR_I of the captions. Cost:\n"
          + "  lm_work_factor (LM FLOPs, prefill + decode, over the empty plan's), mean_prefill_ms, decode_ms_per_token.\n"
          + "  --kv-dtype stores the KV cache as float32 (default), float16, or int8/int4/int2 (uniform ZipCache\n"
          + "  quantisation after prefill); with a KV-quantising plan (zipvl) it is the precision of generated tokens.\n"
          + "  For KV-quantising plans also the mean share of important (high-precision) tokens per LM layer.";

  static final List<String> EXACT_KINDS = List.of("exists", "color", "count", "position");

  /**
   * {@code --bundle}, by default the checkout's bundled evaluation model {@code
   * models/tiny-llava-shapes} (under the system property {@code tokenpress.home}, which {@code
   * bin/tokenpress} sets; else the working directory). A Hugging Face checkpoint folder is built
   * into a bundle once and cached ({@link BundleCache}), as the Spark jobs do.
   */
  static Path bundleDir(Args a) {
    String b = a.string("--bundle", null);
    Path dir =
        b != null
            ? Path.of(b)
            : Path.of(System.getProperty("tokenpress.home", "."), "models", "tiny-llava-shapes");
    if (b == null && !java.nio.file.Files.isRegularFile(dir.resolve("config.json"))) {
      throw new UsageException(
          "--bundle not given and the bundled evaluation model is not at " + dir.toAbsolutePath());
    }
    boolean checkpoint =
        java.nio.file.Files.isRegularFile(dir.resolve("config.json"))
            && !java.nio.file.Files.isRegularFile(
                dir.resolve(dev.tokenpress.runtime.bundle.BundleManifest.FILE_NAME));
    return checkpoint ? BundleCache.asBundle(dir.toAbsolutePath().normalize()) : dir;
  }

  private static final Set<String> OPTIONS =
      Set.of(
          "--bundle",
          "--plan",
          "--split",
          "--images",
          "--start",
          "--kinds",
          "--max-new-tokens",
          "--threads",
          "--workers",
          "--seed",
          "--details",
          "--kv-dtype");

  private EvalCommand() {}

  /** The ShapesVQA questions of {@code split} for {@code --seed} (default the test seed). */
  static ShapesVqaSource dataset(Args a, String split) {
    String seedArg = a.string("--seed", Long.toString(ShapesVqaSource.TEST_SEED));
    long seed;
    try {
      seed = Long.parseLong(seedArg.trim());
    } catch (NumberFormatException e) {
      throw new UsageException("--seed must be an integer, found '" + seedArg + "'");
    }
    try {
      return new ShapesVqaSource(seed, 128, split);
    } catch (IllegalArgumentException e) {
      throw new UsageException("--split: " + e.getMessage());
    }
  }

  /** A plan given inline as JSON or as {@code @FILE}; invalid plans are usage errors. */
  public static CompressionPlan plan(String arg) {
    String json = arg;
    if (arg.startsWith("@")) {
      Path f = Path.of(arg.substring(1));
      try {
        json = Files.readString(f);
      } catch (IOException e) {
        throw new UsageException("cannot read plan file " + f + ": " + e.getMessage());
      }
    }
    try {
      return CompressionPlan.parse(json);
    } catch (IllegalArgumentException e) {
      throw new UsageException("invalid --plan: " + e.getMessage());
    }
  }

  static List<String> kinds(String arg) {
    Set<String> out = new LinkedHashSet<>();
    for (String k : arg.split(",")) {
      String t = k.trim();
      if (t.isEmpty()) {
        continue;
      }
      if (!Question.KINDS.contains(t)) {
        throw new UsageException(
            "--kinds: unknown kind '" + t + "'; allowed: " + String.join(",", Question.KINDS));
      }
      out.add(t);
    }
    if (out.isEmpty()) {
      throw new UsageException(
          "--kinds must name at least one of " + String.join(",", Question.KINDS));
    }
    return List.copyOf(out);
  }

  public static String run(String[] argv) {
    Args a = new Args(argv, OPTIONS);
    CompressionPlan plan = plan(a.string("--plan", "[]"));
    String split = a.string("--split", "test");
    int images = a.integer("--images", 200, 1, 1_000_000);
    int start = a.integer("--start", 0, 0, 1_000_000);
    List<String> kinds = kinds(a.string("--kinds", String.join(",", Question.KINDS)));
    int maxNew = a.integer("--max-new-tokens", 48, 1, 4096);
    int threads = a.integer("--threads", 1, 0, 1024);
    int workers = a.integer("--workers", 1, 1, 256);
    ShapesVqaSource data = dataset(a, split);
    Path bundleDir = bundleDir(a);
    String detailsArg = a.string("--details", null);
    Path details = detailsArg == null ? null : Path.of(detailsArg);
    String kvArg = a.string("--kv-dtype", "float32");
    KvPrecision kvDtype =
        switch (kvArg) {
          case "float32" -> KvPrecision.FP32;
          case "float16" -> KvPrecision.FP16;
          case "int8" -> KvPrecision.INT8;
          case "int4" -> KvPrecision.INT4;
          case "int2" -> KvPrecision.INT2;
          default ->
              throw new UsageException(
                  "--kv-dtype must be float32, float16, int8, int4 or int2, found '" + kvArg + "'");
        };
    VlmOptions options =
        VlmOptions.defaults()
            .withSession(new SessionConfig(threads, false))
            .withMaxNewTokens(maxNew)
            .withKvPrecision(kvDtype);
    try (VlmRuntime rt = VlmRuntime.open(bundleDir, options)) {
      rt.validate(plan);
      Evaluation e =
          new Evaluation(rt, plan, kinds, details != null)
              .run(data, start, images, maxNew, workers);
      if (details != null) {
        e.writeDetails(details);
      }
      return e.toJson(bundleDir, split, data.seed(), start, images);
    }
  }

  /** Running tallies of one evaluation. */
  static final class Evaluation {
    private final VlmRuntime rt;
    private final CompressionPlan plan;
    private final List<String> kinds;
    private final LmSpec lm;
    private final VisionConfig vision;
    private final Map<String, int[]> exact = new LinkedHashMap<>();
    private final AnswerScoring.CaptionTally captions = new AnswerScoring.CaptionTally();

    /** POPE counts of the exists questions: "all", then per negative sampling of the image. */
    private final Map<String, AnswerScoring.PopeTally> pope = new java.util.TreeMap<>();

    private double prefillMs;
    private double decodeMs;
    private long decodeSteps;
    private final long[] flops = new long[4];
    private final long[] emptyFlops = new long[4];
    private long questions;
    private long captionQuestions;
    private long keptVisual;
    private double layerAverageVisual;
    private long kvBytes;
    private double[] importantRatio;
    private long importantQuestions;
    private long kvQuestions;
    private boolean progress = true;
    private long finalVisual;
    private long objectPatches;
    private long objectPatchesKept;
    private long inVisual;
    private long generatedTokens;
    private double seconds;
    private final java.util.TreeMap<String, double[]> operatorStats = new java.util.TreeMap<>();

    /**
     * One line per question, keyed by question id (sorted on output: workers finish in any order);
     * null if not kept.
     */
    private final java.util.TreeMap<String, String> details;

    private static final ObjectMapper DETAILS_JSON = new ObjectMapper();

    Evaluation(VlmRuntime rt, CompressionPlan plan, List<String> kinds, boolean keepDetails) {
      this.rt = rt;
      this.details = keepDetails ? new java.util.TreeMap<>() : null;
      this.plan = plan;
      this.kinds = kinds;
      this.lm = rt.bundle().lm();
      this.vision = VisionBundle.spec(rt.bundle()).config();
      for (String k : EXACT_KINDS) {
        if (kinds.contains(k)) {
          exact.put(k, new int[2]);
        }
      }
    }

    /**
     * Answers every selected question of images {@code [start, start+images)}, {@code workers} at a
     * time.
     */
    Evaluation run(ShapesVqaSource data, int start, int images, int maxNew, int workers) {
      long t0 = System.nanoTime();
      int step = Math.max(1, images / 10);
      java.util.concurrent.atomic.AtomicInteger next =
          new java.util.concurrent.atomic.AtomicInteger(start);
      java.util.concurrent.atomic.AtomicInteger done =
          new java.util.concurrent.atomic.AtomicInteger();
      Runnable worker =
          () -> {
            for (int i = next.getAndIncrement(); i < start + images; i = next.getAndIncrement()) {
              Scene scene = data.scene(i);
              RgbImage image = ShapesVqaSource.image(scene);
              for (Question q : scene.questions()) {
                if (!kinds.contains(q.kind())) {
                  continue;
                }
                VlmResult r =
                    rt.generate(
                        VlmRequest.ofImage(q.id(), image, q.question())
                            .withPlan(plan)
                            .withMaxNewTokens(maxNew));
                synchronized (this) {
                  score(scene, q, r);
                }
              }
              int d = done.incrementAndGet();
              if (progress && d % step == 0) {
                System.err.printf(
                    "eval: %d/%d images, %.1f s%n", d, images, (System.nanoTime() - t0) / 1e9);
              }
            }
          };
      if (workers == 1) {
        worker.run();
      } else {
        java.util.concurrent.ExecutorService pool =
            java.util.concurrent.Executors.newFixedThreadPool(workers);
        try {
          List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
          for (int w = 0; w < workers; w++) {
            fs.add(pool.submit(worker));
          }
          for (java.util.concurrent.Future<?> f : fs) {
            f.get();
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("evaluation interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
          if (e.getCause() instanceof RuntimeException re) {
            throw re;
          }
          throw new IllegalStateException(e.getCause());
        } finally {
          pool.shutdownNow();
        }
      }
      seconds = (System.nanoTime() - t0) / 1e9;
      return this;
    }

    void score(Scene scene, Question q, VlmResult r) {
      questions++;
      keptVisual += r.visualTokensKept();
      layerAverageVisual += layerAverageVisual(r);
      if (r.kvCache() != null) {
        kvBytes += r.kvCache().storedBytes();
        kvQuestions++;
        KvCache c = r.kvCache();
        if (c.layer(0).compressionInfo() != null) {
          if (importantRatio == null) {
            importantRatio = new double[c.numLayers()];
          }
          for (int l = 0; l < c.numLayers(); l++) {
            importantRatio[l] += c.layer(l).compressionInfo().importantRatio();
          }
          importantQuestions++;
        }
      }
      boolean[] kept = visualKept(r);
      boolean[] onObject = objectPatches(scene, kept.length);
      for (int v = 0; v < kept.length; v++) {
        finalVisual += kept[v] ? 1 : 0;
        if (onObject != null && onObject[v]) {
          objectPatches++;
          objectPatchesKept += kept[v] ? 1 : 0;
        }
      }
      inVisual += r.visualTokensIn();
      generatedTokens += r.tokenIds().length;
      int steps = r.tokenIds().length - (r.stopReason() == StopReason.STOP_TOKEN ? 0 : 1);
      prefillMs += r.timingsMs().getOrDefault("prefill", 0.0);
      decodeMs += r.timingsMs().getOrDefault("decode", 0.0);
      decodeSteps += Math.max(0, steps);
      for (dev.tokenpress.operators.api.OperatorStat st : r.operatorStats()) {
        long[] v = st.values();
        if (v.length == 1) { // counts; lists such as sink_dims are not averaged
          String key =
              st.operator() + (st.layer() >= 0 ? "[" + st.layer() + "]" : "") + "." + st.name();
          operatorStats.computeIfAbsent(key, k -> new double[1])[0] += v[0];
        }
      }
      flops[0] += r.flops().get("vision");
      flops[1] += r.flops().get("prefill");
      flops[2] += r.flops().get("decode");
      flops[3] += r.flops().get("total");
      long[] e = emptyPlanFlops(r);
      for (int k = 0; k < 4; k++) {
        emptyFlops[k] += e[k];
      }
      Boolean correct = null; // captions are scored by object F1, not exact match
      String sampling = null;
      Boolean popeYes = null;
      long mentioned = -1;
      long hallucinatedHere = -1;
      if (q.kind().equals("caption")) {
        captionQuestions++;
        List<AnswerScoring.CaptionObject> truth = new ArrayList<>();
        for (SceneObject o : scene.objects()) {
          truth.add(
              new AnswerScoring.CaptionObject(
                  o.sizeName(), o.colorName(), o.shapeName(), o.positionName()));
        }
        List<AnswerScoring.CaptionObject> said = AnswerScoring.parseCaption(r.answer());
        mentioned = said.size();
        hallucinatedHere = captions.add(said, truth);
      } else {
        if (q.kind().equals("exists")) {
          sampling = negativeSampling(scene);
          popeYes = AnswerScoring.popeYes(r.answer());
          boolean expectedYes = q.answer().equals("yes");
          pope.computeIfAbsent("all", x -> new AnswerScoring.PopeTally()).add(expectedYes, popeYes);
          if (sampling != null) {
            pope.computeIfAbsent(sampling, x -> new AnswerScoring.PopeTally())
                .add(expectedYes, popeYes);
          }
        }
        int[] c = exact.get(q.kind());
        c[1]++;
        correct = AnswerScoring.exactMatch(r.answer(), q.answer());
        if (correct) {
          c[0]++;
        }
      }
      if (details != null) {
        ObjectNode d = DETAILS_JSON.createObjectNode();
        d.put("image", scene.imageId());
        d.put("question_id", q.id());
        d.put("kind", q.kind());
        d.put("question", q.question());
        d.put("expected", q.answer());
        d.put("answer", r.answer());
        d.put("correct", correct);
        d.put("visual_tokens_kept", r.visualTokensKept());
        if (popeYes != null) {
          d.put("sampling", sampling);
          d.put("pope_yes", popeYes);
        }
        if (mentioned >= 0) {
          d.put("objects", mentioned);
          d.put("hallucinated", hallucinatedHere);
        }
        d.put("prefill_ms", round(r.timingsMs().getOrDefault("prefill", 0.0)));
        d.put("decode_ms", round(r.timingsMs().getOrDefault("decode", 0.0)));
        d.put("decode_steps", Math.max(0, steps));
        details.put(q.id(), d.toString());
      }
    }

    /**
     * The POPE split of an image's exists questions: the negative sampling of its absent-object
     * question ({@link Question#sampling()}), which both its exists questions belong to, as POPE's
     * splits share their positive questions; null when the image has none.
     */
    static String negativeSampling(Scene scene) {
      for (Question q : scene.questions()) {
        if (q.kind().equals("exists") && q.sampling() != null) {
          return q.sampling();
        }
      }
      return null;
    }

    /** Writes the per-question lines (JSON Lines, sorted by question id) to {@code file}. */
    void writeDetails(Path file) {
      try {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
          Files.createDirectories(parent);
        }
        Files.write(file, details.values());
      } catch (IOException e) {
        throw new UsageException("cannot write --details " + file + ": " + e.getMessage());
      }
    }

    /** Stops the progress lines on stderr (for callers that run many evaluations). */
    Evaluation quiet() {
      progress = false;
      return this;
    }

    /** Mean visual tokens entering the LM per question. */
    double meanVisualTokensKept() {
      return keptVisual / (double) Math.max(1, questions);
    }

    /** Mean over questions of {@link #layerAverageVisual}. */
    double meanVisualTokensLayerAverage() {
      return layerAverageVisual / Math.max(1, questions);
    }

    /**
     * The number of visual tokens after each LM layer (after that layer's {@code PREFILL_AFTER}
     * drops, if any), averaged over the LM's layers: {@link MustDrop#meanVisualTokens}, the count
     * MustDrop's and SparseVLM's papers report, for any plan. It starts from the tokens entering
     * the LM; maps at one layer compose (the last one counts).
     */
    double layerAverageVisual(VlmResult r) {
      int n = r.visualTokensIn();
      int imageAt = imageAt(r);
      int[] layers = new int[r.keptMaps().size()];
      int[] counts = new int[layers.length];
      int s = 0;
      for (KeptMap k : r.keptMaps()) {
        if (k.hook() != Hook.PREFILL_AFTER) {
          continue;
        }
        int c = 0;
        for (int o : k.original()) {
          int v = o - imageAt;
          if (v >= 0 && v < n) {
            c++;
          }
        }
        if (s > 0 && layers[s - 1] == k.layer()) {
          counts[s - 1] = c;
        } else {
          layers[s] = k.layer();
          counts[s++] = c;
        }
      }
      return MustDrop.meanVisualTokens(
          lm.numLayers(), Arrays.copyOf(layers, s), r.visualTokensKept(), Arrays.copyOf(counts, s));
    }

    /** Index of the first image token in the prompt, or -1. */
    private int imageAt(VlmResult r) {
      int[] ids = r.promptIds();
      for (int i = 0; i < ids.length; i++) {
        if (ids[i] == rt.prompts().imageTokenId()) {
          return i;
        }
      }
      return -1;
    }

    /**
     * Which patches (projector numbering) are still represented after the last operator: those of
     * the visual tokens entering the LM (a merged token represents all its patches, see {@link
     * VlmResult#provenance()}), less what a {@code PREFILL_AFTER} operator (FastV) dropped for the
     * later layers.
     */
    boolean[] visualKept(VlmResult r) {
      int n = r.visualTokensIn();
      int imageAt = imageAt(r);
      TokenProvenance p = r.provenance();
      boolean[] alive = new boolean[n]; // by representative patch: the visual rows still present
      for (int t = 0; t < p.count(); t++) {
        alive[p.patches(t)[0]] = true;
      }
      for (KeptMap k : r.keptMaps()) {
        if (k.hook() != Hook.PREFILL_AFTER) {
          continue;
        }
        boolean[] next = new boolean[n];
        for (int o : k.original()) {
          int v = o - imageAt;
          if (v >= 0 && v < n) {
            next[v] = alive[v];
          }
        }
        alive = next;
      }
      boolean[] kept = new boolean[n];
      for (int t = 0; t < p.count(); t++) {
        if (alive[p.patches(t)[0]]) {
          for (int patch : p.patches(t)) {
            kept[patch] = true;
          }
        }
      }
      return kept;
    }

    /**
     * Patches (row-major grid cells) that overlap an object of the scene's mask; null when the
     * visual tokens are not one per patch.
     */
    boolean[] objectPatches(Scene scene, int tokens) {
      return objectPatches(scene, vision.gridSize(), tokens);
    }

    /** {@link #objectPatches(Scene, int)} for a {@code grid}×{@code grid} patch grid. */
    static boolean[] objectPatches(Scene scene, int grid, int tokens) {
      if (grid * grid != tokens || scene.size() % grid != 0) {
        return null;
      }
      int cell = scene.size() / grid;
      boolean[] on = new boolean[tokens];
      byte[] mask = scene.mask();
      for (int y = 0; y < scene.size(); y++) {
        for (int x = 0; x < scene.size(); x++) {
          if (mask[y * scene.size() + x] != 0) {
            on[(y / cell) * grid + x / cell] = true;
          }
        }
      }
      return on;
    }

    /**
     * {vision, prefill, decode, total} of the same question uncompressed, same generated length.
     */
    long[] emptyPlanFlops(VlmResult r) {
      int[] tokens = new int[vision.layersRun()];
      Arrays.fill(tokens, vision.numPositions());
      long v = VisionFlops.total(vision, tokens, r.visualTokensIn());
      long rows = r.promptIds().length - 1L + r.visualTokensIn();
      long prefill = LmFlops.head(lm, 1);
      for (int l = 0; l < lm.numLayers(); l++) {
        prefill += LmFlops.layer(lm, rows, rows);
      }
      int n = r.tokenIds().length;
      int steps = r.stopReason() == StopReason.STOP_TOKEN ? n : Math.max(0, n - 1);
      long decode = 0;
      for (int s = 1; s <= steps; s++) {
        decode += lm.numLayers() * LmFlops.layer(lm, 1, rows + s) + LmFlops.head(lm, 1);
      }
      return new long[] {v, prefill, decode, v + prefill + decode};
    }

    String toJson(Path bundle, String split, long seed, int start, int images) {
      ObjectMapper m = new ObjectMapper();
      ObjectNode o = m.createObjectNode();
      o.put("bundle", bundle.toAbsolutePath().toString());
      o.put("plan", plan.toJson());
      o.put("split", split);
      o.put("seed", seed);
      o.put("start", start);
      o.put("images", images);
      o.put("kinds", String.join(",", kinds));
      o.put("questions", questions);
      ObjectNode acc = o.putObject("accuracy");
      ObjectNode counts = o.putObject("questions_per_kind");
      double sum = 0;
      for (Map.Entry<String, int[]> e : exact.entrySet()) {
        double x = e.getValue()[0] / (double) Math.max(1, e.getValue()[1]);
        acc.put(e.getKey(), round(x));
        counts.put(e.getKey(), e.getValue()[1]);
        sum += x;
      }
      if (!exact.isEmpty()) {
        o.put("overall", round(sum / exact.size()));
        o.put("overall_kinds", String.join(",", exact.keySet()));
      }
      if (kinds.contains("caption")) {
        counts.put("caption", captionQuestions);
        o.put("caption_object_f1", round(captions.f1()));
        o.put("caption_object_precision", round(captions.precision()));
        o.put("caption_object_recall", round(captions.recall()));
        o.put("chair", round(captions.chair()));
        o.put("chair_s", round(captions.chairS()));
        o.put("chair_i", round(captions.chairI()));
      }
      if (!pope.isEmpty()) {
        ObjectNode p = o.putObject("pope");
        for (String part : List.of("all", Question.RANDOM, Question.ADVERSARIAL)) {
          AnswerScoring.PopeTally t = pope.get(part);
          if (t == null) {
            continue;
          }
          ObjectNode x = p.putObject(part);
          x.put("questions", t.questions());
          x.put("accuracy", round(t.accuracy()));
          x.put("precision", round(t.precision()));
          x.put("recall", round(t.recall()));
          x.put("f1", round(t.f1()));
          x.put("yes_ratio", round(t.yesRatio()));
        }
      }
      o.put("visual_tokens_in", questions == 0 ? 0 : inVisual / (double) questions);
      o.put("mean_visual_tokens_kept", round(keptVisual / (double) Math.max(1, questions)));
      o.put(
          "mean_visual_tokens_after_lm_drops",
          round(finalVisual / (double) Math.max(1, questions)));
      o.put("mean_visual_tokens_layer_average", round(meanVisualTokensLayerAverage()));
      o.put("object_patch_recall", round(objectPatchesKept / (double) Math.max(1, objectPatches)));
      o.put(
          "kept_on_object_fraction", round(objectPatchesKept / (double) Math.max(1, finalVisual)));
      if (kvQuestions > 0) {
        o.put("mean_kv_bytes", Math.round(kvBytes / (double) kvQuestions));
      }
      o.put("mean_generated_tokens", round(generatedTokens / (double) Math.max(1, questions)));
      o.put("mean_decode_ms", round(decodeMs / Math.max(1, questions)));
      if (importantQuestions > 0) {
        ArrayNode ir = o.putArray("mean_important_ratio_per_layer");
        for (double x : importantRatio) {
          ir.add(round(x / importantQuestions));
        }
      }
      String[] names = {"vision", "prefill", "decode", "total"};
      ObjectNode f = o.putObject("flops_per_question");
      ObjectNode fr = o.putObject("flops_ratio_vs_empty_plan");
      for (int k = 0; k < 4; k++) {
        f.put(names[k], Math.round(flops[k] / (double) Math.max(1, questions)));
        fr.put(names[k], emptyFlops[k] == 0 ? 1.0 : round(flops[k] / (double) emptyFlops[k]));
      }
      long lm = flops[1] + flops[2];
      long lmEmpty = emptyFlops[1] + emptyFlops[2];
      o.put("lm_work_factor", lmEmpty == 0 ? 1.0 : round(lm / (double) lmEmpty));
      o.put("mean_prefill_ms", round(prefillMs / Math.max(1, questions)));
      o.put("decode_ms_per_token", round(decodeMs / Math.max(1, decodeSteps)));
      if (!operatorStats.isEmpty()) {
        ObjectNode os =
            o.putObject("operator_stats_mean"); // per question, e.g. var[2].visual_sinks
        operatorStats.forEach((k, v) -> os.put(k, round(v[0] / Math.max(1, questions))));
      }
      o.put("wall_seconds", round(seconds));
      o.put("ms_per_question", round(1000 * seconds / Math.max(1, questions)));
      try {
        return m.writeValueAsString(o);
      } catch (JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }

    static double round(double x) {
      return Math.round(x * 1e4) / 1e4;
    }
  }
}
