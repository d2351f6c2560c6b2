package dev.tokenpress.runtime.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.convert.Llama2cTokenizer;
import dev.tokenpress.runtime.lm.FusedLlamaRuntime;
import dev.tokenpress.runtime.lm.GenerationResult;
import dev.tokenpress.runtime.lm.LlamaRuntime;
import dev.tokenpress.runtime.lm.LmRequest;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.util.Set;

/**
 * {@code tokenpress lm generate}: greedy LM-only generation from token ids (or text with a llama2.c
 * tokenizer), printing one JSON object.
 */
public final class LmGenerateCommand {
  static final String USAGE =
      "lm generate --bundle DIR (--prompt-ids 1,2,3 | --prompt TEXT --llama2c-tokenizer FILE)\n"
          + "            [--max-new-tokens 64] [--stop-ids ID,...] [--kv fp32|fp16] [--threads 1] [--fused]\n"
          + "  Greedy decoding with the language model of a bundle; prints token_ids, text (with a tokenizer),\n"
          + "  stop_reason, flops and timings_ms as JSON. Stop ids default to the bundle's EOS ids.";

  private LmGenerateCommand() {}

  public static String run(String[] argv) {
    Args a =
        new Args(
            argv,
            Set.of(
                "--bundle",
                "--prompt-ids",
                "--prompt",
                "--llama2c-tokenizer",
                "--max-new-tokens",
                "--stop-ids",
                "--kv",
                "--threads"),
            Set.of("--fused"));
    KvPrecision kv = parseKv(a.string("--kv", "fp32"));
    SessionConfig sc = new SessionConfig(a.integer("--threads", 1, 0), false);
    int maxNew = a.integer("--max-new-tokens", 64, 0);
    Bundle bundle = Bundle.open(a.path("--bundle"));
    Llama2cTokenizer tok =
        a.string("--llama2c-tokenizer", null) == null
            ? null
            : new Llama2cTokenizer(a.path("--llama2c-tokenizer"));
    int[] ids = a.ints("--prompt-ids");
    String prompt = a.string("--prompt", null);
    if ((ids == null) == (prompt == null)) {
      throw new UsageException("give exactly one of --prompt-ids and --prompt");
    }
    if (prompt != null) {
      if (tok == null) {
        throw new UsageException(
            "--prompt needs --llama2c-tokenizer (VLM bundles tokenize with their tokenizer.json)");
      }
      ids = tok.encode(prompt, true, false);
    }
    int[] stops = a.ints("--stop-ids");
    if (stops == null) {
      stops = bundle.lm().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
    }
    GenerationResult r;
    if (a.flag("--fused")) {
      try (FusedLlamaRuntime rt = FusedLlamaRuntime.open(bundle, sc)) {
        r =
            rt.generate(
                new LmRequest(
                    rt.embedding().embed(ids),
                    LmRequest.sequentialPositions(ids.length),
                    stops,
                    maxNew,
                    kv,
                    false));
      }
    } else {
      try (LlamaRuntime rt = LlamaRuntime.open(bundle, sc)) {
        r =
            rt.generate(
                new LmRequest(
                    rt.embedding().embed(ids),
                    LmRequest.sequentialPositions(ids.length),
                    stops,
                    maxNew,
                    kv,
                    false));
      }
    }
    ObjectNode o = Json.object();
    ArrayNode pid = o.putArray("prompt_ids");
    for (int i : ids) {
      pid.add(i);
    }
    ArrayNode out = o.putArray("token_ids");
    for (int i : r.tokenIds()) {
      out.add(i);
    }
    if (tok != null) {
      o.put("text", (prompt != null ? prompt : "") + tok.decode(ids[ids.length - 1], r.tokenIds()));
    }
    o.put("stop_reason", r.stopReason().name().toLowerCase());
    ObjectNode f = o.putObject("flops");
    f.put("prefill", r.flops().prefill());
    f.put("decode", r.flops().decode());
    f.put("total", r.flops().total());
    ObjectNode t = o.putObject("timings_ms");
    t.put("prefill", Json.round(r.timings().prefillMs()));
    t.put("decode", Json.round(r.timings().decodeMs()));
    t.put("decode_steps", r.timings().decodeSteps());
    if (r.kvCache() != null) {
      ArrayNode kvl = o.putArray("kv_lengths");
      for (int l : r.kvCache().lengths()) {
        kvl.add(l);
      }
      o.put("kv_bytes", r.kvCache().storedBytes());
    }
    return Json.write(o);
  }

  static KvPrecision parseKv(String s) {
    switch (s) {
      case "fp32":
        return KvPrecision.FP32;
      case "fp16":
        return KvPrecision.FP16;
      default:
        throw new UsageException("--kv must be fp32 or fp16, found '" + s + "'");
    }
  }
}
