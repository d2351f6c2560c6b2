package dev.tokenpress.spark;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How many tasks an executor runs at once ({@code executor cores / spark.task.cpus}), from the
 * Spark configuration an executor sees: the size of its shared inference pool.
 *
 * <p>Cores: for a local master the thread count of {@code local[N]}, {@code local[N,F]} ({@code *}
 * = the machine's processors; plain {@code local} = 1) or the cores per worker of {@code
 * local-cluster[W,C,M]}; otherwise {@code spark.executor.cores}, whose default is 1 on YARN and
 * Kubernetes and all the machine's processors elsewhere (standalone).
 */
public final class TaskSlots {
  private static final Pattern LOCAL = Pattern.compile("local\\[(\\*|\\d+)(?:,\\d+)?]");
  private static final Pattern LOCAL_CLUSTER =
      Pattern.compile("local-cluster\\[\\s*\\d+\\s*,\\s*(\\d+)\\s*,.*]");

  private TaskSlots() {}

  /**
   * @param master {@code spark.master} (null or empty when unknown)
   * @param executorCores {@code spark.executor.cores}, or null when not set
   * @param taskCpus {@code spark.task.cpus} (the task's {@code TaskContext.cpus()})
   * @param processors the machine's available processors
   * @return task slots per executor, at least 1
   */
  public static int perExecutor(String master, String executorCores, int taskCpus, int processors) {
    String m = master == null ? "" : master.trim();
    int cores;
    Matcher local = LOCAL.matcher(m);
    Matcher cluster = LOCAL_CLUSTER.matcher(m);
    if (m.equals("local")) {
      cores = 1;
    } else if (local.matches()) {
      cores = local.group(1).equals("*") ? processors : Integer.parseInt(local.group(1));
    } else if (cluster.matches()) {
      cores = Integer.parseInt(cluster.group(1));
    } else if (executorCores != null && !executorCores.isBlank()) {
      cores = Integer.parseInt(executorCores.trim());
    } else if (m.startsWith("yarn") || m.startsWith("k8s")) {
      cores = 1;
    } else {
      cores = processors;
    }
    return Math.max(1, cores / Math.max(1, taskCpus));
  }
}
