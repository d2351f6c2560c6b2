package dev.tokenpress.jobs.compress;

import dev.tokenpress.jobs.config.ConfigException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.SparkSession;

/**
 * The job's output directory and everything tokenpress keeps in it:
 *
 * <pre>
 * outputs/                       committed outputs Parquet files (+ _SUCCESS)
 * kv_cache/batch_id=&lt;batch&gt;/     committed kv_cache Parquet files (+ kv_cache/_SUCCESS)
 * _run.json, _runs/&lt;run&gt;.json    the latest run's manifest, and every run's
 * _tokenpress/dataset.json       the settings every row of this output was made with (resume compares them)
 * _tokenpress/commits/&lt;batch&gt;.json  a batch's commit journal while its files move into place
 * _tokenpress/staging/&lt;batch&gt;/   task attempts' files before commit (names end in .tmp)
 * </pre>
 *
 * Only names in {@link #OWNED} are ever deleted, and only in a directory tokenpress marked as its
 * own ({@code _tokenpress/} or, from earlier versions, {@code _run.json}). Staged files are neither
 * under {@code outputs/} or {@code kv_cache/} nor named {@code *.parquet}, so no reader's glob sees
 * them. Only the driver touches this directory's layout; tasks write only below {@code staging/}.
 */
final class OutputLayout {
  static final String OUTPUTS = "outputs";
  static final String KV_CACHE = "kv_cache";
  static final String BATCH_PREFIX = "batch_id=";
  static final String RUN_JSON = "_run.json";
  static final String RUNS = "_runs";
  static final String META = "_tokenpress";
  static final String DATASET_JSON = META + "/dataset.json";
  static final String COMMITS = META + "/commits";
  static final String STAGING = META + "/staging";

  /** The entries of the root that tokenpress writes (and so may remove on overwrite). */
  static final Set<String> OWNED = Set.of(OUTPUTS, KV_CACHE, RUN_JSON, RUNS, META, "_SUCCESS");

  private final FileSystem fs;
  private final Path root;

  private OutputLayout(FileSystem fs, Path root) {
    this.fs = fs;
    this.root = root;
  }

  static OutputLayout open(SparkSession spark, String path) {
    try {
      Path p = new Path(path);
      FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
      return new OutputLayout(fs, fs.makeQualified(p));
    } catch (IOException | IllegalArgumentException e) {
      throw new ConfigException("output.path", "cannot open '" + path + "': " + e.getMessage());
    }
  }

  FileSystem fs() {
    return fs;
  }

  String root() {
    return root.toString();
  }

  Path rootPath() {
    return root;
  }

  String outputs() {
    return new Path(root, OUTPUTS).toString();
  }

  String kvCache() {
    return new Path(root, KV_CACHE).toString();
  }

  Path path(String relative) {
    return new Path(root, relative);
  }

  /**
   * What is at the root: nothing, an empty directory, a directory tokenpress marked, anything else.
   */
  enum State {
    ABSENT,
    EMPTY,
    TOKENPRESS,
    FOREIGN
  }

  /**
   * Classifies the root; a file at {@code output.path}, or above it, is refused in every mode
   * ({@link Preflight#checkOutputPath}).
   */
  State state() {
    try {
      Preflight.checkOutputPath(root.toString(), fs); // a file at (or above) the root is refused
      if (!fs.exists(root)) {
        return State.ABSENT;
      }
      FileStatus[] children = fs.listStatus(root);
      if (children.length == 0) {
        return State.EMPTY;
      }
      for (FileStatus c : children) {
        String name = c.getPath().getName();
        if (name.equals(META) || name.equals(RUN_JSON)) {
          return State.TOKENPRESS;
        }
      }
      return State.FOREIGN;
    } catch (IOException e) {
      throw new ConfigException("output.path", "cannot read '" + root + "': " + e.getMessage());
    }
  }

  /**
   * Root entries that tokenpress did not write (a Hadoop checksum file of an owned entry counts as
   * owned).
   */
  List<String> foreignEntries() {
    List<String> foreign = new ArrayList<>();
    try {
      for (FileStatus c : fs.listStatus(root)) {
        String name = c.getPath().getName();
        String base =
            name.startsWith(".") && name.endsWith(".crc")
                ? name.substring(1, name.length() - 4)
                : name;
        if (!OWNED.contains(base)) {
          foreign.add(name);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list " + root, e);
    }
    foreign.sort(null);
    return foreign;
  }

  /**
   * Removes what tokenpress wrote at the root — only the {@link #OWNED} entries, only when the root
   * carries tokenpress's marker and nothing else, so a mistyped {@code output.path} can never
   * destroy a user's files.
   */
  void deleteOwned() {
    State s = state();
    if (s == State.ABSENT || s == State.EMPTY) {
      return;
    }
    List<String> foreign = foreignEntries();
    if (s == State.FOREIGN || !foreign.isEmpty()) {
      throw new ConfigException(
          "output.mode",
          "overwrite refused: '"
              + root
              + "' is not (only) a tokenpress output; it holds "
              + describe(foreign)
              + ". overwrite removes only a directory tokenpress wrote (with its "
              + META
              + "/ or "
              + RUN_JSON
              + " marker and nothing else); choose a new or empty output.path");
    }
    try {
      for (FileStatus c : fs.listStatus(root)) {
        if (!fs.delete(c.getPath(), true) && fs.exists(c.getPath())) {
          throw new IOException("delete returned false");
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove the previous output in " + root, e);
    }
  }

  static String describe(List<String> names) {
    List<String> shown = names.size() > 5 ? names.subList(0, 5) : names;
    String list =
        String.join(", ", shown) + (names.size() > 5 ? " and " + (names.size() - 5) + " more" : "");
    return names.isEmpty()
        ? "no tokenpress marker"
        : names.size() + " other entr" + (names.size() == 1 ? "y" : "ies") + " (" + list + ")";
  }

  /** Whether {@code outputs/} holds at least one committed Parquet file. */
  boolean hasCommittedOutputs() {
    try {
      Path o = new Path(root, OUTPUTS);
      if (!fs.exists(o)) {
        return false;
      }
      for (FileStatus st : fs.listStatus(o)) {
        if (st.isFile() && st.getPath().getName().endsWith(".parquet")) {
          return true;
        }
      }
      return false;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Batch ids that have a {@code kv_cache/batch_id=...} directory. */
  List<String> kvBatches() {
    List<String> out = new ArrayList<>();
    try {
      Path kv = new Path(root, KV_CACHE);
      if (!fs.exists(kv)) {
        return out;
      }
      for (FileStatus st : fs.listStatus(kv)) {
        String name = st.getPath().getName();
        if (st.isDirectory() && name.startsWith(BATCH_PREFIX)) {
          out.add(name.substring(BATCH_PREFIX.length()));
        }
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Removes KV batches whose outputs never committed, so that the ids they hold can be processed
   * again without duplicates. Under the journal protocol ({@link BatchCommit}) a batch's KV and
   * outputs become visible together; this clears what versions before it could leave.
   */
  List<String> removeUncommittedKv(Set<String> committedBatches) {
    List<String> removed = new ArrayList<>();
    for (String b : kvBatches()) {
      if (!committedBatches.contains(b)) {
        delete(new Path(new Path(root, KV_CACHE), BATCH_PREFIX + b));
        removed.add(b);
      }
    }
    return removed;
  }

  /**
   * Removes what dead runs left that is not data: the staging area, unfinished journals, and the
   * temporary directories of Spark's commit protocol that earlier versions of the job used ({@code
   * _temporary}, {@code .spark-staging-*} below {@code outputs/} and {@code kv_cache/}). Call after
   * {@link BatchCommit#recover} (which needs the staged files of finished journals).
   *
   * @return the removed paths, relative to the root
   */
  List<String> removeLeftovers() {
    List<String> removed = new ArrayList<>();
    try {
      if (exists(STAGING)) {
        delete(path(STAGING));
        removed.add(STAGING);
      }
      for (String dir : new String[] {OUTPUTS, KV_CACHE, COMMITS}) {
        Path d = path(dir);
        if (!fs.exists(d)) {
          continue;
        }
        for (FileStatus st : fs.listStatus(d)) {
          String name = st.getPath().getName();
          if (name.equals("_temporary")
              || name.startsWith(".spark-staging")
              || name.endsWith(".tmp")) {
            delete(st.getPath());
            removed.add(dir + "/" + name);
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot clean " + root, e);
    }
    return removed;
  }

  boolean exists(String relative) {
    try {
      return fs.exists(path(relative));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  void delete(Path p) {
    try {
      if (fs.exists(p) && !fs.delete(p, true) && fs.exists(p)) {
        throw new IOException("delete returned false");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + p, e);
    }
  }

  /** The text of {@code relative}, or null if it does not exist. */
  String readText(String relative) {
    Path p = path(relative);
    try (InputStream in = fs.open(p)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (FileNotFoundException e) {
      return null;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + p, e);
    }
  }

  /** Writes {@code relative} with {@code text}, replacing it. */
  void writeText(String relative, String text) {
    Path p = path(relative);
    try (OutputStream out = fs.create(p, true)) {
      out.write(text.getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + p, e);
    }
  }

  /**
   * Writes {@code relative} so that a reader sees the old file or the whole new one, never a part:
   * a temporary sibling, then a rename over it (atomic on local filesystems and HDFS; on object
   * stores the rename is a copy and a reader may see a missing file, never a torn one).
   */
  void writeTextAtomically(String relative, String text) {
    Path p = path(relative);
    Path tmp = new Path(p.getParent(), p.getName() + ".tmp");
    writeText(relative + ".tmp", text);
    try {
      if (fs.exists(p) && !fs.delete(p, false)) {
        throw new IOException("cannot replace " + p);
      }
      if (!fs.rename(tmp, p)) {
        throw new IOException("rename " + tmp + " -> " + p + " returned false");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + p, e);
    }
  }

  /** Names of the files directly in {@code relative}, sorted; empty if it does not exist. */
  TreeSet<String> list(String relative) {
    TreeSet<String> names = new TreeSet<>();
    try {
      Path d = path(relative);
      if (fs.exists(d)) {
        for (FileStatus st : fs.listStatus(d)) {
          names.add(st.getPath().getName());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return names;
  }
}
