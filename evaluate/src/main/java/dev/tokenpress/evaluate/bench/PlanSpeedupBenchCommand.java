package dev.tokenpress.evaluate.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.operators.api.ModelShape;
import dev.tokenpress.runtime.cli.Args;
import dev.tokenpress.runtime.cli.UsageException;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRequest;
import dev.tokenpress.runtime.vlm.VlmResult;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code tokenpress bench plans}: how much of each plan's analytic FLOPs reduction turns into wall
 * time, per stage. One {@link VlmRuntime} (one JVM, one bundle) answers the same image and prompt
 * with every plan, the plans alternating within each round (round {@code r} starts at plan {@code r
 * mod P}) so that machine load hits them alike; exactly {@code --new-tokens} tokens each. Per plan
 * it prints the median wall time of the vision tower (ViT + projector + ViT-side operators), the LM
 * prefill, the decode and the whole request, the analytic FLOPs of vision, prefill and decode
 * ({@code VisionFlops}, {@code LmFlops}), and against the empty plan: the speedup (time ratio), the
 * FLOPs reduction (FLOPs ratio) and their quotient, the share of the ideal speedup realized (1 =
 * time falls exactly as FLOPs do). End to end is the whole request against vision + prefill +
 * decode FLOPs.
 *
 * <p>Meant for a random-weight checkpoint with a real model's dimensions ({@code model random}),
 * where timings are those of the real model; on the bundled tiny model fixed costs dominate.
 */
public final class PlanSpeedupBenchCommand {
  public static final String USAGE =
      "bench plans --bundle DIR [--image FILE] [--prompt TEXT] [--rounds 3] [--warmup 1]\n"
          + "         [--new-tokens 8] [--threads 2] [--keep 144] [--fastv-layer 2] [--plans JSON] [--kv-dtype float32]\n"
          + "  One image + prompt per plan, plans alternating over --rounds rounds in one runtime; per plan the median\n"
          + "  ms of vision, prefill, decode and total, analytic FLOPs per stage, and vs the empty plan the speedup, the\n"
          + "  FLOPs reduction and speedup / reduction (vision, prefill, decode, end to end). Default plans at --keep\n"
          + "  visual tokens: vtc-cls, random-drop, fastv (--fastv-layer), tome (r per ViT layer chosen to leave --keep\n"
          + "  patches) with and without prop_attn, and mustdrop-a (MustDrop stage A, retained_tokens --keep) where the\n"
          + "  mustdrop operator exists; --plans '{\"name\":[plan...],...}' replaces them (the empty plan\n"
          + "  always runs). Also the process CPU time per request (ORT threads included), which load inflates least,\n"
          + "  and per plan the KV cache's stored bytes and the median decode and decode-attention ms per generated\n"
          + "  token. --kv-dtype float32|float16 is the precision of KV entries the plans do not re-encode.";

  /** Stages reported, as keys of {@link VlmResult#timingsMs()}. */
  static final List<String> STAGES = List.of("vision", "prefill", "decode", "total");

  private static final Set<String> OPTIONS =
      Set.of(
          "--bundle",
          "--image",
          "--prompt",
          "--rounds",
          "--warmup",
          "--kv-dtype",
          "--new-tokens",
          "--threads",
          "--keep",
          "--fastv-layer",
          "--plans");

  /** MustDrop's name in plans (issue 10); its stage A joins the default plans where it exists. */
  static final String MUSTDROP = "mustdrop";

  static final String DEFAULT_IMAGE = "datasets/sample/images/photos/chelsea.jpg";
  static final String DEFAULT_PROMPT = "what is in the image ?";
  private static final ObjectMapper JSON = new ObjectMapper();

  private PlanSpeedupBenchCommand() {}

  public static String run(String[] argv) {
    Args a = new Args(argv, OPTIONS);
    Path bundle = a.path("--bundle");
    Path image = Path.of(a.string("--image", DEFAULT_IMAGE));
    String prompt = a.string("--prompt", DEFAULT_PROMPT);
    int rounds = a.integer("--rounds", 3, 1, 10_000);
    int warmup = a.integer("--warmup", 1, 0, 10_000);
    int newTokens = a.integer("--new-tokens", 8, 1, 4096);
    int threads = a.integer("--threads", 2, 0, 1024);
    int keep = a.integer("--keep", 144, 1, 1_000_000);
    int fastvLayer = a.integer("--fastv-layer", 2, 0, 1024);
    byte[] png;
    try {
      png = Files.readAllBytes(image);
    } catch (IOException e) {
      throw new UsageException("--image " + image + " cannot be read: " + e.getMessage());
    }

    String kvArg = a.string("--kv-dtype", "float32");
    if (!kvArg.equals("float32") && !kvArg.equals("float16")) {
      throw new UsageException("--kv-dtype must be float32 or float16, found '" + kvArg + "'");
    }
    VlmOptions options =
        VlmOptions.defaults()
            .withSession(new SessionConfig(threads, false))
            .withMaxNewTokens(newTokens)
            .withKvPrecision(
                kvArg.equals("float16")
                    ? dev.tokenpress.operators.kv.KvPrecision.FP16
                    : dev.tokenpress.operators.kv.KvPrecision.FP32);
    long open0 = System.nanoTime();
    try (VlmRuntime rt = VlmRuntime.open(bundle, options)) {
      double openSeconds = (System.nanoTime() - open0) / 1e9;
      Map<String, CompressionPlan> plans =
          a.has("--plans")
              ? parsePlans(a.string("--plans", null))
              : defaultPlans(rt.shape(), keep, fastvLayer);
      for (Map.Entry<String, CompressionPlan> e : plans.entrySet()) {
        try {
          rt.validate(e.getValue());
        } catch (IllegalArgumentException ex) {
          throw new IllegalArgumentException("plan " + e.getKey() + ": " + ex.getMessage(), ex);
        }
      }
      List<String> names = new ArrayList<>(plans.keySet());
      int p = names.size();
      double systemLoad0 = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
      for (int w = 0; w < warmup; w++) {
        for (String n : names) {
          rt.generate(request(png, prompt, plans.get(n)));
        }
      }
      double[][][] ms = new double[p][STAGES.size()][rounds];
      double[][] cpuMs = new double[p][rounds];
      double[][] decodeTokenMs = new double[p][rounds];
      double[][] attentionTokenMs = new double[p][rounds];
      VlmResult[] last = new VlmResult[p];
      boolean stableTokens = true;
      for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < p; k++) {
          int i = (k + r) % p;
          long cpu0 = processCpuNanos();
          VlmResult res = rt.generate(request(png, prompt, plans.get(names.get(i))));
          cpuMs[i][r] = (processCpuNanos() - cpu0) / 1e6;
          int steps = Math.max(1, res.tokenIds().length - 1);
          decodeTokenMs[i][r] = res.timingsMs().get("decode") / steps;
          attentionTokenMs[i][r] = res.timingsMs().getOrDefault("decode_attention", 0.0) / steps;
          for (int s = 0; s < STAGES.size(); s++) {
            ms[i][s][r] = res.timingsMs().get(STAGES.get(s));
          }
          if (last[i] != null) {
            stableTokens &= Arrays.equals(last[i].tokenIds(), res.tokenIds());
          }
          last[i] = res;
        }
      }
      double systemLoad1 = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();

      ObjectNode o = JSON.createObjectNode();
      o.put("bundle", bundle.toAbsolutePath().toString());
      o.put("image", image.toString());
      o.put("prompt", prompt);
      o.put("rounds", rounds);
      o.put("warmup_rounds", warmup);
      o.put("new_tokens", newTokens);
      o.put("ort_threads", threads);
      o.put("cpus", Runtime.getRuntime().availableProcessors());
      o.put("load_average_start", Stats.round(systemLoad0));
      o.put("load_average_end", Stats.round(systemLoad1));
      o.put("open_seconds", Stats.round(openSeconds));
      o.put("same_tokens_every_round", stableTokens);
      ModelShape shape = rt.shape();
      o.put("visual_tokens_in", last[0].visualTokensIn());
      o.put("vit_layers_run", shape.visionFeatureLayer() + 1);
      o.put("lm_layers", shape.lmLayers());
      int base = names.indexOf("empty");
      double[] baseMs = medians(ms[base]);
      double[] baseFlops = stageFlops(last[base]);
      ObjectNode share = o.putObject("empty_plan_share_of_total");
      for (int s = 0; s < STAGES.size() - 1; s++) {
        share.put(STAGES.get(s), Stats.round(baseMs[s] / baseMs[STAGES.size() - 1]));
      }
      ArrayNode rows = o.putArray("plans");
      for (int i = 0; i < p; i++) {
        ObjectNode row = rows.addObject();
        row.put("name", names.get(i));
        row.put("plan", plans.get(names.get(i)).toJson());
        row.put("visual_tokens_kept", last[i].visualTokensKept());
        row.put("kv_length_last_layer", kvLength(last[i]));
        row.set("vit_rows_per_layer", vitTokens(last[i]));
        double[] med = medians(ms[i]);
        double[] fl = stageFlops(last[i]);
        ObjectNode m = row.putObject("median_ms");
        ObjectNode g = row.putObject("gflops");
        ObjectNode sp = row.putObject("speedup");
        ObjectNode red = row.putObject("flops_reduction");
        ObjectNode eff = row.putObject("speedup_over_flops_reduction");
        for (int s = 0; s < STAGES.size(); s++) {
          String st = STAGES.get(s);
          m.put(st, Stats.round(med[s]));
          g.put(st, Stats.round(fl[s] / 1e9));
          double speed = baseMs[s] / med[s];
          double reduction = baseFlops[s] / fl[s];
          sp.put(st, Stats.round(speed));
          red.put(st, Stats.round(reduction));
          eff.put(st, Stats.round(speed / reduction));
        }
        // process CPU time (ORT's threads included): what a loaded machine inflates least
        double cpu = Stats.median(cpuMs[i]);
        double baseCpu = Stats.median(cpuMs[base]);
        row.put("median_process_cpu_ms", Stats.round(cpu));
        if (cpu > 0 && baseCpu > 0) {
          row.put(
              "cpu_speedup_over_flops_reduction",
              Stats.round(baseCpu / cpu / (baseFlops[3] / fl[3])));
        } else {
          row.putNull(
              "cpu_speedup_over_flops_reduction"); // requests shorter than the CPU clock's tick
        }
        row.put("answer_token_ids", Arrays.toString(last[i].tokenIds()));
        row.put("kv_bytes", last[i].kvCache() == null ? 0 : last[i].kvCache().storedBytes());
        row.put("median_decode_ms_per_token", Stats.round(Stats.median(decodeTokenMs[i])));
        row.put(
            "median_decode_attention_ms_per_token", Stats.round(Stats.median(attentionTokenMs[i])));
      }
      System.err.print(table(o));
      try {
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o);
      } catch (JsonProcessingException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  /**
   * The default comparison at {@code keep} visual tokens. Where the operators include MustDrop
   * (issue 10), also its stage A alone ({@code mustdrop-a}: the 3×3 window merge after ViT block 0
   * in its {@code retained_tokens} mode, which fixes the number of merged windows for {@code keep}
   * tokens), the MustDrop part that acts inside the ViT; its LM-side stages depend on attention
   * shares, not on a budget, and run with {@code --plans}.
   */
  static Map<String, CompressionPlan> defaultPlans(ModelShape shape, int keep, int fastvLayer) {
    int patches = shape.numPatches();
    if (keep >= patches) {
      throw new UsageException(
          "--keep must be below the " + patches + " patches of this model, found " + keep);
    }
    if (fastvLayer < 1 || fastvLayer > shape.lmLayers() - 1) {
      throw new UsageException(
          "--fastv-layer must be in [1, "
              + (shape.lmLayers() - 1)
              + "] for this model's "
              + shape.lmLayers()
              + " LM layers, found "
              + fastvLayer);
    }
    int vitLayers = shape.visionFeatureLayer() + 1;
    // VTC-CLS reads the CLS attention of layers 16..L-2 by default; shallower towers use all layers
    // run.
    String vtcLayers = vitLayers > 16 ? "16..L-2" : "0.." + (vitLayers - 1);
    Map<String, CompressionPlan> plans = new LinkedHashMap<>();
    plans.put("empty", CompressionPlan.empty());
    plans.put(
        "vtc-cls",
        CompressionPlan.parse(
            "[{\"op\":\"vtc-cls\",\"keep\":" + keep + ",\"layers\":\"" + vtcLayers + "\"}]"));
    plans.put(
        "random-drop", CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":" + keep + "}]"));
    plans.put(
        "fastv",
        CompressionPlan.parse(
            "[{\"op\":\"fastv\",\"layer\":" + fastvLayer + ",\"keep\":" + keep + "}]"));
    String r = Arrays.toString(tomeSchedule(patches, vitLayers, keep)).replace(" ", "");
    plans.put("tome", CompressionPlan.parse("[{\"op\":\"tome\",\"r\":" + r + "}]"));
    // the same merges without proportional attention: what the attention_bias path costs in the ViT
    plans.put(
        "tome-no-prop-attn",
        CompressionPlan.parse("[{\"op\":\"tome\",\"r\":" + r + ",\"prop_attn\":false}]"));
    if (CompressionPlan.operatorNames().contains(MUSTDROP)) {
      plans.put(
          "mustdrop-a",
          CompressionPlan.parse(
              "[{\"op\":\""
                  + MUSTDROP
                  + "\",\"stage_b\":false,\"stage_c\":false,"
                  + "\"retained_tokens\":"
                  + keep
                  + "}]"));
    }
    return plans;
  }

  /**
   * ToMe's {@code r} per ViT layer so that {@code keep} patches remain after {@code layers} layers:
   * the merges spread as evenly as possible, the larger values first (ToMe merges a constant {@code
   * r}; a constant cannot hit every budget). Each stays within ToMe's limit of half the remaining
   * patches.
   */
  static int[] tomeSchedule(int patches, int layers, int keep) {
    int merges = patches - keep;
    int[] r = new int[layers];
    int t = patches;
    for (int l = 0; l < layers; l++) {
      r[l] = merges / layers + (l < merges % layers ? 1 : 0);
      if (r[l] > t / 2) {
        throw new UsageException(
            "--keep "
                + keep
                + " needs "
                + r[l]
                + " ToMe merges at ViT layer "
                + l
                + " where only "
                + t / 2
                + " are allowed (half of the "
                + t
                + " patches); choose a larger --keep");
      }
      t -= r[l];
    }
    return r;
  }

  static Map<String, CompressionPlan> parsePlans(String json) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new UsageException(
          "--plans must be a JSON object {\"name\": [plan], ...}: " + e.getMessage());
    }
    if (root == null || !root.isObject() || root.isEmpty()) {
      throw new UsageException(
          "--plans must be a non-empty JSON object {\"name\": [plan], ...}, found " + json);
    }
    Map<String, CompressionPlan> plans = new LinkedHashMap<>();
    plans.put("empty", CompressionPlan.empty());
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (e.getKey().equals("empty")) {
        throw new UsageException(
            "--plans: the name \"empty\" is reserved for the baseline, which always runs");
      }
      try {
        plans.put(e.getKey(), CompressionPlan.parse(e.getValue().toString()));
      } catch (IllegalArgumentException ex) {
        throw new UsageException("--plans." + e.getKey() + ": " + ex.getMessage());
      }
    }
    return plans;
  }

  private static long processCpuNanos() {
    java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
    return os instanceof com.sun.management.OperatingSystemMXBean sun
        ? sun.getProcessCpuTime()
        : 0L;
  }

  private static VlmRequest request(byte[] png, String prompt, CompressionPlan plan) {
    // one id: every round draws the same random-drop selection
    return VlmRequest.ofBytes("bench-plans", png, prompt).withPlan(plan).withoutStopTokens();
  }

  private static double[] medians(double[][] perStage) {
    double[] m = new double[perStage.length];
    for (int s = 0; s < m.length; s++) {
      m[s] = Stats.median(perStage[s]);
    }
    return m;
  }

  /** FLOPs in {@link #STAGES} order; total = vision + prefill + decode. */
  private static double[] stageFlops(VlmResult r) {
    double v = r.flops().get("vision");
    double pf = r.flops().get("prefill");
    double d = r.flops().get("decode");
    return new double[] {v, pf, d, v + pf + d};
  }

  private static int kvLength(VlmResult r) {
    var kv = r.kvCache();
    return kv == null ? -1 : kv.layer(kv.numLayers() - 1).length();
  }

  /**
   * Patch rows (CLS excluded) leaving each ViT layer that a VISION_LAYER operator reduced, as
   * "layer:rows".
   */
  private static ArrayNode vitTokens(VlmResult r) {
    ArrayNode a = JSON.createArrayNode();
    for (KeptMap k : r.keptMaps()) {
      if (k.hook() == dev.tokenpress.operators.api.Hook.VISION_LAYER) {
        a.add(k.layer() + ":" + k.kept().length);
      }
    }
    return a;
  }

  /** A Markdown table of the result (stderr), one row per plan. */
  static String table(JsonNode o) {
    StringBuilder b = new StringBuilder();
    b.append(
        "| plan | visual tokens | vision ms | prefill ms | decode ms | total ms | GFLOPs vision / prefill / decode"
            + " | speedup ÷ FLOPs reduction: vision | prefill | end to end | end to end by CPU time |\n"
            + "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (JsonNode row : o.get("plans")) {
      JsonNode m = row.get("median_ms");
      JsonNode g = row.get("gflops");
      JsonNode e = row.get("speedup_over_flops_reduction");
      JsonNode sp = row.get("speedup");
      JsonNode red = row.get("flops_reduction");
      b.append(
          String.format(
              Locale.ROOT,
              "| %s | %d | %.0f | %.0f | %.0f | %.0f | %.1f / %.1f / %.1f | %s | %s | %s | %.2f |%n",
              row.get("name").asText(),
              row.get("visual_tokens_kept").asInt(),
              m.get("vision").asDouble(),
              m.get("prefill").asDouble(),
              m.get("decode").asDouble(),
              m.get("total").asDouble(),
              g.get("vision").asDouble(),
              g.get("prefill").asDouble(),
              g.get("decode").asDouble(),
              cell(sp, red, e, "vision"),
              cell(sp, red, e, "prefill"),
              cell(sp, red, e, "total"),
              row.get("cpu_speedup_over_flops_reduction").asDouble(Double.NaN)));
    }
    return b.toString();
  }

  private static String cell(JsonNode speed, JsonNode reduction, JsonNode eff, String stage) {
    return String.format(
        Locale.ROOT,
        "%.2f (%.2f× / %.2f×)",
        eff.get(stage).asDouble(),
        speed.get(stage).asDouble(),
        reduction.get(stage).asDouble());
  }
}
