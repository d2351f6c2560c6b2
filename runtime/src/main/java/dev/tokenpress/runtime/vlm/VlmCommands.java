package dev.tokenpress.runtime.vlm;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.runtime.media.DecodeOptions;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The VLM commands of {@code bin/tokenpress}: {@code generate} and {@code bench runtime}. Each
 * returns the JSON it prints; a bad command line throws {@link IllegalArgumentException} with a
 * message for the user (the launcher prints it with the usage and exits 2).
 */
public final class VlmCommands {
  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public static final String GENERATE_USAGE = "generate --bundle DIR --image FILE --prompt TEXT [--plan JSON|@FILE]\n"
      + "         [--max-new-tokens 64] [--threads 1] [--max-pixels N] [--id ID] [--seed N] [--fused]\n"
      + "  Answers one image + question with the VLM of a bundle (built by 'model build' from a LLaVA\n"
      + "  checkpoint) and prints answer, token_ids, visual_tokens_in, visual_tokens_kept, flops and\n"
      + "  timings_ms as JSON. --plan is a compression plan, e.g.\n"
      + "  '[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"1..L-2\"},{\"op\":\"fastv\",\"layer\":2}]'.";

  public static final String BENCH_USAGE = "bench runtime --bundle DIR --images DIR [--limit 200] [--new-tokens 16]\n"
      + "         [--threads 1] [--warmup 3] [--prompt TEXT]\n"
      + "  Split vs fused graphs (bundle built with --fused) on the same images, interleaved: vision +\n"
      + "  prefill + exactly --new-tokens tokens per image; prints split_ms_per_image, fused_ms_per_image,\n"
      + "  ratio, the vision-only figures and decode_tokens_per_s.";

  private VlmCommands() {}

  /** {@code generate}: see {@link #GENERATE_USAGE}. */
  public static String generate(String[] argv) {
    Map<String, String> a = parse(argv, Set.of("--bundle", "--image", "--prompt", "--plan", "--max-new-tokens",
        "--threads", "--max-pixels", "--id", "--seed"), Set.of("--fused"));
    Path bundle = Path.of(required(a, "--bundle"));
    Path image = Path.of(required(a, "--image"));
    String prompt = required(a, "--prompt");
    CompressionPlan plan = a.containsKey("--plan") ? CompressionPlan.parse(textOrFile(a.get("--plan")))
        : CompressionPlan.empty();
    int maxNew = integer(a, "--max-new-tokens", 64, 0);
    int threads = integer(a, "--threads", 1, 0);
    long maxPixels = a.containsKey("--max-pixels") ? integer(a, "--max-pixels", 0, 1) : DecodeOptions.DEFAULT.maxPixels();
    long seed = a.containsKey("--seed") ? Long.parseLong(a.get("--seed")) : 0L;
    if (!Files.isRegularFile(image)) {
      throw new IllegalArgumentException("--image " + image + " is not a file");
    }
    VlmOptions opts = new VlmOptions(new SessionConfig(threads, false), DecodeOptions.DEFAULT.withMaxPixels(maxPixels),
        maxNew, VlmOptions.defaults().kvPrecision(), seed, dev.tokenpress.runtime.bundle.Bundle.Verify.FULL,
        a.containsKey("--fused"));
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(image);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + image, e);
    }
    String id = a.getOrDefault("--id", image.getFileName().toString());
    try (VlmRuntime rt = VlmRuntime.open(bundle, opts)) {
      VlmResult r = rt.generate(VlmRequest.ofBytes(id, bytes, prompt).withPlan(plan));
      return write(toJson(r, plan));
    }
  }

  /** The JSON object of one result (also the row shape the Spark job writes). */
  public static ObjectNode toJson(VlmResult r, CompressionPlan plan) {
    ObjectNode o = JSON.createObjectNode();
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
    r.timingsMs().forEach((k, v) -> t.put(k, Math.round(v * 1000) / 1000.0));
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
    }
    return o;
  }

  /** {@code bench runtime}: see {@link #BENCH_USAGE}. */
  public static String benchRuntime(String[] argv) {
    Map<String, String> a = parse(argv, Set.of("--bundle", "--images", "--limit", "--new-tokens", "--threads",
        "--warmup", "--prompt"), Set.of());
    Path bundle = Path.of(required(a, "--bundle"));
    Path dir = Path.of(required(a, "--images"));
    int limit = integer(a, "--limit", 200, 1);
    List<byte[]> images = new ArrayList<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) s.filter(Files::isRegularFile)
          .filter(p -> p.getFileName().toString().matches("(?i).*\\.(png|jpe?g|gif|bmp)$")).sorted().limit(limit)::iterator) {
        images.add(Files.readAllBytes(p));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read images from " + dir, e);
    }
    if (images.isEmpty()) {
      throw new IllegalArgumentException("no PNG/JPEG/GIF/BMP images under --images " + dir);
    }
    VlmBench.Report r = VlmBench.run(bundle, images, a.getOrDefault("--prompt", "describe the image."),
        integer(a, "--new-tokens", 16, 1), integer(a, "--threads", 1, 0), integer(a, "--warmup", 3, 0));
    ObjectNode o = JSON.valueToTree(r.toMap());
    o.put("bundle", bundle.toAbsolutePath().toString());
    return write(o);
  }

  private static String textOrFile(String v) {
    if (!v.startsWith("@")) {
      return v;
    }
    try {
      return Files.readString(Path.of(v.substring(1)), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read plan file " + v.substring(1), e);
    }
  }

  private static Map<String, String> parse(String[] argv, Set<String> values, Set<String> flags) {
    Map<String, String> m = new HashMap<>();
    for (int i = 0; i < argv.length; i++) {
      String k = argv[i];
      if (flags.contains(k)) {
        m.put(k, "true");
      } else if (values.contains(k)) {
        if (i + 1 >= argv.length) {
          throw new IllegalArgumentException("missing value after " + k);
        }
        if (m.put(k, argv[++i]) != null) {
          throw new IllegalArgumentException(k + " given twice");
        }
      } else {
        throw new IllegalArgumentException("unknown option " + k);
      }
    }
    return m;
  }

  private static String required(Map<String, String> a, String k) {
    String v = a.get(k);
    if (v == null) {
      throw new IllegalArgumentException(k + " is required");
    }
    return v;
  }

  private static int integer(Map<String, String> a, String k, int dflt, int min) {
    String v = a.get(k);
    if (v == null) {
      return dflt;
    }
    int x;
    try {
      x = Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(k + " must be an integer, found '" + v + "'");
    }
    if (x < min) {
      throw new IllegalArgumentException(k + " must be >= " + min + ", found " + x);
    }
    return x;
  }

  private static String write(Object o) {
    try {
      return JSON.writeValueAsString(o);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
