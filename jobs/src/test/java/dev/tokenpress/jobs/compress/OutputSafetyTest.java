package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.OutputMode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Nothing at {@code output.path} that tokenpress did not write is ever deleted or replaced. */
class OutputSafetyTest {
  private final SparkSession spark = SparkTestSession.get();
  private final PrintStream log =
      new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);

  @Test
  void theEmbeddedDefaultResumes() {
    assertThat(ConfigLoader.load(null, List.of()).output().mode()).isEqualTo(OutputMode.RESUME);
  }

  @Test
  void noModeTouchesADirectoryOfTheUsersFiles(@TempDir Path tmp) throws IOException {
    Path corpus = tmp.resolve("corpus");
    CompressJobTest.writeCorpus(corpus, 2);
    Path out = tmp.resolve("p");
    Files.createDirectories(out.resolve("sub"));
    Files.writeString(out.resolve("thesis.tex"), "x");
    Files.writeString(out.resolve("sub/notes.txt"), "y");

    for (String mode : List.of("overwrite", "resume", "error-if-exists")) {
      assertThatThrownBy(() -> run(corpus, out, "output.mode=" + mode))
          .isInstanceOf(ConfigException.class)
          .hasMessageContaining("thesis.tex")
          .hasMessageContaining(mode.equals("overwrite") ? "output.mode" : "output.");
    }
    assertThat(Files.readString(out.resolve("thesis.tex"))).isEqualTo("x");
    assertThat(Files.readString(out.resolve("sub/notes.txt"))).isEqualTo("y");
    try (Stream<Path> s = Files.list(out)) {
      assertThat(s.map(p -> p.getFileName().toString()))
          .containsExactlyInAnyOrder("thesis.tex", "sub");
    }
  }

  @Test
  void aFileAtTheOutputPathIsRefusedInEveryMode(@TempDir Path tmp) throws IOException {
    Path corpus = tmp.resolve("corpus");
    CompressJobTest.writeCorpus(corpus, 2);
    Path out = tmp.resolve("results.parquet");
    Files.writeString(out, "precious");

    for (String mode : List.of("overwrite", "resume", "error-if-exists")) {
      assertThatThrownBy(() -> run(corpus, out, "output.mode=" + mode))
          .isInstanceOf(ConfigException.class)
          .hasMessageContaining("output.path")
          .hasMessageContaining("is a file");
    }
    assertThat(Files.readString(out)).isEqualTo("precious");
  }

  @Test
  void overwriteReplacesATokenpressOutputButNotOneWithForeignFiles(@TempDir Path tmp)
      throws IOException {
    Path corpus = tmp.resolve("corpus");
    CompressJobTest.writeCorpus(corpus, 3);
    Path out = tmp.resolve("out");
    run(corpus, out);
    String firstRun = Files.readString(out.resolve("_run.json"));

    RunSummary again = run(corpus, out, "output.mode=overwrite");
    assertThat(again.processed()).isEqualTo(3);
    assertThat(again.alreadyCommitted()).isZero();
    assertThat(Files.readString(out.resolve("_run.json"))).isNotEqualTo(firstRun);

    Files.writeString(out.resolve("README.md"), "mine");
    assertThatThrownBy(() -> run(corpus, out, "output.mode=overwrite"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("README.md")
        .hasMessageContaining("overwrite refused");
    assertThat(Files.readString(out.resolve("README.md"))).isEqualTo("mine");
    assertThat(Files.exists(out.resolve("outputs"))).isTrue();
    // Resume adds nothing and deletes nothing of the user's.
    RunSummary resumed = run(corpus, out);
    assertThat(resumed.alreadyCommitted()).isEqualTo(3);
    assertThat(Files.readString(out.resolve("README.md"))).isEqualTo("mine");
  }

  @Test
  void errorIfExistsRefusesAnyNonEmptyDirectoryAndAcceptsAnEmptyOne(@TempDir Path tmp)
      throws IOException {
    Path corpus = tmp.resolve("corpus");
    CompressJobTest.writeCorpus(corpus, 2);
    Path out = Files.createDirectories(tmp.resolve("empty"));
    assertThat(run(corpus, out, "output.mode=error-if-exists").processed()).isEqualTo(2);
    assertThatThrownBy(() -> run(corpus, out, "output.mode=error-if-exists"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("error-if-exists");
  }

  @Test
  void resumeRefusesEverySettingThatChangesRows(@TempDir Path tmp) {
    Path corpus = tmp.resolve("corpus");
    CompressJobTest.writeCorpus(corpus, 2);
    Path out = tmp.resolve("out");
    run(corpus, out);

    for (String[] change :
        new String[][] {
          {"model.maxNewTokens=7", "model.maxNewTokens"}, {"model.seed=3", "model.seed"},
          {"model.maxPixels=1000", "model.maxPixels"}, {"kv.dtype=float32", "kv.dtype"},
          {"kv.enabled=false", "kv.enabled"}, {"input.prompt=what color?", "input.prompt"},
          {"plan=[{op: random-drop, keep: 4}]", "plan_hash"}
        }) {
      assertThatThrownBy(() -> run(corpus, out, change[0]))
          .as(change[0])
          .isInstanceOf(ConfigException.class)
          .hasMessageContaining("resume refused")
          .hasMessageContaining(change[1]);
    }
    // Settings that change no row may differ.
    assertThat(
            run(corpus, out, "output.rowsPerTask=1", "output.zstdLevel=9", "model.workers=1")
                .alreadyCommitted())
        .isEqualTo(2);
  }

  private RunSummary run(Path corpus, Path out, String... sets) {
    return CompressJob.run(
        spark, CompressJobTest.config(corpus, out, sets), new TestProcessorFactory(), log);
  }
}
