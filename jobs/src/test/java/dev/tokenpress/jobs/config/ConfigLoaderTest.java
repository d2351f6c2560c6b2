package dev.tokenpress.jobs.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.jobs.compress.PlanSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Config binding: defaults, file, overrides, and errors that name the field and allowed values. */
class ConfigLoaderTest {
  @TempDir Path tmp;

  private Path yaml(String text) throws IOException {
    return Files.writeString(tmp.resolve("c.yaml"), text);
  }

  @Test
  void embeddedDefaultBindsWithTheDemoSettings() {
    JobConfig c = ConfigLoader.load(null, List.of());
    assertThat(c.input().format()).isEqualTo(InputFormat.DIRECTORY);
    assertThat(c.model().bundle()).isEqualTo("models/tiny-llava-shapes");
    assertThat(c.spark().master()).isEqualTo("local[2]");
    assertThat(c.output().batchRows()).isEqualTo(50000);
    assertThat(c.kv().dtype()).isEqualTo(KvStorage.FLOAT16);
  }

  @Test
  void fileThenOverridesWinOverDefaults() throws IOException {
    Path f = yaml("input: {format: jsonl, path: /data/m.jsonl, prompt: hi, columns: {path: image}}\n"
        + "model: {bundle: /models/b}\noutput: {path: /out, batchRows: 100}\n");
    JobConfig c = ConfigLoader.load(f, List.of("output.batchRows=7", "run.failFast=true", "input.glob=*.{png,jpg}",
        "spark.conf.spark.sql.shuffle.partitions=8", "plan=[{op: fastv, layer: 2, drop_ratio: 0.5}]"));
    assertThat(c.input().format()).isEqualTo(InputFormat.JSONL);
    assertThat(c.input().columns().path()).isEqualTo("image");
    assertThat(c.input().columns().id()).isEqualTo("id");
    assertThat(c.output().batchRows()).isEqualTo(7);
    assertThat(c.run().failFast()).isTrue();
    assertThat(c.input().glob()).isEqualTo("*.{png,jpg}");
    assertThat(c.spark().conf()).containsEntry("spark.sql.shuffle.partitions", "8");
    assertThat(PlanSpec.of(c.plan()).json()).contains("\"op\":\"fastv\"");
    assertThat(ConfigLoader.canonicalJson(c)).isEqualTo(ConfigLoader.canonicalJson(ConfigLoader.load(f, List.of(
        "output.batchRows=7", "run.failFast=true", "input.glob=*.{png,jpg}",
        "spark.conf.spark.sql.shuffle.partitions=8", "plan=[{op: fastv, layer: 2, drop_ratio: 0.5}]"))));
  }

  @Test
  void unknownKeyInFileNamesItAndTheAllowedKeys() throws IOException {
    Path f = yaml("output: {pth: /x}\n");
    assertThatThrownBy(() -> ConfigLoader.load(f, List.of()))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("output.pth")
        .hasMessageContaining("allowed keys")
        .hasMessageContaining("batchRows")
        .hasMessageContaining("path");
  }

  @Test
  void unknownOverrideKeyNamesTheAllowedKeys() {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("model.bundel=x")))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("model.bundel")
        .hasMessageContaining("bundle, intraOpThreads, maxNewTokens, maxPixels, seed, sharedWorkers, workers");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("nosuch.key=1")))
        .hasMessageContaining("unknown key 'nosuch'");
  }

  @Test
  void badEnumValueListsTheAllowedValues() {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.mode=append")))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("output.mode")
        .hasMessageContaining("resume, overwrite, error-if-exists");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("kv.dtype=int3")))
        .hasMessageContaining("kv.dtype").hasMessageContaining("float32, float16");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("input.format=csv")))
        .hasMessageContaining("input.format").hasMessageContaining("directory, jsonl, parquet");
  }

  @Test
  void outOfRangeAndWrongTypeValuesNameTheField() {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.batchRows=0")))
        .hasMessageContaining("output.batchRows").hasMessageContaining(">= 1");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("model.maxNewTokens=lots")))
        .hasMessageContaining("model.maxNewTokens");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("run.failFast=maybe")))
        .hasMessageContaining("run.failFast");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("input.prompt=", "input.format=directory")))
        .hasMessageContaining("input.prompt").hasMessageContaining("required");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.path=")))
        .hasMessageContaining("output.path").hasMessageContaining("required");
  }

  @Test
  void badPlanFailsAtStartNamingTheOperators() {
    JobConfig c = ConfigLoader.load(null, List.of("plan=[{op: magic, keep: 3}]"));
    assertThatThrownBy(() -> PlanSpec.of(c.plan()))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("config plan")
        .hasMessageContaining("fastv");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("plan={op: fastv}")))
        .hasMessageContaining("plan").hasMessageContaining("list");
  }
}
