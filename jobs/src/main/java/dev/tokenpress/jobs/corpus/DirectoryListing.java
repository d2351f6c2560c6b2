package dev.tokenpress.jobs.corpus;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.GlobPattern;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

/**
 * The entries below a corpus directory, each either a file to process or a counted exclusion.
 *
 * <p>Every entry that is not a directory — a regular file, a dangling or looping symbolic link, a
 * FIFO, a socket, a device — and whose name matches the glob is a file to process: one that cannot
 * be read becomes an {@code error} row when it is processed, never a silent gap. The other entries
 * are counted by reason ({@link Exclusion}):
 *
 * <ul>
 *   <li>{@value #HIDDEN}: names starting with {@code .} or {@code _} (editor and OS droppings such
 *       as {@code .DS_Store} and macOS {@code ._photo.jpg} resource forks, {@code _SUCCESS}, {@code
 *       _temporary/}), as Spark's file sources skip them; a hidden directory counts once and is not
 *       descended into.
 *   <li>{@value #NOT_MATCHING_GLOB}: non-directories whose name does not match {@code input.glob}
 *       (case-insensitively unless {@code input.globCaseSensitive}).
 *   <li>{@value #SUBDIRECTORY}: directories when {@code input.recursive} is false.
 *   <li>{@value #DIRECTORY_CYCLE}: a directory (through a symbolic link) that is the directory
 *       being listed or one of its ancestors, which would be listed forever.
 *   <li>{@value #UNREADABLE_DIRECTORY}: a directory below the root that cannot be listed
 *       (permissions); its files are unknown.
 * </ul>
 *
 * <p>Local ({@code file:}) corpora are listed with NIO, which sees every entry (Hadoop's local
 * listing drops dangling links) and follows links to directories; other filesystems with {@link
 * FileSystem#listStatus}. Entries are visited in name order.
 */
public final class DirectoryListing {
  public static final String HIDDEN = "hidden";
  public static final String NOT_MATCHING_GLOB = "not_matching_glob";
  public static final String SUBDIRECTORY = "subdirectory";
  public static final String DIRECTORY_CYCLE = "directory_cycle";
  public static final String UNREADABLE_DIRECTORY = "unreadable_directory";

  /** Example paths kept per reason. */
  public static final int EXAMPLES = 5;

  /**
   * Entries left out for one reason.
   *
   * @param reason one of this class's reason constants
   * @param count entries left out
   * @param examples the first {@value #EXAMPLES} of them (paths relative to the root, directories
   *     with a trailing {@code /}), in listing order
   */
  public record Exclusion(String reason, long count, List<String> examples) {
    public Exclusion {
      examples = List.copyOf(examples);
    }

    /**
     * One line for a log: {@code not_matching_glob: 3 (e.g. "a/notes.txt", "b.webp")}, with quotes,
     * backslashes and control characters in names escaped as in Java source (a newline as {@code
     * \n}) so that every exclusion stays on one line.
     */
    public String describe() {
      StringBuilder s = new StringBuilder(reason).append(": ").append(count).append(" (e.g. ");
      for (int i = 0; i < examples.size(); i++) {
        s.append(i == 0 ? "\"" : ", \"");
        examples
            .get(i)
            .codePoints()
            .forEach(
                c -> {
                  if (c == '\n') {
                    s.append("\\n");
                  } else if (c == '"' || c == '\\') {
                    s.append('\\').append((char) c);
                  } else if (Character.isISOControl(c)) {
                    s.append(String.format(Locale.ROOT, "\\u%04x", c));
                  } else {
                    s.appendCodePoint(c);
                  }
                });
        s.append('"');
      }
      return s.append(count > examples.size() ? ", ...)" : ")").toString();
    }
  }

  private final FileSystem fs;
  private final GlobPattern glob;
  private final boolean caseSensitive;
  private final boolean recursive;
  private final List<FileStatus> files = new ArrayList<>();
  private final Map<String, long[]> counts = new LinkedHashMap<>();
  private final Map<String, List<String>> examples = new LinkedHashMap<>();

  private DirectoryListing(
      FileSystem fs, GlobPattern glob, boolean caseSensitive, boolean recursive) {
    this.fs = fs;
    this.glob = glob;
    this.caseSensitive = caseSensitive;
    this.recursive = recursive;
  }

  /**
   * The compiled form of a file-name glob ({@link GlobPattern} syntax: {@code * ? [a-z]
   * {png,jpg}}); unless {@code caseSensitive}, it is lower-cased, and {@link #list} lower-cases the
   * names it matches, so that {@code *.{png,jpg}} matches {@code X.PNG} and {@code y.Jpg}.
   *
   * @throws IllegalArgumentException when {@code glob} is not a valid pattern
   */
  public static GlobPattern pattern(String glob, boolean caseSensitive) {
    try {
      return new GlobPattern(caseSensitive ? glob : glob.toLowerCase(Locale.ROOT));
    } catch (RuntimeException e) {
      // Hadoop's shaded re2j PatternSyntaxException is not an IllegalArgumentException.
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }

  /**
   * Lists the directory {@code root} of {@code fs}.
   *
   * @param glob file-name pattern from {@link #pattern} with the same {@code caseSensitive}, or
   *     null for every name
   * @param recursive whether to descend into subdirectories
   * @throws IOException when {@code root} itself cannot be listed
   */
  public static DirectoryListing list(
      FileSystem fs, Path root, GlobPattern glob, boolean caseSensitive, boolean recursive)
      throws IOException {
    DirectoryListing l = new DirectoryListing(fs, glob, caseSensitive, recursive);
    java.nio.file.Path local = localDir(fs, root);
    Set<Object> ancestors = new HashSet<>();
    if (local != null) {
      ancestors.add(key(local, Files.readAttributes(local, BasicFileAttributes.class)));
    }
    l.walk(root, local, "", ancestors, true);
    return l;
  }

  /** The files to process, in listing order. */
  public List<FileStatus> files() {
    return Collections.unmodifiableList(files);
  }

  /** The exclusions, one per reason that occurred, in the order first seen. */
  public List<Exclusion> exclusions() {
    List<Exclusion> out = new ArrayList<>();
    counts.forEach((reason, n) -> out.add(new Exclusion(reason, n[0], examples.get(reason))));
    return out;
  }

  /**
   * One entry of a directory: its Hadoop path, name, whether it is a directory, and its identity.
   */
  private record Entry(
      Path path,
      String name,
      boolean directory,
      FileStatus status,
      java.nio.file.Path local,
      Object key) {}

  private void walk(
      Path dir, java.nio.file.Path localDir, String rel, Set<Object> ancestors, boolean root)
      throws IOException {
    List<Entry> entries;
    try {
      entries = localDir != null ? localEntries(dir, localDir) : hadoopEntries(dir);
    } catch (IOException e) {
      if (root) {
        throw e;
      }
      exclude(UNREADABLE_DIRECTORY, rel);
      return;
    }
    for (Entry e : entries) {
      String path = rel + e.name();
      if (e.name().startsWith(".") || e.name().startsWith("_")) {
        exclude(HIDDEN, e.directory() ? path + "/" : path);
      } else if (e.directory()) {
        if (!recursive) {
          exclude(SUBDIRECTORY, path + "/");
        } else if (e.key() != null && ancestors.contains(e.key())) {
          exclude(DIRECTORY_CYCLE, path + "/");
        } else {
          if (e.key() != null) {
            ancestors.add(e.key());
          }
          walk(e.path(), e.local(), path + "/", ancestors, false);
          if (e.key() != null) {
            ancestors.remove(e.key());
          }
        }
      } else if (glob != null
          && !glob.matches(caseSensitive ? e.name() : e.name().toLowerCase(Locale.ROOT))) {
        exclude(NOT_MATCHING_GLOB, path);
      } else {
        files.add(e.status());
      }
    }
  }

  private void exclude(String reason, String path) {
    counts.computeIfAbsent(reason, r -> new long[1])[0]++;
    List<String> ex = examples.computeIfAbsent(reason, r -> new ArrayList<>());
    if (ex.size() < EXAMPLES) {
      ex.add(path);
    }
  }

  /**
   * A local directory's entries. Attributes follow links; an entry whose attributes cannot be read
   * (dangling link, link loop) is a non-directory of length 0, to be reported when read.
   */
  private static List<Entry> localEntries(Path dir, java.nio.file.Path localDir)
      throws IOException {
    List<java.nio.file.Path> children = new ArrayList<>();
    try (DirectoryStream<java.nio.file.Path> s = Files.newDirectoryStream(localDir)) {
      for (java.nio.file.Path p : s) {
        children.add(p);
      }
    }
    children.sort(Comparator.comparing(p -> p.getFileName().toString()));
    List<Entry> out = new ArrayList<>(children.size());
    for (java.nio.file.Path p : children) {
      String name = p.getFileName().toString();
      // As RawLocalFileSystem.listStatus builds its paths: a name with a colon stays one segment.
      Path path = new Path(dir, new Path(null, null, name));
      BasicFileAttributes a;
      try {
        a = Files.readAttributes(p, BasicFileAttributes.class);
      } catch (IOException unresolvable) {
        a = null;
      }
      if (a != null && a.isDirectory()) {
        out.add(new Entry(path, name, true, null, p, key(p, a)));
      } else {
        long len = a != null && a.isRegularFile() ? a.size() : 0;
        long mtime = a != null ? a.lastModifiedTime().toMillis() : 0;
        out.add(
            new Entry(
                path, name, false, new FileStatus(len, false, 1, 0, mtime, path), null, null));
      }
    }
    return out;
  }

  private List<Entry> hadoopEntries(Path dir) throws IOException {
    FileStatus[] children = fs.listStatus(dir);
    java.util.Arrays.sort(children, Comparator.comparing(st -> st.getPath().getName()));
    List<Entry> out = new ArrayList<>(children.length);
    for (FileStatus st : children) {
      out.add(new Entry(st.getPath(), st.getPath().getName(), st.isDirectory(), st, null, null));
    }
    return out;
  }

  /**
   * A directory's identity: its file key (device and inode) where the platform has one, else its
   * real path.
   */
  private static Object key(java.nio.file.Path p, BasicFileAttributes a) throws IOException {
    Object k = a.fileKey();
    return k != null ? k : p.toRealPath();
  }

  /** The NIO path of {@code dir} when {@code fs} is Hadoop's local filesystem, else null. */
  private static java.nio.file.Path localDir(FileSystem fs, Path dir) {
    if (fs instanceof LocalFileSystem local) {
      return local.pathToFile(dir).toPath();
    }
    if (fs instanceof RawLocalFileSystem raw) {
      return raw.pathToFile(dir).toPath();
    }
    return null;
  }
}
