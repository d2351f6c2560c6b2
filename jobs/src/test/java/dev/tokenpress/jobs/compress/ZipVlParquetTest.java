package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.prune.ZipVl;
import dev.tokenpress.spark.KvCache;
import dev.tokenpress.spark.KvCacheReader;
import dev.tokenpress.spark.KvLayer;
import dev.tokenpress.spark.TokenpressFunctions;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A ZipVL plan through the compress job: the mixed-precision KV cache written to Parquet, read
 * back by DuckDB and dequantised by an independent numpy script
 * ({@code operators/src/test/python/check_kv_rows.py}, which also runs the PyArrow recipe of
 * {@code KvCodecs}), must equal what {@link KvCacheReader} and {@code tp_kv_floats} return.
 */
class ZipVlParquetTest {
  static final String PLAN = "[{op: zipvl, tau: 0.96, interval: 4}]";
  static final String PYTHON = "/usr/bin/python3";

  @Test
  void writtenMixedPrecisionCacheDequantisesIdenticallyInJavaSqlAndNumpy(@TempDir Path tmp) throws Exception {
    Path project = RealRuntimeEndToEndTest.project();
    Path model = project.resolve("models/tiny-llava-shapes");
    Path images = project.resolve("datasets/sample/images/shapes");
    Path script = project.resolve("operators/src/test/python/check_kv_rows.py");
    assumeTrue(Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    assumeTrue(Files.isDirectory(images), "skipped: no sample corpus at " + images);
    assumeTrue(numpyAvailable(), "skipped: " + PYTHON + " with numpy is not available");
    Path corpus = tmp.resolve("corpus");
    List<String> ids = new ArrayList<>();
    try (Stream<Path> s = Files.list(images)) {
      for (Path p : s.filter(Files::isRegularFile).sorted().limit(3).collect(Collectors.toList())) {
        TestImages.write(corpus.resolve(p.getFileName().toString()), Files.readAllBytes(p));
        ids.add(p.getFileName().toString());
      }
    }
    Path out = tmp.resolve("out");
    JobConfig config = ConfigLoader.load(null, List.of(
        "input.path=" + corpus, "model.bundle=" + model, "model.maxNewTokens=12", "plan=" + PLAN,
        "kv.dtype=float16", "output.path=" + out, "output.mode=overwrite", "run.progressIntervalSeconds=5"));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    SparkSession spark = SparkTestSession.get();
    RunSummary sum = CompressJob.run(spark, config, VlmProcessorFactory.INSTANCE,
        new PrintStream(log, true, StandardCharsets.UTF_8));
    assertThat(sum.errors()).as(log.toString(StandardCharsets.UTF_8)).isZero();

    // DuckDB reads the files; numpy decodes them
    Path rows = tmp.resolve("rows.jsonl");
    ObjectMapper json = new ObjectMapper();
    List<Map<String, Object>> kv;
    try (DuckDb db = new DuckDb()) {
      kv = db.query("SELECT id, layer, chunk, entries, precision, trailing_float, compression.tau AS tau, "
          + "compression.probe_seed AS probe_seed, compression.ratio_count AS p, compression.important AS important, "
          + "compression.scored AS scored, compression.mode AS mode, "
          + tensorColumns("k") + ", " + tensorColumns("v") + " FROM " + DuckDb.kv(out) + " ORDER BY id, layer, chunk");
    }
    StringBuilder lines = new StringBuilder();
    for (Map<String, Object> r : kv) {
      ObjectNode o = json.createObjectNode();
      o.put("id", (String) r.get("id"));
      o.put("layer", ((Number) r.get("layer")).intValue());
      o.put("chunk", ((Number) r.get("chunk")).intValue());
      o.set("entries", array(json, r.get("entries")));
      for (String t : new String[] {"k", "v"}) {
        ObjectNode x = o.putObject(t);
        x.put("data_hex", (String) r.get(t + "_hex"));
        x.set("shape", array(json, r.get(t + "_shape")));
        x.put("dtype", (String) r.get(t + "_dtype"));
        x.put("layout", (String) r.get(t + "_layout"));
        x.put("bits", ((Number) r.get(t + "_bits")).intValue());
        x.set("scales", array(json, r.get(t + "_scales")));
        x.set("zeros", array(json, r.get(t + "_zeros")));
        x.set("channel_scales", array(json, r.get(t + "_channel_scales")));
      }
      lines.append(json.writeValueAsString(o)).append('\n');
    }
    Files.writeString(rows, lines.toString());
    Path decoded = tmp.resolve("decoded.json");
    Process py = new ProcessBuilder(PYTHON, script.toString(), rows.toString(), decoded.toString())
        .redirectErrorStream(true).start();
    String pyOut = new String(py.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(py.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(py.exitValue()).as(pyOut).isZero();
    JsonNode numpy = json.readTree(decoded.toFile());
    assertThat(numpy.get("chunks").asInt()).isEqualTo(kv.size());

    TokenpressFunctions.register(spark);
    boolean sawMixed = false;
    for (String id : ids) {
      KvCache cache = KvCacheReader.load(spark, out.toString(), id);
      long recordSeed = Seeds.recordSeed(id, config.model().seed());
      for (KvLayer layer : cache.layers()) {
        JsonNode want = numpy.get(id + "|" + layer.layer());
        assertThat(want).as(id + " layer " + layer.layer()).isNotNull();
        assertThat(layer.length()).isEqualTo(want.get("rows").asInt());
        assertFloats(layer.k(), want.get("k"), id + " layer " + layer.layer() + " k");
        assertFloats(layer.v(), want.get("v"), id + " layer " + layer.layer() + " v");
        KvCompressionInfo info = layer.compression();
        assertThat(info).isNotNull();
        assertThat(info.operator()).isEqualTo("zipvl");
        assertThat(info.tau()).isEqualTo(0.96);
        assertThat(info.probeSeed()).isEqualTo(ZipVl.probeSeed(recordSeed, 0L, layer.layer()));
        assertThat(info.important()).isBetween(Math.min(2, info.scored()), info.scored());
        // 12 new tokens at most, re-encoded every 4: fewer than 4 float entries remain
        assertThat(layer.trailingFloat()).isBetween(0, 3);
      }
      for (Map<String, Object> r : kv) {
        if (r.get("id").equals(id) && !"FP16".equals(r.get("precision"))) {
          sawMixed |= "INT2".equals(r.get("precision"));
        }
      }
    }
    assertThat(sawMixed).as("some chunk holds 2-bit unimportant tokens").isTrue();

    // tp_kv_floats on the same rows, chunk by chunk, equals the numpy decoding
    spark.read().parquet(out.resolve("kv_cache").toString()).createOrReplaceTempView("zipvl_kv");
    List<Row> sql = spark.sql("SELECT id, layer, entries, tp_kv_floats(k) AS k FROM zipvl_kv WHERE precision = 'INT2'")
        .collectAsList();
    assertThat(sql).isNotEmpty();
    for (Row r : sql) {
      JsonNode want = numpy.get(r.getString(0) + "|" + r.getInt(1));
      List<Integer> entries = r.getList(2);
      List<Float> k = r.getList(3);
      int w = k.size() / entries.size();
      for (int i = 0; i < entries.size(); i++) {
        for (int c = 0; c < w; c++) {
          assertThat(k.get(i * w + c)).isEqualTo((float) want.get("k").get(entries.get(i) * w + c).asDouble());
        }
      }
    }
  }

  @Test
  void anIntegerKvDtypeWithAQuantisingPlanIsRejectedAtStart() {
    JobConfig config = ConfigLoader.load(null, List.of("input.path=/nonexistent", "model.bundle=/nonexistent",
        "plan=[{op: vtc-cls, keep: 32}, {op: zipvl}]", "kv.dtype=int4", "output.path=/tmp/unused"));
    assertThatThrownBy(() -> Preflight.beforeSession(config, RuntimeFactories.forConfig(config)))
        .isInstanceOf(ConfigException.class).hasMessageContaining("kv.dtype").hasMessageContaining("int4")
        .hasMessageContaining("plan[1] (zipvl)");
    JobConfig uniform = ConfigLoader.load(null, List.of("input.path=/nonexistent", "model.bundle=/nonexistent",
        "plan=[{op: vtc-cls, keep: 32}]", "kv.dtype=int2", "output.path=/tmp/unused"));
    RuntimeFactories.checkKvDtype(uniform, PlanSpec.of(uniform.plan()));
    assertThat(RuntimeFactories.spec(uniform).kvPrecision().bits()).isEqualTo(2);
  }

  private static String tensorColumns(String t) {
    return "hex(" + t + ".data) AS " + t + "_hex, " + t + ".shape AS " + t + "_shape, " + t + ".dtype AS " + t
        + "_dtype, " + t + ".layout AS " + t + "_layout, " + t + ".bits AS " + t + "_bits, " + t + ".scales AS " + t
        + "_scales, " + t + ".zeros AS " + t + "_zeros, " + t + ".channel_scales AS " + t + "_channel_scales";
  }

  private static ArrayNode array(ObjectMapper json, Object a) {
    ArrayNode n = json.createArrayNode();
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

  private static void assertFloats(float[] got, JsonNode want, String what) {
    assertThat(got).as(what).hasSize(want.size());
    for (int i = 0; i < got.length; i++) {
      assertThat(got[i]).as("%s[%d]", what, i).isEqualTo((float) want.get(i).asDouble());
    }
  }

  private static boolean numpyAvailable() {
    try {
      Process p = new ProcessBuilder(PYTHON, "-c", "import numpy").redirectErrorStream(true).start();
      return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
