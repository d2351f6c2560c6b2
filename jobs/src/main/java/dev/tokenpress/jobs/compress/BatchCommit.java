package dev.tokenpress.jobs.compress;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The compress job's commit protocol for one batch: exactly once under driver kill, executor kill
 * and task retry, with nothing half-written visible to a reader that globs {@code *.parquet}.
 *
 * <ol>
 *   <li>Each task attempt writes its {@code outputs} and {@code kv_cache} files under its own
 *       directory {@code _tokenpress/staging/<batch>/<attempt>/}, named {@code *.tmp}, and returns
 *       their names ({@link Staged}). Spark returns exactly one result per partition to the driver
 *       (a failed, retried or losing speculative attempt's files are never named).
 *   <li>The driver writes the batch's journal {@code _tokenpress/commits/<batch>.json} (atomically:
 *       a temporary file renamed): the list of moves from staged names to final names. The batch is
 *       committed from this point on.
 *   <li>The driver moves the {@code kv_cache/batch_id=<batch>/} files, then the {@code outputs/}
 *       files, into place, then deletes the batch's staging directory and its journal.
 * </ol>
 *
 * A run that dies before step 2 leaves only staged files, which the next run deletes (their ids are
 * not in {@code outputs/}, so they are processed again). A run that dies during step 3 leaves a
 * journal, which the next run replays before anything else ({@link #recover}): moves are idempotent
 * (a move whose source is gone and whose target exists is done). Final names are derived from the
 * batch and partition, so a replay never creates a second copy. A batch whose staged files were
 * removed from outside is rolled back instead ({@link #recover}).
 */
final class BatchCommit {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * What one task attempt staged, relative to the output root; null where it wrote no file.
   *
   * @param extension the writers' file extension (e.g. {@code .zstd.parquet})
   */
  record Staged(int partition, String outputs, String kv, String extension)
      implements Serializable {}

  private BatchCommit() {}

  static String stagingDir(String batchId) {
    return OutputLayout.STAGING + "/" + batchId;
  }

  static String journal(String batchId) {
    return OutputLayout.COMMITS + "/" + batchId + ".json";
  }

  /** Writes the journal of {@code staged}, moves the files into place and cleans up (steps 2–3). */
  static void commit(
      OutputLayout out, String runId, String batchId, List<Staged> staged, JobProbe probe) {
    List<Staged> sorted = new ArrayList<>(staged);
    sorted.sort(Comparator.comparingInt(Staged::partition));
    ObjectNode j = JSON.createObjectNode();
    j.put("run_id", runId);
    j.put("batch_id", batchId);
    ArrayNode kv = j.putArray("kv_cache");
    ArrayNode outputs = j.putArray("outputs");
    for (Staged s : sorted) {
      String name =
          String.format(Locale.ROOT, "part-%05d-%s%s", s.partition(), batchId, s.extension());
      if (s.kv() != null) {
        kv.addObject()
            .put("from", s.kv())
            .put(
                "to",
                OutputLayout.KV_CACHE + "/" + OutputLayout.BATCH_PREFIX + batchId + "/" + name);
      }
      if (s.outputs() != null) {
        outputs.addObject().put("from", s.outputs()).put("to", OutputLayout.OUTPUTS + "/" + name);
      }
    }
    try {
      out.writeTextAtomically(
          journal(batchId), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(j));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    probe.at(JobProbe.Step.JOURNAL_WRITTEN, batchId);
    if (!replay(out, j, probe)) {
      throw new IllegalStateException(
          "batch "
              + batchId
              + ": staged files were removed while it committed (another "
              + "run on the same output.path cleans the staging area: run one job at a time per output); the batch was "
              + "rolled back and its records will be processed again by the next run");
    }
  }

  /**
   * What {@link #recover} did: batches completed, and batches rolled back (to be processed again).
   */
  record Recovery(List<String> completed, List<String> rolledBack) {}

  /**
   * Completes every batch whose journal a dead run left (its files were staged and committed, only
   * the moves may be unfinished). A journal whose staged files something outside the run removed
   * (e.g. a second run started on the same {@code output.path}, which cleans the staging area) can
   * not be completed: its batch is rolled back — the files it had already moved are removed, so its
   * ids have no rows and are processed again — rather than left half-visible.
   */
  static Recovery recover(OutputLayout out) {
    List<String> done = new ArrayList<>();
    List<String> rolledBack = new ArrayList<>();
    for (String name : out.list(OutputLayout.COMMITS)) {
      if (!name.endsWith(".json") || name.startsWith(".")) {
        continue; // a .tmp journal never became a commit; a .crc is the checksum of a journal
      }
      String text = out.readText(OutputLayout.COMMITS + "/" + name);
      JsonNode j;
      try {
        j = JSON.readTree(text);
      } catch (IOException e) {
        throw new IllegalStateException(
            "commit journal "
                + out.path(OutputLayout.COMMITS + "/" + name)
                + " is unreadable ("
                + e.getMessage()
                + "); it was written atomically, so this is damage from outside "
                + "tokenpress: inspect it before resuming",
            e);
      }
      (replay(out, j, JobProbe.NONE) ? done : rolledBack).add(j.get("batch_id").asText());
    }
    return new Recovery(done, rolledBack);
  }

  /**
   * Moves a journal's files into place; false (after rolling the batch back) if a staged file is
   * gone while its target does not exist.
   */
  private static boolean replay(OutputLayout out, JsonNode journal, JobProbe probe) {
    String batchId = journal.get("batch_id").asText();
    if (!complete(out, journal)) {
      for (String dataset : new String[] {"outputs", "kv_cache"}) {
        for (JsonNode m : journal.get(dataset)) {
          out.delete(out.path(m.get("to").asText()));
        }
      }
      out.delete(out.path(stagingDir(batchId)));
      out.delete(out.path(journal(batchId)));
      return false;
    }
    moveAll(out, journal.get("kv_cache"));
    if (!journal.get("kv_cache").isEmpty()) {
      out.writeText(OutputLayout.KV_CACHE + "/_SUCCESS", "");
    }
    probe.at(JobProbe.Step.KV_MOVED, batchId);
    moveAll(out, journal.get("outputs"));
    out.writeText(OutputLayout.OUTPUTS + "/_SUCCESS", "");
    out.delete(out.path(stagingDir(batchId)));
    out.delete(out.path(journal(batchId)));
    probe.at(JobProbe.Step.BATCH_COMMITTED, batchId);
    return true;
  }

  /** Whether every move of the journal has its staged file or is already done. */
  private static boolean complete(OutputLayout out, JsonNode journal) {
    FileSystem fs = out.fs();
    try {
      for (String dataset : new String[] {"kv_cache", "outputs"}) {
        for (JsonNode m : journal.get(dataset)) {
          if (!fs.exists(out.path(m.get("from").asText()))
              && !fs.exists(out.path(m.get("to").asText()))) {
            return false;
          }
        }
      }
      return true;
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot check the files of batch " + journal.get("batch_id").asText(), e);
    }
  }

  private static void moveAll(OutputLayout out, JsonNode moves) {
    FileSystem fs = out.fs();
    for (JsonNode m : moves) {
      Path from = out.path(m.get("from").asText());
      Path to = out.path(m.get("to").asText());
      try {
        boolean src = fs.exists(from);
        boolean dst = fs.exists(to);
        if (!src && dst) {
          continue; // moved before the previous run died
        }
        if (!src) {
          throw new IllegalStateException(
              "commit of "
                  + to
                  + ": its staged file "
                  + from
                  + " is missing and the "
                  + "target does not exist; something outside tokenpress removed it");
        }
        if (dst) {
          // A target and its source both present: the rename did not happen (a copy-based rename
          // that died half-way); the staged file is the complete one.
          fs.delete(to, false);
        }
        fs.mkdirs(to.getParent());
        if (!fs.rename(from, to)) {
          throw new IOException("rename returned false");
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot move " + from + " to " + to, e);
      }
    }
  }
}
