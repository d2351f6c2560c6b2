package dev.tokenpress.jobs.corpus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FilterFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.security.AccessControlException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The listing through a filesystem that is not Hadoop's local one (as HDFS or S3 are listed),
 * including a subdirectory it is not allowed to list (which root-run tests cannot make with chmod).
 */
class DirectoryListingTest {
  /**
   * The local files seen through plain {@link FileSystem#listStatus}, refusing to list directories
   * named {@code locked}.
   */
  private static FileSystem remoteLike() throws IOException {
    RawLocalFileSystem raw = new RawLocalFileSystem();
    raw.initialize(URI.create("file:///"), new Configuration(false));
    return new FilterFileSystem(raw) {
      @Override
      public FileStatus[] listStatus(Path f) throws IOException {
        if (f.getName().equals("locked")) {
          throw new AccessControlException(
              "Permission denied: user=test, access=READ_EXECUTE, inode=" + f);
        }
        return super.listStatus(f);
      }
    };
  }

  private static void touch(java.nio.file.Path p) throws IOException {
    Files.createDirectories(p.getParent());
    Files.write(p, new byte[] {1});
  }

  @Test
  void listsThroughListStatusAndCountsADirectoryItCannotList(@TempDir java.nio.file.Path dir)
      throws IOException {
    touch(dir.resolve("A.PNG"));
    touch(dir.resolve("b/c.jpg"));
    touch(dir.resolve("b/locked/d.png"));
    touch(dir.resolve("b/_tmp/e.png"));
    touch(dir.resolve("f.txt"));

    DirectoryListing l =
        DirectoryListing.list(
            remoteLike(),
            new Path(dir.toUri()),
            DirectoryListing.pattern("*.{png,jpg}", false),
            false,
            true);

    assertThat(l.files()).extracting(f -> f.getPath().getName()).containsExactly("A.PNG", "c.jpg");
    assertThat(l.exclusions())
        .containsExactly(
            new DirectoryListing.Exclusion(DirectoryListing.HIDDEN, 1, List.of("b/_tmp/")),
            new DirectoryListing.Exclusion(
                DirectoryListing.UNREADABLE_DIRECTORY, 1, List.of("b/locked/")),
            new DirectoryListing.Exclusion(
                DirectoryListing.NOT_MATCHING_GLOB, 1, List.of("f.txt")));

    DirectoryListing exact =
        DirectoryListing.list(
            remoteLike(),
            new Path(dir.toUri()),
            DirectoryListing.pattern("*.{png,jpg}", true),
            true,
            false);
    assertThat(exact.files()).isEmpty();
    assertThat(exact.exclusions())
        .containsExactly(
            new DirectoryListing.Exclusion(
                DirectoryListing.NOT_MATCHING_GLOB, 2, List.of("A.PNG", "f.txt")),
            new DirectoryListing.Exclusion(DirectoryListing.SUBDIRECTORY, 1, List.of("b/")));
  }

  @Test
  void aRootThatCannotBeListedFailsAndABadGlobIsAnIllegalArgument(@TempDir java.nio.file.Path dir)
      throws IOException {
    java.nio.file.Path locked = Files.createDirectories(dir.resolve("locked"));
    assertThatThrownBy(
            () ->
                DirectoryListing.list(remoteLike(), new Path("file:" + locked), null, false, true))
        .isInstanceOf(AccessControlException.class);
    assertThatThrownBy(() -> DirectoryListing.pattern("*.{png", false))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("*.{png");
  }
}
