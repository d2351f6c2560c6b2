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
  private static final String MINIMAL =
      "input: {path: /data, prompt: hi}\nmodel: {bundle: /models/b}\n";
  private static final String WITH_OUTPUT = MINIMAL + "output: {path: /out}\n";

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
    Path f =
        yaml(
            "input: {format: jsonl, path: /data/m.jsonl, prompt: hi, columns: {path: image}}\n"
                + "model: {bundle: /models/b}\noutput: {path: /out, batchRows: 100}\n");
    JobConfig c =
        ConfigLoader.load(
            f,
            List.of(
                "output.batchRows=7",
                "run.failFast=true",
                "input.glob=*.{png,jpg}",
                "spark.conf.spark.sql.shuffle.partitions=8",
                "plan=[{op: fastv, layer: 2, drop_ratio: 0.5}]"));
    assertThat(c.input().format()).isEqualTo(InputFormat.JSONL);
    assertThat(c.input().columns().path()).isEqualTo("image");
    assertThat(c.input().columns().id()).isEqualTo("id");
    assertThat(c.output().batchRows()).isEqualTo(7);
    assertThat(c.run().failFast()).isTrue();
    assertThat(c.input().glob()).isEqualTo("*.{png,jpg}");
    assertThat(c.spark().conf()).containsEntry("spark.sql.shuffle.partitions", "8");
    assertThat(PlanSpec.of(c.plan()).json()).contains("\"op\":\"fastv\"");
    assertThat(ConfigLoader.canonicalJson(c))
        .isEqualTo(
            ConfigLoader.canonicalJson(
                ConfigLoader.load(
                    f,
                    List.of(
                        "output.batchRows=7",
                        "run.failFast=true",
                        "input.glob=*.{png,jpg}",
                        "spark.conf.spark.sql.shuffle.partitions=8",
                        "plan=[{op: fastv, layer: 2, drop_ratio: 0.5}]"))));
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
        .hasMessageContaining(
            "bundle, intraOpThreads, maxNewTokens, maxPixels, seed, sharedWorkers, workers");
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
        .hasMessageContaining("kv.dtype")
        .hasMessageContaining("float32, float16");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("input.format=csv")))
        .hasMessageContaining("input.format")
        .hasMessageContaining("directory, jsonl, parquet");
  }

  @Test
  void outOfRangeAndWrongTypeValuesNameTheField() {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.batchRows=0")))
        .hasMessageContaining("output.batchRows")
        .hasMessageContaining(">= 1");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("model.maxNewTokens=lots")))
        .hasMessageContaining("model.maxNewTokens");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("run.failFast=maybe")))
        .hasMessageContaining("run.failFast");
    assertThatThrownBy(
            () -> ConfigLoader.load(null, List.of("input.prompt=", "input.format=directory")))
        .hasMessageContaining("input.prompt")
        .hasMessageContaining("required");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.path=")))
        .hasMessageContaining("output.path")
        .hasMessageContaining("required");
  }

  @Test
  void badPlanFailsAtLoadNamingTheOperators() {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("plan=[{op: magic, keep: 3}]")))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("config plan: plan[0]: unknown operator \"magic\"")
        .hasMessageContaining("random-drop, vtc-cls, fastv");
    assertThatThrownBy(
            () -> ConfigLoader.load(null, List.of("plan=[{op: fastv, layer: 2, kep: 3}]")))
        .hasMessageContaining("config plan: plan[0]: fastv: unknown key \"kep\"");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("plan=[{op: vtc-cls, keep: 1.5}]")))
        .hasMessageContaining("vtc-cls.keep must be an integer, got 1.5");
  }

  @Test
  void aPlanThatIsNotAListSaysWhatAPlanLooksLike() throws IOException {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("plan=fastv")))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("config plan: must be a list of operators, got the text 'fastv'")
        .hasMessageContaining(
            "[{op: vtc-cls, keep: 64, layers: \"1..L-2\"}, {op: fastv, layer: 2, drop_ratio: 0.5}]")
        .hasMessageContaining("operators: random-drop, vtc-cls, fastv");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("plan={op: fastv}")))
        .hasMessageStartingWith(
            "config plan: must be a list of operators, got a single object (wrap it in [ ])");
    // A JSON/YAML typo is reported as such, not as "got a string".
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("plan=[{op: fastv, layer: 2]")))
        .hasMessageStartingWith("config plan: '[{op: fastv, layer: 2]' is not valid YAML/JSON (")
        .hasMessageContaining("a plan is a YAML/JSON list of operator objects");
    assertThatThrownBy(
            () -> ConfigLoader.load(null, List.of("plan=[{\"op\": \"fastv\", \"layer\": 2}")))
        .hasMessageContaining("is not valid YAML/JSON");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("plan=[fastv]")))
        .hasMessageContaining(
            "plan[0] must be an object with an \"op\" key (one of "
                + dev.tokenpress.operators.api.CompressionPlan.operatorNames()
                + ")");
    Path f = yaml(WITH_OUTPUT + "plan: vtc-cls\n");
    assertThatThrownBy(() -> ConfigLoader.load(f, List.of()))
        .hasMessageStartingWith("config plan: must be a list of operators, got the text 'vtc-cls'");
    // A glob, which YAML reads as a mapping, still works for a scalar setting.
    assertThat(ConfigLoader.load(null, List.of("input.glob=*.{png,jpg}")).input().glob())
        .isEqualTo("*.{png,jpg}");
  }

  @Test
  void integersMustBeIntegers() throws IOException {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.batchRows=1.5")))
        .isInstanceOf(ConfigException.class)
        .hasMessage("config output.batchRows: expected an integer, got 1.5");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.zstdLevel=3.7")))
        .hasMessage("config output.zstdLevel: expected an integer, got 3.7");
    assertThatThrownBy(
            () ->
                ConfigLoader.load(
                    yaml(MINIMAL + "output: {path: /out, rowsPerTask: 2.0e1}\n"), List.of()))
        .hasMessageStartingWith("config output.rowsPerTask: expected an integer, got 20");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("model.maxNewTokens=99999999999")))
        .hasMessage(
            "config model.maxNewTokens: expected an integer in [-2147483648, 2147483647], got 99999999999");
    assertThat(ConfigLoader.load(null, List.of("output.batchRows=7")).output().batchRows())
        .isEqualTo(7);
  }

  @Test
  void wrongTypesNameTheFieldTheExpectedTypeAndTheValueWithoutJacksonInternals() {
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.batchRows=abc")))
        .hasMessage("config output.batchRows: expected an integer, got 'abc'");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("run.failFast=abc")))
        .hasMessage("config run.failFast: expected a boolean (true or false), got 'abc'");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("input.recursive=1")))
        .hasMessage("config input.recursive: expected a boolean (true or false), got 1");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output=3")))
        .hasMessage("config output: expected a mapping of keys to values, got 3");
    assertThatThrownBy(() -> ConfigLoader.load(null, List.of("output.mode=3")))
        .hasMessage(
            "config output.mode: '3' is not allowed; allowed values: resume, overwrite, error-if-exists");
    for (String set :
        List.of("output.batchRows=abc", "run.failFast=abc", "model.seed=x", "input.maxBytes=[1]")) {
      assertThatThrownBy(() -> ConfigLoader.load(null, List.of(set)))
          .as(set)
          .isInstanceOf(ConfigException.class)
          .message()
          .doesNotContain("CoercionConfig")
          .doesNotContain("`")
          .doesNotContain("Cannot");
    }
  }
}
