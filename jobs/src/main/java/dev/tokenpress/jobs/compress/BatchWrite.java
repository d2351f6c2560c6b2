package dev.tokenpress.jobs.compress;

import dev.tokenpress.spark.InferencePartitionFunction;
import dev.tokenpress.spark.OutputSchemas;
import dev.tokenpress.spark.SerializableHadoopConf;
import java.io.Serializable;
import java.util.Arrays;
import java.util.Date;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.Job;
import org.apache.hadoop.mapreduce.JobID;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.TaskAttemptID;
import org.apache.hadoop.mapreduce.TaskID;
import org.apache.hadoop.mapreduce.TaskType;
import org.apache.hadoop.mapreduce.task.TaskAttemptContextImpl;
import org.apache.spark.SparkContext;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.internal.io.SparkHadoopWriterUtils;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.CatalystTypeConverters;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.execution.datasources.OutputWriter;
import org.apache.spark.sql.execution.datasources.OutputWriterFactory;
import org.apache.spark.sql.execution.datasources.parquet.ParquetFileFormat;
import org.apache.spark.sql.types.StructType;
import scala.Function1;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Writes one batch of the compress job — its {@code outputs/} rows and, with KV enabled, its {@code
 * kv_cache/batch_id=<batch>/} rows — from a single pass of inference tasks, and commits it with the
 * job's own journal protocol ({@link BatchCommit}).
 *
 * <p>Each task runs the {@link InferencePartitionFunction} over its work rows and streams the union
 * of rows it emits into two Parquet writers (Spark's own Parquet output writers, configured as a
 * {@code DataFrameWriter} would configure them: zstd, the job's Parquet options and session
 * settings), each opened on the first row it receives, in the attempt's own staging directory. The
 * task returns the names of its files; the driver commits the batch from the one result per
 * partition that Spark returns.
 *
 * <p>Why not Spark's file commit protocol: Hadoop's {@code FileOutputCommitter} keeps committed
 * task output in {@code <root>/_temporary/0/}, shared by every job on that root, so a job commit
 * after a driver crash also committed the dead job's task files (duplicate KV rows), and its {@code
 * .spark-staging-*} directories of zero-byte {@code .parquet} files outlived a crash and broke glob
 * readers. The staging area here is per batch and attempt, outside the datasets, with names no
 * reader globs, and the driver commits through a journal that a resume replays.
 *
 * <p>Compared with persisting the inference stream and running one {@code DataFrameWriter} per
 * dataset, this runs one Spark job per batch instead of two, plans no queries for the writes, and
 * neither encodes the KV bytes into Spark's columnar cache nor reads them back (measured:
 * docs/benchmarks.md, "Spark compress job: throughput").
 */
final class BatchWrite implements Serializable {
  private static final long serialVersionUID = 1L;

  /**
   * The stored columns of {@code kv_cache/}: {@link OutputSchemas#KV_CACHE} less its directory
   * partition.
   */
  static final StructType KV_FILE_SCHEMA = withoutLast(OutputSchemas.KV_CACHE, "batch_id");

  private final String jobTrackerId;
  private final boolean kv;

  /** The output root (qualified) and the batch's staging directory relative to it. */
  private final String root;

  private final String staging;
  private final OutputWriterFactory kvWriters;
  private final OutputWriterFactory outputsWriters;

  /**
   * The session's Hadoop configuration, shared with the partition function (one broadcast per run).
   */
  private final Broadcast<SerializableHadoopConf> baseConf;

  /** What the writers' configurations set on top of {@link #baseConf}. */
  private final HashMap<String, String> kvConf;

  private final HashMap<String, String> outputsConf;
  private final OutputTally tally;

  private BatchWrite(
      String jobTrackerId,
      boolean kv,
      String root,
      String staging,
      OutputWriterFactory kvWriters,
      OutputWriterFactory outputsWriters,
      Broadcast<SerializableHadoopConf> baseConf,
      HashMap<String, String> kvConf,
      HashMap<String, String> outputsConf,
      OutputTally tally) {
    this.jobTrackerId = jobTrackerId;
    this.kv = kv;
    this.root = root;
    this.staging = staging;
    this.kvWriters = kvWriters;
    this.outputsWriters = outputsWriters;
    this.baseConf = baseConf;
    this.kvConf = kvConf;
    this.outputsConf = outputsConf;
    this.tally = tally;
  }

  /**
   * Prepares the write of one batch into {@code out}.
   *
   * @param baseConf the broadcast of the session's Hadoop configuration ({@code
   *     SparkContext.hadoopConfiguration})
   * @param outputsOptions Parquet options of {@code outputs/} files (as for {@code
   *     DataFrameWriter.option})
   * @param kvOptions Parquet options of {@code kv_cache/} files, or null for no KV
   */
  static BatchWrite prepare(
      SparkSession spark,
      Broadcast<SerializableHadoopConf> baseConf,
      OutputLayout out,
      String batchId,
      Map<String, String> outputsOptions,
      Map<String, String> kvOptions,
      OutputTally tally) {
    boolean kv = kvOptions != null;
    Job outputsJob = job(spark, outputsOptions);
    OutputWriterFactory outputsWriters =
        new ParquetFileFormat()
            .prepareWrite(spark, outputsJob, scalaMap(outputsOptions), OutputSchemas.OUTPUTS);
    Configuration base = baseConf.value().get();
    HashMap<String, String> kvConf = new HashMap<>();
    OutputWriterFactory kvWriters = null;
    if (kv) {
      Job kvJob = job(spark, kvOptions);
      kvWriters =
          new ParquetFileFormat().prepareWrite(spark, kvJob, scalaMap(kvOptions), KV_FILE_SCHEMA);
      kvConf = overrides(kvJob.getConfiguration(), base);
    }
    return new BatchWrite(
        SparkHadoopWriterUtils.createJobTrackerID(new Date()),
        kv,
        out.root(),
        BatchCommit.stagingDir(batchId),
        kvWriters,
        outputsWriters,
        baseConf,
        kvConf,
        overrides(outputsJob.getConfiguration(), base),
        tally);
  }

  /** The entries of {@code conf} that {@code base} lacks or sets differently. */
  static HashMap<String, String> overrides(Configuration conf, Configuration base) {
    HashMap<String, String> diff = new HashMap<>();
    for (Map.Entry<String, String> e : conf) {
      if (!e.getValue().equals(base.getRaw(e.getKey()))) {
        diff.put(e.getKey(), e.getValue());
      }
    }
    return diff;
  }

  /**
   * Runs the inference tasks over {@code work} as one Spark job (described by {@code description})
   * and returns what each partition staged (one entry per partition). On any failure it cancels the
   * job if it still runs, waits (up to {@link #ABORT_WAIT_MS}) until none of its tasks runs any
   * more — a task still running after the job failed would otherwise create files after the
   * clean-up —, deletes the batch's staging directory and rethrows. Nothing is committed here: the
   * caller commits the result with {@link BatchCommit#commit}.
   */
  List<BatchCommit.Staged> run(
      JavaRDD<Row> work, InferencePartitionFunction inference, String description, OutputLayout out)
      throws Exception {
    SparkContext sc = work.context();
    String group = "tokenpress-" + UUID.randomUUID();
    TaskCounter tasks = new TaskCounter(group);
    sc.addSparkListener(tasks);
    sc.setJobGroup(group, description, true);
    try {
      return work.mapPartitions(task(inference)).collect();
    } catch (Throwable t) {
      try {
        if (tasks.jobRunning()) {
          sc.cancelJobGroup(
              group); // e.g. the driver was interrupted; a failed job's tasks are killed by Spark
        }
        tasks.awaitAllEnded(ABORT_WAIT_MS);
        out.delete(out.path(staging));
      } catch (RuntimeException suppressed) {
        t.addSuppressed(suppressed);
      }
      throw t;
    } finally {
      sc.clearJobGroup();
      sc.removeSparkListener(tasks);
    }
  }

  /** Longest wait for a failed job's remaining tasks to end before aborting it. */
  static final long ABORT_WAIT_MS = 60_000;

  /**
   * Counts the running tasks of the jobs of one job group, from the listener bus: Spark posts a
   * job's end before the end of tasks it kills, so "ended" means the job ended and every task that
   * started has ended.
   */
  static final class TaskCounter extends SparkListener {
    /** How long to wait for the start of a job that may never have been submitted. */
    private static final long NO_JOB_WAIT_MS = 2_000;

    private final String group;
    private final java.util.Set<Integer> jobs = new java.util.HashSet<>();
    private final java.util.Set<Integer> stages = new java.util.HashSet<>();
    private int jobsEnded;
    private int running;

    TaskCounter(String group) {
      this.group = group;
    }

    @Override
    public synchronized void onJobStart(SparkListenerJobStart e) {
      if (e.properties() != null && group.equals(e.properties().getProperty("spark.jobGroup.id"))) {
        jobs.add(e.jobId());
        for (Object stageId : CollectionConverters.asJava(e.stageIds())) {
          stages.add((Integer) stageId);
        }
      }
    }

    @Override
    public synchronized void onJobEnd(SparkListenerJobEnd e) {
      if (jobs.contains(e.jobId())) {
        jobsEnded++;
        notifyAll();
      }
    }

    @Override
    public synchronized void onTaskStart(SparkListenerTaskStart e) {
      if (stages.contains(e.stageId())) {
        running++;
      }
    }

    @Override
    public synchronized void onTaskEnd(SparkListenerTaskEnd e) {
      if (stages.contains(e.stageId())) {
        running--;
        notifyAll();
      }
    }

    /**
     * Whether a job of the group has started and not ended, as far as the listener bus has told.
     */
    synchronized boolean jobRunning() {
      return jobsEnded < jobs.size();
    }

    /**
     * Waits until the group's jobs ended and none of their tasks runs, or {@code timeoutMs} passed
     * (or, if no job of the group has started after a short wait, none ever ran: the failure came
     * before submission).
     */
    synchronized void awaitAllEnded(long timeoutMs) {
      long start = System.currentTimeMillis();
      long deadline = start + timeoutMs;
      try {
        while (System.currentTimeMillis() < deadline) {
          if (jobs.isEmpty()
              ? System.currentTimeMillis() - start > NO_JOB_WAIT_MS
              : jobsEnded == jobs.size() && running <= 0) {
            return;
          }
          wait(50);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private FlatMapFunction<Iterator<Row>, BatchCommit.Staged> task(
      InferencePartitionFunction inference) {
    return input -> List.of(writeTask(inference.call(input))).iterator();
  }

  /**
   * One task attempt: stream the union rows into the two writers in the attempt's own staging
   * directory; on failure remove that directory (best effort: the next run removes the staging area
   * anyway).
   */
  private BatchCommit.Staged writeTask(Iterator<Row> union) throws Exception {
    TaskContext tc = TaskContext.get();
    JobID jobId = SparkHadoopWriterUtils.createJobID(jobTrackerId, tc.stageId());
    TaskAttemptID attempt =
        new TaskAttemptID(new TaskID(jobId, TaskType.MAP, tc.partitionId()), tc.attemptNumber());
    Configuration base = baseConf.value().get();
    TaskAttemptContext outputsCtx = attemptContext(base, outputsConf, jobId, attempt);
    TaskAttemptContext kvCtx = kv ? attemptContext(base, kvConf, jobId, attempt) : null;
    String dir =
        staging
            + "/"
            + String.format(
                java.util.Locale.ROOT,
                "p%05d-a%d-%s",
                tc.partitionId(),
                tc.attemptNumber(),
                UUID.randomUUID());
    String extension = outputsWriters.getFileExtension(outputsCtx);
    String outputsName = dir + "/outputs" + extension + ".tmp";
    String kvName = dir + "/kv" + extension + ".tmp";
    // Interpreted Row -> InternalRow converters: cheap to create per task (an encoder's serializer
    // would generate code for each task) and they pass tensor bytes through without copying.
    Function1<Object, Object> outputsRow =
        CatalystTypeConverters.createToCatalystConverter(OutputSchemas.OUTPUTS);
    Function1<Object, Object> kvRow =
        kv ? CatalystTypeConverters.createToCatalystConverter(KV_FILE_SCHEMA) : null;
    OutputWriter outputs = null;
    OutputWriter kvFile = null;
    boolean wroteOutputs = false;
    boolean wroteKv = false;
    int kvFields = KV_FILE_SCHEMA.size();
    try {
      while (union.hasNext()) {
        Row r = union.next();
        if (OutputSchemas.KIND_OUTPUT.equals(r.getString(0))) {
          Row row = r.getStruct(1);
          if (outputs == null) {
            outputs =
                outputsWriters.newInstance(
                    root + "/" + outputsName, OutputSchemas.OUTPUTS, outputsCtx);
            wroteOutputs = true;
          }
          outputs.write((InternalRow) outputsRow.apply(row));
          tally.add(row);
        } else if (kv) {
          Row row = r.getStruct(2);
          if (kvFile == null) {
            kvFile = kvWriters.newInstance(root + "/" + kvName, KV_FILE_SCHEMA, kvCtx);
            wroteKv = true;
          }
          Object[] values = new Object[kvFields];
          for (int i = 0; i < kvFields; i++) {
            values[i] = row.get(i);
          }
          kvFile.write((InternalRow) kvRow.apply(RowFactory.create(values)));
        }
      }
      // Close before returning: a writer that fails to flush fails the attempt, not the commit.
      OutputWriter o = outputs;
      outputs = null;
      if (o != null) {
        o.close();
      }
      OutputWriter k = kvFile;
      kvFile = null;
      if (k != null) {
        k.close();
      }
      return new BatchCommit.Staged(
          tc.partitionId(), wroteOutputs ? outputsName : null, wroteKv ? kvName : null, extension);
    } catch (Throwable t) {
      for (OutputWriter w : new OutputWriter[] {outputs, kvFile}) {
        if (w != null) {
          try {
            w.close();
          } catch (Throwable suppressed) {
            t.addSuppressed(suppressed);
          }
        }
      }
      try {
        Path p = new Path(root + "/" + dir);
        p.getFileSystem(base).delete(p, true);
      } catch (Throwable suppressed) {
        t.addSuppressed(suppressed);
      }
      throw t;
    }
  }

  /** A task attempt's Hadoop context, with the ids Spark's own write tasks set. */
  private static TaskAttemptContext attemptContext(
      Configuration base, Map<String, String> overrides, JobID jobId, TaskAttemptID attempt) {
    Configuration conf = new Configuration(base);
    overrides.forEach(conf::set);
    conf.set("mapreduce.job.id", jobId.toString());
    conf.set("mapreduce.task.id", attempt.getTaskID().toString());
    conf.set("mapreduce.task.attempt.id", attempt.toString());
    conf.setBoolean("mapreduce.task.ismap", true);
    conf.setInt("mapreduce.task.partition", 0);
    return new TaskAttemptContextImpl(conf, attempt);
  }

  /** A Hadoop job with the writer options in its configuration. */
  private static Job job(SparkSession spark, Map<String, String> options) {
    try {
      Configuration conf = spark.sessionState().newHadoopConf();
      options.forEach(conf::set);
      Job job = Job.getInstance(conf);
      job.setOutputKeyClass(Void.class);
      job.setOutputValueClass(InternalRow.class);
      return job;
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static scala.collection.immutable.Map<String, String> scalaMap(Map<String, String> m) {
    return scala.collection.immutable.Map$.MODULE$.from(CollectionConverters.asScala(m));
  }

  private static StructType withoutLast(StructType schema, String name) {
    if (!schema.fields()[schema.size() - 1].name().equals(name)) {
      throw new IllegalStateException(
          name + " must be the last column of " + schema.simpleString());
    }
    return new StructType(Arrays.copyOf(schema.fields(), schema.size() - 1));
  }
}
