package dev.tokenpress.jobs.compress;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.operators.api.TokenOperator;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.VlmProcessorFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Chooses the production {@link ProcessorFactory} for a config and resolves bundle paths. */
public final class RuntimeFactories {
  private RuntimeFactories() {}

  /** The ONNX Runtime-backed factory ({@link VlmProcessorFactory}). */
  public static ProcessorFactory forConfig(JobConfig config) {
    return VlmProcessorFactory.INSTANCE;
  }

  /** What an executor needs to load the model of {@code config} (the plan travels separately). */
  public static ProcessorSpec spec(JobConfig config) {
    return new ProcessorSpec(
        resolveBundle(config.model().bundle()),
        config.model().maxNewTokens(),
        config.model().seed(),
        config.model().maxPixels(),
        config.model().intraOpThreads(),
        config.kv().dtype().precision());
  }

  /**
   * Refuses an integer {@code kv.dtype} (uniform quantisation of the whole cache) together with a
   * plan whose operators quantise the cache themselves (e.g. ZipVL): the cache would be quantised
   * twice.
   */
  public static void checkKvDtype(JobConfig config, PlanSpec plan) {
    if (!config.kv().dtype().precision().quantized()) {
      return;
    }
    List<TokenOperator> ops = plan.plan().build();
    for (int i = 0; i < ops.size(); i++) {
      if (ops.get(i).quantizesKv()) {
        throw new ConfigException(
            "kv.dtype",
            config.kv().dtype().wire()
                + " quantises the KV cache and so does plan["
                + i
                + "] ("
                + ops.get(i).name()
                + "); a plan that quantises the cache needs kv.dtype float32 or float16");
      }
    }
  }

  /**
   * A bundle given as an existing local relative path becomes absolute (so executors in local mode
   * and on a shared filesystem find it); URIs and names shipped with --files/--archives stay.
   */
  public static String resolveBundle(String bundle) {
    if (bundle.contains("://") || bundle.startsWith("/")) {
      return bundle;
    }
    Path p = Path.of(bundle);
    return Files.exists(p) ? p.toAbsolutePath().normalize().toString() : bundle;
  }
}
