package dev.tokenpress.jobs.compress;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Checks on the driver that fail a job before Spark runs any task, each a {@link ConfigException}
 * naming the field: the plan against the model bundle's shape ({@link ProcessorFactory#checkPlan},
 * which reads the bundle's manifest and loads no model), and an {@code output.path} that is, or
 * lies under, a file.
 */
public final class Preflight {
  private Preflight() {}

  /**
   * What {@code main} can check before it creates the session: the plan when the bundle is a local
   * directory (a bundle shipped with {@code --files}/{@code --archives} or on a Hadoop URI is
   * checked by {@link #check} once the session exists), and a local {@code output.path}.
   */
  public static void beforeSession(JobConfig config, ProcessorFactory factory) {
    String out = config.output().path();
    URI uri = new Path(out).toUri();
    if (uri.getScheme() == null || uri.getScheme().equals("file")) {
      // A private instance: a cached file: filesystem made from this bare configuration would be
      // the one the session gets later, without the session's fs.file.impl.
      Configuration conf = new Configuration();
      try (FileSystem fs = FileSystem.newInstance(new Path(out).toUri(), conf)) {
        checkOutputPath(out, fs);
      } catch (IOException e) {
        throw new ConfigException("output.path", "cannot check " + out + ": " + e.getMessage());
      }
    }
    PlanSpec plan = PlanSpec.of(config.plan());
    RuntimeFactories.checkKvDtype(config, plan);
    if (Files.isDirectory(
        java.nio.file.Path.of(RuntimeFactories.resolveBundle(config.model().bundle())))) {
      checkPlan(RuntimeFactories.spec(config), plan, factory);
    }
  }

  /** Every check, in a session ({@code hadoopConf}: the session's Hadoop configuration). */
  public static void check(
      JobConfig config,
      ProcessorSpec spec,
      PlanSpec plan,
      ProcessorFactory factory,
      Configuration hadoopConf) {
    RuntimeFactories.checkKvDtype(config, plan);
    checkPlan(spec, plan, factory);
    String out = config.output().path();
    try {
      checkOutputPath(out, new Path(out).getFileSystem(hadoopConf));
    } catch (IOException e) {
      throw new ConfigException("output.path", "cannot check " + out + ": " + e.getMessage());
    }
  }

  /**
   * {@link ProcessorFactory#checkPlan}; its errors become {@link ConfigException}s of {@code plan}
   * (its messages start with {@code plan}), or of {@code model.bundle} when the bundle cannot be
   * found or read.
   */
  static void checkPlan(ProcessorSpec spec, PlanSpec plan, ProcessorFactory factory) {
    try {
      factory.checkPlan(spec, plan.plan());
    } catch (ConfigException e) {
      throw e;
    } catch (IllegalArgumentException e) {
      String m = e.getMessage();
      if (m != null && m.startsWith("plan")) {
        throw new ConfigException("plan", m + " (model bundle " + spec.bundle() + ")");
      }
      throw new ConfigException("model.bundle", m);
    } catch (RuntimeException e) {
      // An unreadable bundle (BundleException, I/O): the plan cannot be checked, nor run.
      throw new ConfigException(
          "model.bundle", "cannot read the model bundle " + spec.bundle() + ": " + e.getMessage());
    }
  }

  /**
   * Refuses an {@code output.path} that is a file or lies under one (the job writes a directory
   * there).
   */
  static void checkOutputPath(String path, FileSystem fs) throws IOException {
    Path p = fs.makeQualified(new Path(path));
    for (Path q = p; q != null; q = q.getParent()) {
      FileStatus st;
      try {
        st = fs.getFileStatus(q);
      } catch (java.io.FileNotFoundException e) {
        continue;
      }
      if (st.isDirectory()) {
        return;
      }
      throw new ConfigException(
          "output.path",
          q.equals(p)
              ? p
                  + " is a file; output.path must be a directory (a new one, or one a previous run wrote)"
              : path
                  + " lies under "
                  + q
                  + ", which is a file, not a directory; choose another output.path");
    }
  }
}
