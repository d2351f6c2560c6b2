package dev.tokenpress.runtime.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.runtime.vlm.VlmBench;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code tokenpress bench runtime}: the VLM with split graphs vs the fused graphs on the same
 * images, interleaved; JSON with {@code split_ms_per_image}, {@code fused_ms_per_image},
 * {@code ratio}, vision-only figures and {@code decode_tokens_per_s}.
 */
public final class BenchRuntimeCommand {
    static final String USAGE = "bench runtime --bundle DIR --images DIR [--limit 200] [--new-tokens 16] [--threads 1]\n"
            + "                [--warmup 3] [--prompt TEXT]\n"
            + "  Split vs fused graphs (bundle built with --fused) on the same images (e.g. a ShapesVQA split's\n"
            + "  images/), interleaved: image decode + preprocessing + vision + prefill + exactly --new-tokens\n"
            + "  tokens per image; prints split_ms_per_image, fused_ms_per_image, ratio, the vision-only\n"
            + "  figures and decode_tokens_per_s (split).";

    private BenchRuntimeCommand() {}

    public static String run(String[] argv) {
        Args a = new Args(argv, Set.of("--bundle", "--images", "--limit", "--new-tokens", "--threads", "--warmup",
                "--prompt"), Set.of());
        Path bundle = a.path("--bundle");
        Path dir = a.path("--images");
        int limit = a.integer("--limit", 200, 1);
        int newTokens = a.integer("--new-tokens", 16, 1);
        int threads = a.integer("--threads", 1, 0);
        int warmup = a.integer("--warmup", 3, 0);
        if (!Files.isDirectory(dir)) {
            throw new UsageException("--images " + dir + " is not a directory");
        }
        List<byte[]> images = new ArrayList<>();
        try (Stream<Path> s = Files.walk(dir)) {
            List<Path> files = s.filter(Files::isRegularFile)
                    .filter(p -> p.getFileName().toString().matches("(?i).*\\.(png|jpe?g|gif|bmp)$"))
                    .sorted().limit(limit).toList();
            for (Path p : files) {
                images.add(Files.readAllBytes(p));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read images from " + dir, e);
        }
        if (images.isEmpty()) {
            throw new UsageException("no PNG/JPEG/GIF/BMP images under --images " + dir);
        }
        VlmBench.Report r = VlmBench.run(bundle, images, a.string("--prompt", "describe the image."), newTokens, threads,
                warmup);
        ObjectNode o = Json.MAPPER.valueToTree(r.toMap());
        o.put("bundle", bundle.toAbsolutePath().toString());
        return Json.write(o);
    }
}
