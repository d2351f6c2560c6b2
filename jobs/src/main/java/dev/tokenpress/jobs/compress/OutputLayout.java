package dev.tokenpress.jobs.compress;

import dev.tokenpress.jobs.config.ConfigException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.SparkSession;

/**
 * The job's output directory: {@code outputs/}, {@code kv_cache/batch_id=.../}, {@code _run.json}
 * and {@code _runs/<run_id>.json}. Only the driver touches files here directly (listing, removing
 * uncommitted KV batches, the run manifests); every data file is written by Spark's commit
 * protocol.
 */
final class OutputLayout {
  static final String OUTPUTS = "outputs";
  static final String KV_CACHE = "kv_cache";
  static final String BATCH_PREFIX = "batch_id=";

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
    } catch (IOException e) {
      throw new ConfigException("output.path", "cannot open " + path + ": " + e.getMessage());
    }
  }

  String root() {
    return root.toString();
  }

  String outputs() {
    return new Path(root, OUTPUTS).toString();
  }

  String kvCache() {
    return new Path(root, KV_CACHE).toString();
  }

  /** Whether the root exists and holds anything. */
  boolean isNonEmpty() {
    try {
      return fs.exists(root) && fs.listStatus(root).length > 0;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
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

  void deleteAll() {
    try {
      if (fs.exists(root) && !fs.delete(root, true)) {
        throw new IOException("delete returned false");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + root, e);
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
   * Removes KV batches whose outputs never committed (a run that stopped between the two writes
   * of a batch), so that the ids they hold can be processed again without duplicates.
   */
  List<String> removeUncommittedKv(Set<String> committedBatches) {
    List<String> removed = new ArrayList<>();
    for (String b : kvBatches()) {
      if (!committedBatches.contains(b)) {
        deleteKvBatch(b);
        removed.add(b);
      }
    }
    return removed;
  }

  void deleteKvBatch(String batchId) {
    Path dir = new Path(new Path(root, KV_CACHE), BATCH_PREFIX + batchId);
    try {
      if (fs.exists(dir)) {
        fs.delete(dir, true);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete uncommitted KV batch " + dir, e);
    }
  }

  /** Writes {@code name} (relative to the root) with {@code text}, replacing it. */
  void writeText(String name, String text) {
    Path p = new Path(root, name);
    try (OutputStream out = fs.create(p, true)) {
      out.write(text.getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + p, e);
    }
  }
}
