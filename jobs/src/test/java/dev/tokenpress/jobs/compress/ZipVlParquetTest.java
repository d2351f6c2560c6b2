package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.api.Seeds;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.prune.ZipVl;
import dev.tokenpress.spark.KvCacheReader;
import dev.tokenpress.spark.TokenpressFunctions;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A ZipVL plan through the compress job: the mixed-precision KV cache written to Parquet, read back
 * by DuckDB and dequantised by an independent numpy script ({@code
 * operators/src/test/python/check_kv_rows.py}, which also runs the PyArrow recipe of {@code
 * KvCodecs}), must equal what {@link KvCacheReader} and {@code tp_kv_floats} return, with one
 * important set per layer ({@code heads: shared}) and one per KV head ({@code per_kv_head}).
 */
class ZipVlParquetTest {

  @ParameterizedTest(name = "heads {0}")
  @ValueSource(strings = {"shared", "per_kv_head"})
  void writtenMixedPrecisionCacheDequantisesIdenticallyInJavaSqlAndNumpy(
      String heads, @TempDir Path tmp) throws Exception {
    Path project = RealRuntimeEndToEndTest.project();
    Path model = project.resolve("models/tiny-llava-shapes");
    Path images = project.resolve("datasets/sample/images/shapes");
    assumeTrue(
        Files.isRegularFile(model.resolve("config.json")), "skipped: no bundled model at " + model);
    assumeTrue(Files.isDirectory(images), "skipped: no sample corpus at " + images);
    assumeTrue(
        KvRowsNumpy.available(), "skipped: " + KvRowsNumpy.PYTHON + " with numpy is not available");
    Path corpus = tmp.resolve("corpus");
    List<String> ids = new ArrayList<>();
    try (Stream<Path> s = Files.list(images)) {
      for (Path p : s.filter(Files::isRegularFile).sorted().limit(3).collect(Collectors.toList())) {
        TestImages.write(corpus.resolve(p.getFileName().toString()), Files.readAllBytes(p));
        ids.add(p.getFileName().toString());
      }
    }
    Path out = tmp.resolve("out");
    JobConfig config =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=" + corpus,
                "model.bundle=" + model,
                "model.maxNewTokens=12",
                "plan=[{op: zipvl, tau: 0.96, interval: 4, heads: " + heads + "}]",
                "kv.dtype=float16",
                "output.path=" + out,
                "output.mode=overwrite",
                "run.progressIntervalSeconds=5"));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    SparkSession spark = SparkTestSession.get();
    RunSummary sum =
        CompressJob.run(
            spark,
            config,
            VlmProcessorFactory.INSTANCE,
            new PrintStream(log, true, StandardCharsets.UTF_8));
    assertThat(sum.errors()).as(log.toString(StandardCharsets.UTF_8)).isZero();

    // DuckDB reads the files; numpy decodes them (per KV head where a chunk holds one)
    List<Map<String, Object>> kv = KvRowsNumpy.query(out);
    JsonNode numpy = KvRowsNumpy.decode(kv, project, tmp);
    boolean perHead = heads.equals("per_kv_head");
    for (Map<String, Object> r : kv) {
      assertThat(r.get("kv_head") != null)
          .as("kv_head of %s", r)
          .isEqualTo(perHead && !"FP16".equals(r.get("precision")));
    }

    TokenpressFunctions.register(spark);
    boolean sawMixed = false;
    for (String id : ids) {
      KvCache cache = KvCacheReader.load(spark, out.toString(), id);
      long recordSeed = Seeds.recordSeed(id, config.model().seed());
      for (int l = 0; l < cache.numLayers(); l++) {
        LayerKvCache layer = cache.layer(l);
        JsonNode want = numpy.get(id + "|" + l);
        assertThat(want).as(id + " layer " + l).isNotNull();
        assertThat(layer.length()).isEqualTo(want.get("rows").asInt());
        KvRowsNumpy.assertFloats(layer.keys(), want.get("k"), id + " layer " + l + " k");
        KvRowsNumpy.assertFloats(layer.values(), want.get("v"), id + " layer " + l + " v");
        KvCompressionInfo info = layer.compressionInfo();
        assertThat(info).isNotNull();
        assertThat(info.operator()).isEqualTo("zipvl");
        assertThat(info.tau()).isEqualTo(0.96);
        assertThat(info.heads()).isEqualTo(heads);
        assertThat(info.headImportant()).hasSize(perHead ? 2 : 0);
        assertThat(info.probeSeed()).isEqualTo(ZipVl.probeSeed(recordSeed, 0L, l));
        assertThat(info.important()).isBetween(Math.min(2, info.scored()), info.scored());
        // 12 new tokens at most, re-encoded every 4: fewer than 4 float entries remain
        assertThat(layer.trailingFloatEntries()).isBetween(0, 3);
      }
      for (Map<String, Object> r : kv) {
        if (r.get("id").equals(id) && !"FP16".equals(r.get("precision"))) {
          sawMixed |= "INT2".equals(r.get("precision"));
        }
      }
    }
    assertThat(sawMixed).as("some chunk holds 2-bit unimportant tokens").isTrue();

    // tp_kv_floats on the same rows, chunk by chunk, equals the numpy decoding (a per-head chunk
    // holds [rows, 1, head_dim]: its head's channels of the layer)
    spark.read().parquet(out.resolve("kv_cache").toString()).createOrReplaceTempView("zipvl_kv");
    List<Row> sql =
        spark
            .sql(
                "SELECT id, layer, entries, kv_head, tp_kv_floats(k) AS k FROM zipvl_kv"
                    + " WHERE precision = 'INT2'")
            .collectAsList();
    assertThat(sql).isNotEmpty();
    for (Row r : sql) {
      JsonNode want = numpy.get(r.getString(0) + "|" + r.getInt(1));
      List<Integer> entries = r.getList(2);
      List<Float> k = r.getList(4);
      int w = k.size() / entries.size();
      int width = want.get("k").size() / want.get("rows").asInt();
      int first = r.isNullAt(3) ? 0 : r.getInt(3) * w;
      for (int i = 0; i < entries.size(); i++) {
        for (int c = 0; c < w; c++) {
          assertThat(k.get(i * w + c))
              .isEqualTo((float) want.get("k").get(entries.get(i) * width + first + c).asDouble());
        }
      }
    }
  }

  @Test
  void anIntegerKvDtypeWithAQuantisingPlanIsRejectedAtStart() {
    JobConfig config =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=/nonexistent",
                "model.bundle=/nonexistent",
                "plan=[{op: vtc-cls, keep: 32}, {op: zipvl}]",
                "kv.dtype=int4",
                "output.path=/tmp/unused"));
    assertThatThrownBy(() -> Preflight.beforeSession(config, RuntimeFactories.forConfig(config)))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("kv.dtype")
        .hasMessageContaining("int4")
        .hasMessageContaining("plan[1] (zipvl)");
    JobConfig uniform =
        ConfigLoader.load(
            null,
            List.of(
                "input.path=/nonexistent",
                "model.bundle=/nonexistent",
                "plan=[{op: vtc-cls, keep: 32}]",
                "kv.dtype=int2",
                "output.path=/tmp/unused"));
    RuntimeFactories.checkKvDtype(uniform, PlanSpec.of(uniform.plan()));
    assertThat(RuntimeFactories.spec(uniform).kvPrecision().bits()).isEqualTo(2);
  }
}
