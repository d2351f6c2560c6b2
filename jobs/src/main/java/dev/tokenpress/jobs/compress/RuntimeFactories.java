package dev.tokenpress.jobs.compress;

import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.spark.ProcessorFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/** Chooses the production {@link ProcessorFactory} for a config and resolves bundle paths. */
public final class RuntimeFactories {
  private RuntimeFactories() {}

  /** The ONNX Runtime-backed factory. */
  public static ProcessorFactory forConfig(JobConfig config) {
    throw new UnsupportedOperationException(
        "the ONNX runtime adapter is not wired yet (waiting for the runtime module on main)");
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
