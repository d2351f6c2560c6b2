package dev.tokenpress.runtime.bundle;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code bundle.json}: what a bundle holds and the sha256 of every file. Its bytes are a function
 * of the checkpoint's content and the build options only (no time, path or directory name, keys and
 * files in a fixed order), so its sha256 (a run's {@code model_sha256}) identifies the model: every
 * build of the same checkpoint gives the same bytes.
 *
 * @param format always {@value #FORMAT}
 * @param formatVersion {@value #FORMAT_VERSION}; readers refuse newer versions
 * @param family source family: {@code llama} (LM only) or {@code llava}
 * @param lm the language model
 * @param vision the vision tower and projector section (owned by the vision side), or null
 * @param text tokenizer / chat template section, or null
 * @param build how the graphs were made (ONNX opset); sorted by key
 * @param files every file of the bundle except bundle.json itself, sorted by path
 * @param analysis what was measured on the model after the build, by key (e.g. {@code var}: VAR's
 *     sink dimensions, written by {@code tokenpress var sinks --write}); null (and absent from the
 *     file) until something is stored
 */
public record BundleManifest(
    String format,
    int formatVersion,
    String family,
    LmSpec lm,
    JsonNode vision,
    JsonNode text,
    Map<String, String> build,
    List<BundleFile> files,
    @com.fasterxml.jackson.annotation.JsonInclude(
            com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
        JsonNode analysis) {

  public static final String FORMAT = "tokenpress-bundle";
  public static final int FORMAT_VERSION = 1;
  public static final String FILE_NAME = "bundle.json";

  @com.fasterxml.jackson.annotation.JsonCreator
  public BundleManifest {
    files = files.stream().sorted(Comparator.comparing(BundleFile::path)).toList();
    // Not Map.copyOf: its iteration order (hence bundle.json's key order) changes from JVM to JVM.
    build = Collections.unmodifiableMap(build == null ? new TreeMap<>() : new TreeMap<>(build));
  }

  /** A manifest without analysis (what a build writes). */
  public BundleManifest(
      String format,
      int formatVersion,
      String family,
      LmSpec lm,
      JsonNode vision,
      JsonNode text,
      Map<String, String> build,
      List<BundleFile> files) {
    this(format, formatVersion, family, lm, vision, text, build, files, null);
  }

  /** The stored analysis under {@code key}, or null. */
  public JsonNode analysis(String key) {
    return analysis == null ? null : analysis.get(key);
  }

  /**
   * This manifest with {@code value} stored as analysis {@code key} (replacing an earlier value).
   */
  public BundleManifest withAnalysis(String key, JsonNode value) {
    com.fasterxml.jackson.databind.node.ObjectNode a =
        analysis instanceof com.fasterxml.jackson.databind.node.ObjectNode o
            ? o.deepCopy()
            : com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
    a.set(key, value);
    return new BundleManifest(format, formatVersion, family, lm, vision, text, build, files, a);
  }
}
