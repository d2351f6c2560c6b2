package dev.tokenpress.jobs.corpus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.tokenpress.jobs.compress.SparkTestSession;
import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.ConfigLoader;
import dev.tokenpress.jobs.config.JobConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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

  private static Map<String, Long> excluded(CorpusReader.Corpus c) {
    Map<String, Long> m = new LinkedHashMap<>();
    c.excluded().forEach(x -> m.put(x.reason(), x.count()));
    return m;
  }

  @Test
  void listsMatchingFilesRecursivelyCountingHiddenOnesAndKeepingEmptyFiles(@TempDir Path dir)
      throws IOException {
    touch(dir.resolve("b.png"), 3);
    touch(dir.resolve("a/x.jpg"), 0);
    touch(dir.resolve("a/deeper/y.jpeg"), 2);
    touch(dir.resolve("a/notes.txt"), 1);
    touch(dir.resolve(".hidden.png"), 1);
    touch(dir.resolve("_tmp/z.png"), 1);
    touch(dir.resolve("a/.cache/w.png"), 1);

    CorpusReader.Corpus c =
        CorpusReader.open(
            spark, input(dir, "input.glob=*.{png,jpg,jpeg}", "input.recursive=true"), 2);

    assertThat(ids(c)).containsExactlyInAnyOrder("a/deeper/y.jpeg", "a/x.jpg", "b.png");
    assertThat(c.listedCount()).isEqualTo(3);
    // Nothing left out silently: hidden names (a hidden directory once, not descended) and the
    // file the glob does not match are counted, with examples in name order.
    assertThat(c.excluded())
        .containsExactly(
            new DirectoryListing.Exclusion(
                DirectoryListing.HIDDEN, 3, List.of(".hidden.png", "_tmp/", "a/.cache/")),
            new DirectoryListing.Exclusion(
                DirectoryListing.NOT_MATCHING_GLOB, 1, List.of("a/notes.txt")));
    assertThat(c.excludedCount()).isEqualTo(4);
    // Dealt by size in snake order (b.png 3 bytes, y.jpeg 2, x.jpg 0), each task in path order.
    List<List<String>> tasks =
        c.listed().glom().collect().stream()
            .map(part -> part.stream().map(r -> r.getString(0)).toList())
            .toList();
    assertThat(tasks).containsExactly(List.of("b.png"), List.of("a/deeper/y.jpeg", "a/x.jpg"));
    // The same rows as a Dataset, with the work schema and the template prompt.
    List<Row> rows = c.rows().orderBy("id").collectAsList();
    assertThat(rows)
        .extracting(r -> r.getString(0))
        .containsExactly("a/deeper/y.jpeg", "a/x.jpg", "b.png");
    assertThat(rows.get(2).getString(1))
        .isEqualTo(new org.apache.hadoop.fs.Path(dir.resolve("b.png").toUri()).toString());
    assertThat(rows).allSatisfy(r -> assertThat(r.isNullAt(2)).isTrue());
  }

  @Test
  void nonRecursiveListsOnlyTheTopDirectoryAndNoGlobMeansAllFiles(@TempDir Path dir)
      throws IOException {
    touch(dir.resolve("b.png"), 3);
    touch(dir.resolve("c.txt"), 3);
    touch(dir.resolve("a/x.jpg"), 1);

    CorpusReader.Corpus c =
        CorpusReader.open(spark, input(dir, "input.recursive=false", "input.glob="), 32);
    assertThat(ids(c)).containsExactlyInAnyOrder("b.png", "c.txt");
    assertThat(c.excluded())
        .containsExactly(
            new DirectoryListing.Exclusion(DirectoryListing.SUBDIRECTORY, 1, List.of("a/")));
  }

  @Test
  void theGlobIgnoresCaseUnlessAskedNotTo(@TempDir Path dir) throws IOException {
    for (String name : List.of("a.png", "B.PNG", "c.Jpg", "d.JPEG", "e.gif", "F.TXT")) {
      touch(dir.resolve(name), 1);
    }
    CorpusReader.Corpus c = CorpusReader.open(spark, input(dir, "input.glob=*.{png,jpg,jpeg}"), 32);
    assertThat(ids(c)).containsExactlyInAnyOrder("a.png", "B.PNG", "c.Jpg", "d.JPEG");
    assertThat(c.excluded())
        .containsExactly(
            new DirectoryListing.Exclusion(
                DirectoryListing.NOT_MATCHING_GLOB, 2, List.of("F.TXT", "e.gif")));
    // Upper case in the glob matches lower case in names as well.
    assertThat(ids(CorpusReader.open(spark, input(dir, "input.glob=*.{PNG,GIF}"), 32)))
        .containsExactlyInAnyOrder("a.png", "B.PNG", "e.gif");

    CorpusReader.Corpus exact =
        CorpusReader.open(
            spark, input(dir, "input.glob=*.{png,jpg,jpeg}", "input.globCaseSensitive=true"), 32);
    assertThat(ids(exact)).containsExactly("a.png");
    assertThat(excluded(exact)).containsExactly(Map.entry(DirectoryListing.NOT_MATCHING_GLOB, 5L));
  }

  /**
   * Links and special files are listed as records (reading them gives the error row), never
   * dropped: a dangling link, a link loop and a FIFO (listing it must not open it); a link to a
   * directory is descended into unless it leads back to a directory being listed.
   */
  @Test
  void danglingLinksLoopsAndFifosAreRecordsAndDirectoryLinkCyclesAreCounted(@TempDir Path dir)
      throws Exception {
    touch(dir.resolve("real/a.png"), 2);
    Files.createSymbolicLink(dir.resolve("gone.png"), dir.resolve("deleted.png"));
    Files.createSymbolicLink(dir.resolve("loop1.png"), dir.resolve("loop2.png"));
    Files.createSymbolicLink(dir.resolve("loop2.png"), dir.resolve("loop1.png"));
    Files.createSymbolicLink(dir.resolve("linked"), dir.resolve("real"));
    Files.createSymbolicLink(dir.resolve("real/up"), dir);
    assertThat(new ProcessBuilder("mkfifo", dir.resolve("pipe.png").toString()).start().waitFor())
        .isZero();

    CorpusReader.Corpus c =
        assertTimeoutPreemptively(
            Duration.ofSeconds(60),
            () -> CorpusReader.open(spark, input(dir, "input.glob=*.png"), 32));

    assertThat(ids(c))
        .containsExactlyInAnyOrder(
            "gone.png", "loop1.png", "loop2.png", "pipe.png", "real/a.png", "linked/a.png");
    assertThat(c.excluded())
        .containsExactly(
            new DirectoryListing.Exclusion(
                DirectoryListing.DIRECTORY_CYCLE, 2, List.of("linked/up/", "real/up/")));
  }

  @Test
  void exclusionsDescribeThemselvesOnOneLine() {
    assertThat(
            new DirectoryListing.Exclusion("hidden", 7, List.of("a\nb", "q\"\\", "\u0007x"))
                .describe())
        .isEqualTo("hidden: 7 (e.g. \"a\\nb\", \"q\\\"\\\\\", \"\\u0007x\", ...)");
    assertThat(new DirectoryListing.Exclusion("hidden", 1, List.of("_SUCCESS")).describe())
        .isEqualTo("hidden: 1 (e.g. \"_SUCCESS\")");
  }

  @Test
  void tasksAreAboutRowsPerTaskAndAMultipleOfTheSlots() {
    assertThat(CorpusReader.tasksFor(256, 128, 2)).isEqualTo(2);
    assertThat(CorpusReader.tasksFor(300, 128, 2)).isEqualTo(4); // 3 tasks would leave a slot idle
    assertThat(CorpusReader.tasksFor(1000, 128, 2)).isEqualTo(8);
    assertThat(CorpusReader.tasksFor(50_000, 128, 100)).isEqualTo(400);
    assertThat(CorpusReader.tasksFor(3, 128, 8)).isEqualTo(3); // never more tasks than records
    assertThat(CorpusReader.tasksFor(1, 128, 2)).isEqualTo(1);
    assertThat(CorpusReader.tasksFor(0, 128, 2)).isEqualTo(1);
    assertThat(CorpusReader.tasksFor(10, 4, 1)).isEqualTo(3);
  }

  @Test
  void dealingGivesEqualCountsAndSimilarBytes() {
    List<org.apache.hadoop.fs.FileStatus> files = new java.util.ArrayList<>();
    for (int i = 1; i <= 10; i++) {
      files.add(
          new org.apache.hadoop.fs.FileStatus(
              i, false, 1, 1, 0, new org.apache.hadoop.fs.Path("file:/c/f" + i)));
    }
    List<List<org.apache.hadoop.fs.FileStatus>> tasks = CorpusReader.deal(files, 2);
    assertThat(tasks).extracting(List::size).containsExactly(5, 5);
    assertThat(tasks.get(0))
        .extracting(f -> f.getLen())
        .containsExactlyInAnyOrder(10L, 7L, 6L, 3L, 2L);
    assertThat(tasks.get(1))
        .extracting(f -> f.getLen())
        .containsExactlyInAnyOrder(9L, 8L, 5L, 4L, 1L);
    assertThat(tasks.get(0)).extracting(f -> f.getPath().getName()).isSorted();
    // A repeating pattern of one large and one small file no longer lands on one task.
    List<org.apache.hadoop.fs.FileStatus> pattern = new java.util.ArrayList<>();
    for (int i = 0; i < 8; i++) {
      pattern.add(
          new org.apache.hadoop.fs.FileStatus(
              i % 2 == 0 ? 1000 : 10,
              false,
              1,
              1,
              0,
              new org.apache.hadoop.fs.Path(String.format("file:/c/p%02d", i))));
    }
    assertThat(CorpusReader.deal(pattern, 2))
        .allSatisfy(
            t ->
                assertThat(t.stream().mapToLong(org.apache.hadoop.fs.FileStatus::getLen).sum())
                    .isEqualTo(2020L));
  }

  @Test
  void badGlobOrMissingPathNameTheField(@TempDir Path dir) {
    assertThatThrownBy(() -> CorpusReader.open(spark, input(dir, "input.glob=*.{png"), 32))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("input.glob");
    assertThatThrownBy(() -> CorpusReader.open(spark, input(dir.resolve("nope")), 32))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("input.path");
  }
}
