package dev.tokenpress.runtime.bundle;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;

/**
 * {@code bundle.json}: what a bundle holds and the sha256 of every file.
 *
 * @param format        always {@value #FORMAT}
 * @param formatVersion {@value #FORMAT_VERSION}; readers refuse newer versions
 * @param family        source family: {@code llama} (LM only) or {@code llava}
 * @param lm            the language model
 * @param vision        the vision tower and projector section (owned by the vision side), or null
 * @param text          tokenizer / chat template section, or null
 * @param build         how the bundle was made (source checkpoint, builder version)
 * @param files         every file of the bundle except bundle.json itself
 */
public record BundleManifest(
        String format,
        int formatVersion,
        String family,
        LmSpec lm,
        JsonNode vision,
        JsonNode text,
        Map<String, String> build,
        List<BundleFile> files) {

    public static final String FORMAT = "tokenpress-bundle";
    public static final int FORMAT_VERSION = 1;
    public static final String FILE_NAME = "bundle.json";

    public BundleManifest {
        files = List.copyOf(files);
        build = build == null ? Map.of() : Map.copyOf(build);
    }
}
