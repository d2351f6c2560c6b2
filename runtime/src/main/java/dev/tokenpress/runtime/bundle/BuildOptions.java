package dev.tokenpress.runtime.bundle;

/**
 * Options of {@code tokenpress model build}.
 *
 * @param fused also write the conventional single-graph decoder (for comparisons)
 * @param externalWeights weights in a shared external-data file per graph directory (default;
 *     required above 2 GB) instead of inside every graph
 */
public record BuildOptions(boolean fused, boolean externalWeights) {
  public static BuildOptions defaults() {
    return new BuildOptions(false, true);
  }
}
