package dev.tokenpress.runtime.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.media.DecodeOptions;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRequest;
import dev.tokenpress.runtime.vlm.VlmResult;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * {@code tokenpress generate}: one image + question through the VLM of a bundle, one JSON object
 * out ({@code answer}, {@code token_ids}, {@code visual_tokens_in}, {@code visual_tokens_kept},
 * {@code flops}, {@code timings_ms}, plus stop reason, KV lengths, plan and kept counts).
 */
public final class GenerateCommand {
  static final String USAGE =
      "generate --bundle DIR --image FILE --prompt TEXT [--plan JSON|@FILE]\n"
          + "           [--max-new-tokens 64] [--threads 1] [--max-pixels N] [--id ID] [--seed N] [--fused]\n"
          + "  Answers one image + question with the VLM of a bundle built from a LLaVA checkpoint; prints\n"
          + "  answer, token_ids, visual_tokens_in, visual_tokens_kept, flops and timings_ms as JSON. --plan is\n"
          + "  a compression plan, e.g. '[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"1..L-2\"}]'; --fused runs the\n"
          + "  single-graph vision tower and decoder (no plan). Bad images fail with their reason (TRUNCATED, ...).";

  private GenerateCommand() {}

  public static String run(String[] argv) {
    Args a =
        new Args(
            argv,
            Set.of(
                "--bundle",
                "--image",
                "--prompt",
                "--plan",
                "--max-new-tokens",
                "--threads",
                "--max-pixels",
                "--id",
                "--seed"),
            Set.of("--fused"));
    Path bundle = a.path("--bundle");
    Path image = a.path("--image");
    String prompt = a.required("--prompt");
    String planText = a.string("--plan", null);
    CompressionPlan plan =
        planText == null ? CompressionPlan.empty() : CompressionPlan.parse(textOrFile(planText));
    int maxNew = a.integer("--max-new-tokens", 64, 0);
    int threads = a.integer("--threads", 1, 0);
    long maxPixels =
        a.integer(
            "--max-pixels",
            (int) Math.min(Integer.MAX_VALUE, DecodeOptions.DEFAULT.maxPixels()),
            1);
    long seed;
    try {
      seed = Long.parseLong(a.string("--seed", "0"));
    } catch (NumberFormatException e) {
      throw new UsageException("--seed must be an integer");
    }
    if (!Files.isRegularFile(image)) {
      throw new UsageException("--image " + image + " is not a file");
    }
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(image);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + image, e);
    }
    VlmOptions opts =
        new VlmOptions(
            new SessionConfig(threads, false),
            DecodeOptions.DEFAULT.withMaxPixels(maxPixels),
            maxNew,
            VlmOptions.defaults().kvPrecision(),
            seed,
            Bundle.Verify.FULL,
            a.flag("--fused"));
    try (VlmRuntime rt = VlmRuntime.open(bundle, opts)) {
      VlmResult r =
          rt.generate(
              VlmRequest.ofBytes(a.string("--id", image.getFileName().toString()), bytes, prompt)
                  .withPlan(plan));
      return Json.write(toJson(r, plan));
    }
  }

  /** The JSON object of one result. */
  static ObjectNode toJson(VlmResult r, CompressionPlan plan) {
    ObjectNode o = Json.object();
    o.put("answer", r.answer());
    ArrayNode ids = o.putArray("token_ids");
    for (int t : r.tokenIds()) {
      ids.add(t);
    }
    o.put("stop_reason", r.stopReason().name().toLowerCase(Locale.ROOT));
    o.put("visual_tokens_in", r.visualTokensIn());
    o.put("visual_tokens_kept", r.visualTokensKept());
    o.put("prompt_tokens", r.promptIds().length);
    o.put("prefill_rows", r.prefillLayout().length());
    ObjectNode f = o.putObject("flops");
    r.flops().forEach(f::put);
    ObjectNode t = o.putObject("timings_ms");
    r.timingsMs().forEach((k, v) -> t.put(k, Json.round(v)));
    ArrayNode kv = o.putArray("kv_lengths");
    if (r.kvCache() != null) {
      for (int len : r.kvCache().lengths()) {
        kv.add(len);
      }
    }
    o.put("plan", plan.toJson());
    o.put("plan_hash", plan.planHash());
    ArrayNode maps = o.putArray("kept");
    for (KeptMap m : r.keptMaps()) {
      ObjectNode k = maps.addObject();
      k.put("operator", m.operator());
      k.put("hook", m.hook().name());
      k.put("layer", m.layer());
      k.put("input", m.inputCount());
      k.put("kept", m.original().length);
      k.put("merged", m.merged());
    }
    if (!r.operatorStats().isEmpty()) {
      ArrayNode st =
          o.putArray("operator_stats"); // e.g. VAR's sinks per layer, CMAI's inhibited pairs
      for (dev.tokenpress.operators.api.OperatorStat s : r.operatorStats()) {
        ObjectNode x = st.addObject();
        x.put("operator", s.operator());
        x.put("layer", s.layer());
        x.put("name", s.name());
        ArrayNode v = x.putArray("values");
        for (long y : s.values()) {
          v.add(y);
        }
      }
    }
    if (r.provenance() != null && r.provenance().merged()) {
      ArrayNode sizes = o.putArray("visual_token_sizes"); // patches per visual token, in LM order
      for (int v = 0; v < r.provenance().count(); v++) {
        sizes.add(r.provenance().size(v));
      }
    }
    return o;
  }

  static String textOrFile(String v) {
    if (!v.startsWith("@")) {
      return v;
    }
    try {
      return Files.readString(Path.of(v.substring(1)), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UsageException("cannot read plan file " + v.substring(1) + ": " + e.getMessage());
    }
  }
}
