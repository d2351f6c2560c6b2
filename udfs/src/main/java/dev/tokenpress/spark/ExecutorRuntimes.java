package dev.tokenpress.spark;

import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-executor-JVM cache of loaded runtimes, keyed by the model (factory, {@link
 * ProcessorSpec}: bundle and runtime settings, intra-op threads) — not by the compression plan,
 * which each record brings — and of the executor's shared inference pool.
 *
 * <p>This is the only static mutable state in tokenpress. A model is loaded lazily by the first
 * task that needs it and then shared by every task thread of the executor ({@link RecordProcessor}s
 * are thread-safe), so an executor with N task slots holds one copy of the weights, not N. Entries
 * live until the JVM exits (a shutdown hook closes them); {@link #closeAll()} exists for tests.
 * Creation happens inside {@link ConcurrentHashMap#computeIfAbsent}, so concurrent tasks wait for
 * one load instead of racing.
 *
 * <p>The inference pool ({@link #workers}, an {@link InferencePool}) holds one daemon thread per
 * task slot; the tasks of the executor queue their records into it (first in, first out), so a task
 * that has run out of records leaves its core to the records of the tasks still running instead of
 * idling.
 */
public final class ExecutorRuntimes {
  private static final Logger LOG = LoggerFactory.getLogger(ExecutorRuntimes.class);
  private static final ConcurrentHashMap<Key, RecordProcessor> CACHE = new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<Integer, InferencePool> POOLS = new ConcurrentHashMap<>();

  static {
    Runtime.getRuntime()
        .addShutdownHook(new Thread(ExecutorRuntimes::closeAll, "tokenpress-runtimes-close"));
  }

  private ExecutorRuntimes() {}

  private record Key(ProcessorFactory factory, ProcessorSpec spec, int threads) {}

  /** The executor's processor for this key, loading it on first use. */
  public static RecordProcessor getOrCreate(
      ProcessorFactory factory, ProcessorSpec spec, int intraOpThreads) {
    return CACHE.computeIfAbsent(
        new Key(factory, spec, intraOpThreads),
        k -> {
          long t0 = System.nanoTime();
          RecordProcessor p = k.factory().create(k.spec(), k.threads());
          LOG.info(
              "loaded runtime for bundle {} with {} intra-op threads in {} ms",
              k.spec().bundle(),
              k.threads(),
              (System.nanoTime() - t0) / 1_000_000);
          return p;
        });
  }

  /**
   * The executor's shared inference pool of {@code threads} daemon threads, created on first use.
   * Its threads start from the calling (task) thread, so they inherit its context class loader.
   */
  public static InferencePool workers(int threads) {
    return POOLS.computeIfAbsent(
        threads,
        n -> {
          InferencePool pool = new InferencePool(n);
          LOG.info("started {} shared inference threads", n);
          return pool;
        });
  }

  /** Number of loaded runtimes in this JVM. */
  public static int size() {
    return CACHE.size();
  }

  /**
   * Stops the inference pools (waiting for running records) and closes and forgets every loaded
   * runtime.
   */
  public static void closeAll() {
    for (Integer n : POOLS.keySet()) {
      InferencePool pool = POOLS.remove(n);
      if (pool != null) {
        pool.close();
      }
    }
    for (Key k : CACHE.keySet()) {
      RecordProcessor p = CACHE.remove(k);
      if (p != null) {
        try {
          p.close();
        } catch (RuntimeException e) {
          LOG.warn("closing runtime for {} failed", k.spec().bundle(), e);
        }
      }
    }
  }
}
