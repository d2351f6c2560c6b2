package dev.tokenpress.jobs.corpus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.jobs.compress.SparkTestSession;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CorpusReaderTest {
  private final SparkSession spark = SparkTestSession.get();

  private static JobConfig.Input input(Path dir, String... sets) {
    List<String> all = new java.util.ArrayList<>(List.of("input.path=" + dir));
    all.addAll(List.of(sets));
    return ConfigLoader.load(null, all).input();
  }

  private static void touch(Path p, int bytes) throws IOException {
    Files.createDirectories(p.getParent());
    Files.write(p, new byte[bytes]);
  }

  private static List<String> ids(CorpusReader.Corpus c) {
    return c.listed().collect().stream().map(r -> r.getString(0)).toList();
  }

  @Test
  void listsMatchingFilesRecursivelySkippingHiddenOnesAndKeepingEmptyFiles(@TempDir Path dir) throws IOException {
    touch(dir.resolve("b.png"), 3);
    touch(dir.resolve("a/x.jpg"), 0);
    touch(dir.resolve("a/deeper/y.jpeg"), 2);
    touch(dir.resolve("a/notes.txt"), 1);
    touch(dir.resolve(".hidden.png"), 1);
    touch(dir.resolve("_tmp/z.png"), 1);
    touch(dir.resolve("a/.cache/w.png"), 1);

    CorpusReader.Corpus c = CorpusReader.open(spark, input(dir, "input.glob=*.{png,jpg,jpeg}", "input.recursive=true"), 2);

    assertThat(ids(c)).containsExactlyInAnyOrder("a/deeper/y.jpeg", "a/x.jpg", "b.png");
    assertThat(c.listedCount()).isEqualTo(3);
    // Dealt by size in snake order (b.png 3 bytes, y.jpeg 2, x.jpg 0), each task in path order.
    List<List<String>> tasks = c.listed().glom().collect().stream()
        .map(part -> part.stream().map(r -> r.getString(0)).toList()).toList();
    assertThat(tasks).containsExactly(List.of("b.png"), List.of("a/deeper/y.jpeg", "a/x.jpg"));
    // The same rows as a Dataset, with the work schema and the template prompt.
    List<Row> rows = c.rows().orderBy("id").collectAsList();
    assertThat(rows).extracting(r -> r.getString(0)).containsExactly("a/deeper/y.jpeg", "a/x.jpg", "b.png");
    assertThat(rows.get(2).getString(1)).isEqualTo(new org.apache.hadoop.fs.Path(dir.resolve("b.png").toUri()).toString());
    assertThat(rows).allSatisfy(r -> assertThat(r.isNullAt(2)).isTrue());
  }

  @Test
  void nonRecursiveListsOnlyTheTopDirectoryAndNoGlobMeansAllFiles(@TempDir Path dir) throws IOException {
    touch(dir.resolve("b.png"), 3);
    touch(dir.resolve("c.txt"), 3);
    touch(dir.resolve("a/x.jpg"), 1);

    assertThat(ids(CorpusReader.open(spark, input(dir, "input.recursive=false", "input.glob="), 32)))
        .containsExactlyInAnyOrder("b.png", "c.txt");
  }

  @Test
  void tasksAreAboutRowsPerTaskAndAMultipleOfTheSlots() {
    assertThat(CorpusReader.tasksFor(256, 128, 2)).isEqualTo(2);
    assertThat(CorpusReader.tasksFor(300, 128, 2)).isEqualTo(4);   // 3 tasks would leave a slot idle
    assertThat(CorpusReader.tasksFor(1000, 128, 2)).isEqualTo(8);
    assertThat(CorpusReader.tasksFor(50_000, 128, 100)).isEqualTo(400);
    assertThat(CorpusReader.tasksFor(3, 128, 8)).isEqualTo(3);     // never more tasks than records
    assertThat(CorpusReader.tasksFor(1, 128, 2)).isEqualTo(1);
    assertThat(CorpusReader.tasksFor(0, 128, 2)).isEqualTo(1);
    assertThat(CorpusReader.tasksFor(10, 4, 1)).isEqualTo(3);
  }

  @Test
  void dealingGivesEqualCountsAndSimilarBytes() {
    List<org.apache.hadoop.fs.FileStatus> files = new java.util.ArrayList<>();
    for (int i = 1; i <= 10; i++) {
      files.add(new org.apache.hadoop.fs.FileStatus(i, false, 1, 1, 0, new org.apache.hadoop.fs.Path("file:/c/f" + i)));
    }
    List<List<org.apache.hadoop.fs.FileStatus>> tasks = CorpusReader.deal(files, 2);
    assertThat(tasks).extracting(List::size).containsExactly(5, 5);
    assertThat(tasks.get(0)).extracting(f -> f.getLen()).containsExactlyInAnyOrder(10L, 7L, 6L, 3L, 2L);
    assertThat(tasks.get(1)).extracting(f -> f.getLen()).containsExactlyInAnyOrder(9L, 8L, 5L, 4L, 1L);
    assertThat(tasks.get(0)).extracting(f -> f.getPath().getName()).isSorted();
    // A repeating pattern of one large and one small file no longer lands on one task.
    List<org.apache.hadoop.fs.FileStatus> pattern = new java.util.ArrayList<>();
    for (int i = 0; i < 8; i++) {
      pattern.add(new org.apache.hadoop.fs.FileStatus(i % 2 == 0 ? 1000 : 10, false, 1, 1, 0,
          new org.apache.hadoop.fs.Path(String.format("file:/c/p%02d", i))));
    }
    assertThat(CorpusReader.deal(pattern, 2)).allSatisfy(t ->
        assertThat(t.stream().mapToLong(org.apache.hadoop.fs.FileStatus::getLen).sum()).isEqualTo(2020L));
  }

  @Test
  void badGlobOrMissingPathNameTheField(@TempDir Path dir) {
    assertThatThrownBy(() -> CorpusReader.open(spark, input(dir, "input.glob=*.{png"), 32))
        .isInstanceOf(ConfigException.class).hasMessageContaining("input.glob");
    assertThatThrownBy(() -> CorpusReader.open(spark, input(dir.resolve("nope")), 32))
        .isInstanceOf(ConfigException.class).hasMessageContaining("input.path");
  }
}
