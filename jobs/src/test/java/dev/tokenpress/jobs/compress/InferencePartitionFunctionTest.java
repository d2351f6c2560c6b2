package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.spark.EngineInfo;
import dev.tokenpress.spark.ExecutorRuntimes;
import dev.tokenpress.spark.InferencePartitionFunction;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.OutputSchemas;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordFailedException;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.RecordResult;
import dev.tokenpress.spark.RowProvenance;
import dev.tokenpress.spark.SerializableHadoopConf;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.LongAccumulator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The partition function on the shared inference pool against the task's own thread: same rows in
 * the same order, records really run side by side on the pool, failures handled as before.
 */
class InferencePartitionFunctionTest {
  private static final ProcessorSpec SPEC =
      new ProcessorSpec("test-bundle", 32, 0, 1 << 24, 1, KvPrecision.FP16);
  private static final RowProvenance PROV = new RowProvenance("[]", "h", "c", "run", "batch");

  /**
   * Records how many records run at once and on which threads (test-only state, reset per test).
   */
  static final AtomicInteger RUNNING = new AtomicInteger();

  static final AtomicInteger MAX_RUNNING = new AtomicInteger();
  static final ConcurrentHashMap<String, Boolean> THREADS = new ConcurrentHashMap<>();
  static final AtomicInteger CREATED = new AtomicInteger();
  static final ConcurrentHashMap<String, Boolean> PLANS = new ConcurrentHashMap<>();

  /** {@link TestProcessorFactory}'s processor, observed. */
  record ProbeFactory(int sleepMs) implements ProcessorFactory {
    @Override
    public RecordProcessor create(ProcessorSpec spec, int intraOpThreads) {
      CREATED.incrementAndGet();
      RecordProcessor inner = new TestProcessorFactory(null, sleepMs).create(spec, intraOpThreads);
      return new RecordProcessor() {
        @Override
        public RecordResult process(InputRecord record, CompressionPlan plan) {
          MAX_RUNNING.accumulateAndGet(RUNNING.incrementAndGet(), Math::max);
          THREADS.put(Thread.currentThread().getName(), true);
          PLANS.put(plan.planHash(), true);
          try {
            return inner.process(record, plan);
          } finally {
            RUNNING.decrementAndGet();
          }
        }

        @Override
        public EngineInfo engineInfo() {
          return inner.engineInfo();
        }

        @Override
        public void close() {}
      };
    }

    @Override
    public EngineInfo describe(ProcessorSpec spec) {
      return TestProcessorFactory.ENGINE;
    }

    @Override
    public void checkPlan(ProcessorSpec spec, CompressionPlan plan) {
      new TestProcessorFactory().checkPlan(spec, plan);
    }
  }

  @AfterEach
  void reset() {
    ExecutorRuntimes.closeAll();
    RUNNING.set(0);
    MAX_RUNNING.set(0);
    THREADS.clear();
    CREATED.set(0);
    PLANS.clear();
  }

  private final SparkSession spark = SparkTestSession.get();
  private final LongAccumulator ok = spark.sparkContext().longAccumulator();
  private final LongAccumulator errors = spark.sparkContext().longAccumulator();

  private InferencePartitionFunction fn(
      ProcessorFactory factory, boolean failFast, boolean shared, int workers) {
    return fn(factory, CompressionPlan.empty(), failFast, shared, workers);
  }

  private InferencePartitionFunction fn(
      ProcessorFactory factory,
      CompressionPlan plan,
      boolean failFast,
      boolean shared,
      int workers) {
    return new InferencePartitionFunction(
        factory,
        SPEC,
        plan,
        PROV,
        failFast,
        true,
        1 << 20,
        spark
            .sparkContext()
            .broadcast(
                new SerializableHadoopConf(spark.sparkContext().hadoopConfiguration()),
                scala.reflect.ClassTag$.MODULE$.apply(SerializableHadoopConf.class)),
        ok,
        errors,
        shared,
        workers);
  }

  /** Work rows with inline bytes; every fourth image broken (a truncated PNG). */
  private static List<Row> work(int n) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      byte[] png = TestImages.png(8 + i, 6 + i % 3, i);
      rows.add(
          RowFactory.create(
              "img-" + i, "mem://" + i, i % 4 == 3 ? TestImages.truncated(png) : png, "p", null));
    }
    return rows;
  }

  /** Each emitted row as its kind and the fields that do not depend on time or timing. */
  private static List<String> describe(Iterator<Row> it) {
    List<String> out = new ArrayList<>();
    while (it.hasNext()) {
      Row r = it.next();
      if (OutputSchemas.KIND_OUTPUT.equals(r.getString(0))) {
        Row o = r.getStruct(1);
        out.add("output " + o.get(0) + " " + o.get(4) + " " + o.get(6));
      } else {
        Row kv = r.getStruct(2);
        out.add("kv " + kv.get(0) + " " + kv.get(1) + " " + kv.get(2));
      }
    }
    return out;
  }

  @Test
  void sharedPoolEmitsTheSameRowsInTheSameOrderAsTheTaskThread() {
    List<Row> work = work(12);
    List<String> own = describe(fn(new ProbeFactory(0), false, false, 0).call(work.iterator()));
    assertThat(THREADS.keySet()).containsExactly(Thread.currentThread().getName());
    assertThat(ok.value()).isEqualTo(9);
    assertThat(errors.value()).isEqualTo(3);
    THREADS.clear();
    List<String> shared = describe(fn(new ProbeFactory(0), false, true, 3).call(work.iterator()));
    assertThat(shared).isEqualTo(own);
    assertThat(own).filteredOn(s -> s.startsWith("output")).hasSize(12);
    assertThat(own).filteredOn(s -> s.contains(" error ")).hasSize(3);
    assertThat(THREADS.keySet()).allMatch(t -> t.startsWith("tokenpress-inference-"));
    assertThat(ok.value()).isEqualTo(18);
    assertThat(errors.value()).isEqualTo(6);
  }

  /**
   * The executor cache is keyed by the model: tasks of different plans share one loaded runtime.
   */
  @Test
  void tasksWithDifferentPlansShareOneModelLoad() {
    ProbeFactory factory = new ProbeFactory(0);
    CompressionPlan drop = CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":8}]");
    describe(fn(factory, CompressionPlan.empty(), false, false, 0).call(work(4).iterator()));
    describe(fn(factory, drop, false, true, 2).call(work(4).iterator()));
    assertThat(CREATED.get()).isEqualTo(1);
    assertThat(ExecutorRuntimes.size()).isEqualTo(1);
    assertThat(PLANS.keySet())
        .containsExactlyInAnyOrder(CompressionPlan.empty().planHash(), drop.planHash());
  }

  @Test
  void theTaskKeepsAsManyRecordsInFlightAsThePoolHasThreads() {
    // 8 records of 150 ms on a pool of 2: the task queues two at a time, so two run at once.
    describe(fn(new ProbeFactory(150), false, true, 2).call(work(8).iterator()));
    assertThat(MAX_RUNNING.get()).isEqualTo(2);
    assertThat(THREADS).hasSize(2);
    // On the task's thread, one at a time.
    reset();
    describe(fn(new ProbeFactory(20), false, false, 0).call(work(4).iterator()));
    assertThat(MAX_RUNNING.get()).isEqualTo(1);
  }

  @Test
  void fourTasksOnAPoolOfTwoKeepAtMostFourRecordsInFlightAndReturnEveryPermit() throws Exception {
    List<Row> work = work(24);
    List<String> expected =
        describe(fn(new ProbeFactory(0), false, false, 0).call(work.iterator()));
    InferencePartitionFunction shared = fn(new ProbeFactory(5), false, true, 2);
    var executor = java.util.concurrent.Executors.newFixedThreadPool(4);
    try {
      List<java.util.concurrent.Future<List<String>>> tasks = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        tasks.add(executor.submit(() -> describe(shared.call(work.iterator()))));
      }
      for (var task : tasks) {
        assertThat(task.get(60, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(expected);
      }
    } finally {
      executor.shutdownNow();
    }
    assertThat(MAX_RUNNING.get()).isLessThanOrEqualTo(2);
    assertThat(ExecutorRuntimes.workers(2).freePermits()).isEqualTo(4);
  }

  @Test
  void failFastStopsAtTheFirstBrokenRecordOnThePool() {
    Iterator<Row> rows = fn(new ProbeFactory(0), true, true, 2).call(work(8).iterator());
    assertThatThrownBy(() -> describe(rows))
        .isInstanceOf(RecordFailedException.class)
        .hasMessageContaining("img-3");
    assertThat(ok.value()).isEqualTo(3);
    assertThat(ExecutorRuntimes.workers(2).freePermits())
        .as("permits of the dropped records returned")
        .isEqualTo(4);
  }

  @Test
  void anErrorOnThePoolEndsTheTask() {
    var crash = new TestProcessorFactory("img-2", 0);
    Iterator<Row> rows = fn(crash, false, true, 2).call(work(8).iterator());
    assertThatThrownBy(() -> describe(rows)).isInstanceOf(TestProcessorFactory.InjectedCrash.class);
  }

  @Test
  void negativeWorkersAreRejected() {
    assertThatThrownBy(() -> fn(new ProbeFactory(0), false, true, -1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("workers");
  }
}
