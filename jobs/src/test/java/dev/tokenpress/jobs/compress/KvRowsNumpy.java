package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The independent check of written {@code kv_cache} rows: DuckDB reads them, and {@code
 * operators/src/test/python/check_kv_rows.py} (numpy, plus the PyArrow recipe of {@code KvCodecs})
 * dequantises and assembles every layer, per KV head where a chunk holds one.
 */
final class KvRowsNumpy {
  static final String PYTHON = "/usr/bin/python3";
  private static final ObjectMapper JSON = new ObjectMapper();

  private KvRowsNumpy() {}

  /** Whether {@link #PYTHON} has numpy. */
  static boolean available() {
    try {
      Process p =
          new ProcessBuilder(PYTHON, "-c", "import numpy").redirectErrorStream(true).start();
      return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** The kv_cache rows under {@code out}, read by DuckDB, with the columns the script needs. */
  static List<Map<String, Object>> query(Path out) {
    try (DuckDb db = new DuckDb()) {
      return db.query(
          "SELECT id, layer, chunk, kv_head, entries, precision, "
              + tensorColumns("k")
              + ", "
              + tensorColumns("v")
              + " FROM "
              + DuckDb.kv(out)
              + " ORDER BY id, layer, chunk");
    }
  }

  /**
   * Runs the script on {@code rows} (from {@link #query}); its output: per "id|layer" rows, k, v.
   */
  static JsonNode decode(List<Map<String, Object>> rows, Path project, Path tmp) throws Exception {
    StringBuilder lines = new StringBuilder();
    for (Map<String, Object> r : rows) {
      ObjectNode o = JSON.createObjectNode();
      o.put("id", (String) r.get("id"));
      o.put("layer", ((Number) r.get("layer")).intValue());
      o.put("chunk", ((Number) r.get("chunk")).intValue());
      if (r.get("kv_head") == null) {
        o.putNull("kv_head");
      } else {
        o.put("kv_head", ((Number) r.get("kv_head")).intValue());
      }
      o.set("entries", array(r.get("entries")));
      for (String t : new String[] {"k", "v"}) {
        ObjectNode x = o.putObject(t);
        x.put("data_hex", (String) r.get(t + "_hex"));
        x.set("shape", array(r.get(t + "_shape")));
        x.put("dtype", (String) r.get(t + "_dtype"));
        x.put("layout", (String) r.get(t + "_layout"));
        x.put("bits", ((Number) r.get(t + "_bits")).intValue());
        x.set("scales", array(r.get(t + "_scales")));
        x.set("zeros", array(r.get(t + "_zeros")));
        x.set("channel_scales", array(r.get(t + "_channel_scales")));
      }
      lines.append(JSON.writeValueAsString(o)).append('\n');
    }
    Path in = tmp.resolve("kv_rows.jsonl");
    Path decoded = tmp.resolve("kv_decoded.json");
    Files.writeString(in, lines.toString());
    Path script = project.resolve("operators/src/test/python/check_kv_rows.py");
    Process py =
        new ProcessBuilder(PYTHON, script.toString(), in.toString(), decoded.toString())
            .redirectErrorStream(true)
            .start();
    String pyOut = new String(py.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(py.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(py.exitValue()).as(pyOut).isZero();
    JsonNode out = JSON.readTree(decoded.toFile());
    assertThat(out.get("chunks").asInt()).isEqualTo(rows.size());
    return out;
  }

  /** Bit-for-bit equality of floats with the script's values. */
  static void assertFloats(float[] got, JsonNode want, String what) {
    assertThat(got).as(what).hasSize(want.size());
    for (int i = 0; i < got.length; i++) {
      assertThat(Float.floatToIntBits(got[i]))
          .as("%s[%d]: %s vs %s", what, i, got[i], want.get(i))
          .isEqualTo(Float.floatToIntBits((float) want.get(i).asDouble()));
    }
  }

  private static String tensorColumns(String t) {
    return "hex("
        + t
        + ".data) AS "
        + t
        + "_hex, "
        + t
        + ".shape AS "
        + t
        + "_shape, "
        + t
        + ".dtype AS "
        + t
        + "_dtype, "
        + t
        + ".layout AS "
        + t
        + "_layout, "
        + t
        + ".bits AS "
        + t
        + "_bits, "
        + t
        + ".scales AS "
        + t
        + "_scales, "
        + t
        + ".zeros AS "
        + t
        + "_zeros, "
        + t
        + ".channel_scales AS "
        + t
        + "_channel_scales";
  }

  private static ArrayNode array(Object a) {
    ArrayNode n = JSON.createArrayNode();
    for (Object x : (Object[]) a) {
      if (x instanceof Float f) {
        n.add(f);
      } else if (x instanceof Double d) {
        n.add(d);
      } else {
        n.add(((Number) x).longValue());
      }
    }
    return n;
  }
}
