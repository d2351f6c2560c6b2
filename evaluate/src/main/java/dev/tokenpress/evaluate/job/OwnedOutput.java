package dev.tokenpress.evaluate.job;

import dev.tokenpress.jobs.config.ConfigException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * An output directory a job owns only some entries of: it must be absent, empty, or hold only those
 * entries (an earlier run's), which are replaced only with {@code output.overwrite} — and then only
 * they are deleted. Anything else there is refused, never deleted.
 */
final class OwnedOutput {
  private OwnedOutput() {}

  static void prepare(FileSystem fs, Path out, Set<String> owned, boolean overwrite, String job)
      throws IOException {
    if (!fs.exists(out)) {
      return;
    }
    if (!fs.getFileStatus(out).isDirectory()) {
      throw new ConfigException("output.path", "'" + out + "' is a file; give a directory");
    }
    List<String> ours = new ArrayList<>();
    List<String> foreign = new ArrayList<>();
    for (FileStatus st : fs.listStatus(out)) {
      (owned.contains(st.getPath().getName()) ? ours : foreign).add(st.getPath().getName());
    }
    if (!foreign.isEmpty()) {
      throw new ConfigException(
          "output.path",
          "'"
              + out
              + "' holds entries the "
              + job
              + " job did not write "
              + foreign
              + "; give an empty or new directory");
    }
    if (!ours.isEmpty() && !overwrite) {
      throw new ConfigException(
          "output.overwrite",
          "'"
              + out
              + "' holds an earlier "
              + job
              + " output "
              + ours
              + "; set output.overwrite=true to replace it, or give another output.path");
    }
    for (String name : ours) {
      fs.delete(new Path(out, name), true);
    }
  }

  static void write(FileSystem fs, Path path, String text) throws IOException {
    try (FSDataOutputStream o = fs.create(path, true)) {
      o.write(text.getBytes(StandardCharsets.UTF_8));
    }
  }
}
