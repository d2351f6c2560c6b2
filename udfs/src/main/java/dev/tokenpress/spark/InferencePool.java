package dev.tokenpress.spark;

import java.util.concurrent.Callable;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An executor's shared inference threads (one per task slot, first in, first out) and the bound on
 * the records its tasks may have in flight at once: {@code 2 × threads} executor-wide (as many
 * running as there are threads, as many more queued or finished and waiting to be written), so the
 * executor's memory for results does not grow with its slots squared.
 *
 * <p>Deadlock-free by construction: a task {@linkplain #tryAcquire takes a permit without waiting}
 * while it has records in flight (when none is free it writes its oldest record instead, which
 * needs no permit), and {@linkplain #acquire waits} only when it has none in flight; the threads
 * never wait on tasks.
 */
public final class InferencePool implements AutoCloseable {
  private final ThreadPoolExecutor threads;
  private final Semaphore permits;

  InferencePool(int size) {
    if (size < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + size);
    }
    AtomicInteger count = new AtomicInteger();
    this.threads =
        new ThreadPoolExecutor(
            size,
            size,
            0,
            TimeUnit.MILLISECONDS,
            new LinkedBlockingQueue<>(),
            r -> {
              Thread t = new Thread(r, "tokenpress-inference-" + count.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    this.threads.prestartAllCoreThreads();
    this.permits = new Semaphore(2 * size, true);
  }

  /**
   * Records that may still be put in flight executor-wide (twice the threads when no task has any).
   */
  public int freePermits() {
    return permits.availablePermits();
  }

  /** A permit for one more record in flight, if one is free now. */
  boolean tryAcquire() {
    return permits.tryAcquire();
  }

  /** Waits for a permit (only for a task with no record in flight). */
  void acquire() throws InterruptedException {
    permits.acquire();
  }

  /** Returns a record's permit once its result has been taken or dropped. */
  void release() {
    permits.release();
  }

  <T> Future<T> submit(Callable<T> work) {
    return threads.submit(work);
  }

  /** Stops the threads, waiting up to a minute for the records they run. */
  @Override
  public void close() {
    threads.shutdownNow();
    try {
      threads.awaitTermination(60, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
