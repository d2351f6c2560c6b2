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
import org.apache.hadoop.mapreduce.lib.output.FileOutputFormat;
import org.apache.hadoop.mapreduce.task.TaskAttemptContextImpl;
import org.apache.spark.SparkContext;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.internal.io.FileCommitProtocol;
import org.apache.spark.internal.io.FileNameSpec;
import org.apache.spark.internal.io.SparkHadoopWriterUtils;
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
 * Writes one batch of the compress job — its {@code outputs/} rows and, with KV enabled, its
 * {@code kv_cache/batch_id=<batch>/} rows — from a single pass of inference tasks, under one job
 * of Spark's file commit protocol ({@code spark.sql.sources.commitProtocolClass}, by default
 * Spark's {@code SQLHadoopMapReduceCommitProtocol} over Hadoop's {@code FileOutputCommitter}, the
 * protocol {@code DataFrameWriter} uses).
 *
 * <p>Each task runs the {@link InferencePartitionFunction} over its work rows and streams the
 * union of rows it emits into two Parquet writers (Spark's own Parquet output writers, configured
 * as a {@code DataFrameWriter} would configure them: zstd, the job's Parquet options and session
 * settings), each opened on the first row it receives. Files go to the task attempt's temporary
 * locations; the task commits through the commit protocol (so Spark's output-commit coordinator
 * lets exactly one attempt of each partition commit), and the driver commits the job: the
 * protocol first moves the committer root's files ({@code kv_cache/batch_id=<batch>/}), then the
 * files it wrote to an absolute directory ({@code outputs/}), so a batch's KV is always visible
 * before its outputs — the order the job's resume relies on.
 *
 * <p>Compared with persisting the inference stream and running one {@code DataFrameWriter} per
 * dataset, this runs one Spark job per batch instead of two, plans no queries for the writes,
 * and neither encodes the KV bytes into Spark's columnar cache nor reads them back (measured:
 * docs/benchmarks.md, "Spark compress job: throughput").
 */
final class BatchWrite implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final String PROTOCOL_KEY = "spark.sql.sources.commitProtocolClass";
  /** The stored columns of {@code kv_cache/}: {@link OutputSchemas#KV_CACHE} less its directory partition. */
  static final StructType KV_FILE_SCHEMA = withoutLast(OutputSchemas.KV_CACHE, "batch_id");

  private final FileCommitProtocol committer;
  private final String jobTrackerId;
  private final boolean kv;
  /** {@code batch_id=<batch>} below the committer root, when {@link #kv}. */
  private final String kvPartition;
  private final String outputsDir;
  private final OutputWriterFactory rootWriters;
  private final OutputWriterFactory outputsWriters;
  /** The session's Hadoop configuration, shared with the partition function (one broadcast per run). */
  private final Broadcast<SerializableHadoopConf> baseConf;
  /** What the writers' configurations set on top of {@link #baseConf}. */
  private final HashMap<String, String> rootConf;
  private final HashMap<String, String> outputsConf;
  private final OutputTally tally;
  private final transient Job rootJob;

  private BatchWrite(
      FileCommitProtocol committer, String jobTrackerId, boolean kv, String kvPartition, String outputsDir,
      OutputWriterFactory rootWriters, OutputWriterFactory outputsWriters, Broadcast<SerializableHadoopConf> baseConf,
      HashMap<String, String> rootConf, HashMap<String, String> outputsConf, OutputTally tally, Job rootJob) {
    this.committer = committer;
    this.jobTrackerId = jobTrackerId;
    this.kv = kv;
    this.kvPartition = kvPartition;
    this.outputsDir = outputsDir;
    this.rootWriters = rootWriters;
    this.outputsWriters = outputsWriters;
    this.baseConf = baseConf;
    this.rootConf = rootConf;
    this.outputsConf = outputsConf;
    this.tally = tally;
    this.rootJob = rootJob;
  }

  /**
   * Prepares the write of one batch. The commit protocol's root is {@code kv_cache/} when KV is
   * written (outputs then go to an absolute directory, moved after the KV), else {@code outputs/}.
   *
   * @param baseConf the broadcast of the session's Hadoop configuration ({@code SparkContext.hadoopConfiguration})
   * @param outputsOptions Parquet options of {@code outputs/} files (as for {@code DataFrameWriter.option})
   * @param kvOptions Parquet options of {@code kv_cache/} files, or null for no KV
   */
  static BatchWrite prepare(
      SparkSession spark, Broadcast<SerializableHadoopConf> baseConf, String outputsDir, String kvDir, String batchId,
      Map<String, String> outputsOptions, Map<String, String> kvOptions, OutputTally tally) {
    boolean kv = kvOptions != null;
    Job outputsJob = job(spark, outputsDir, outputsOptions);
    OutputWriterFactory outputsWriters = new ParquetFileFormat().prepareWrite(
        spark, outputsJob, scalaMap(outputsOptions), OutputSchemas.OUTPUTS);
    Job rootJob = outputsJob;
    OutputWriterFactory rootWriters = outputsWriters;
    if (kv) {
      rootJob = job(spark, kvDir, kvOptions);
      rootWriters = new ParquetFileFormat().prepareWrite(spark, rootJob, scalaMap(kvOptions), KV_FILE_SCHEMA);
    }
    String protocol = spark.conf().get(PROTOCOL_KEY,
        "org.apache.spark.sql.execution.datasources.SQLHadoopMapReduceCommitProtocol");
    FileCommitProtocol committer = FileCommitProtocol.instantiate(
        protocol, UUID.randomUUID().toString(), kv ? kvDir : outputsDir, false);
    Configuration base = baseConf.value().get();
    return new BatchWrite(committer, SparkHadoopWriterUtils.createJobTrackerID(new Date()), kv,
        "batch_id=" + batchId, outputsDir, rootWriters, outputsWriters, baseConf,
        overrides(rootJob.getConfiguration(), base), overrides(outputsJob.getConfiguration(), base), tally, rootJob);
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
   * and commits what they wrote. On any failure it cancels the job if it still runs, waits (up to
   * {@link #ABORT_WAIT_MS}) until none of its tasks runs any more — a task still running after the
   * job failed would otherwise create its attempt files after the abort removed the staging
   * directories —, aborts the job (the protocol removes the attempts' files) and rethrows.
   */
  void run(JavaRDD<Row> work, InferencePartitionFunction inference, String description) throws Exception {
    SparkContext sc = work.context();
    String group = "tokenpress-" + UUID.randomUUID();
    TaskCounter tasks = new TaskCounter(group);
    committer.setupJob(rootJob);
    sc.addSparkListener(tasks);
    sc.setJobGroup(group, description, true);
    try {
      List<FileCommitProtocol.TaskCommitMessage> commits = work.mapPartitions(task(inference)).collect();
      for (FileCommitProtocol.TaskCommitMessage m : commits) {
        committer.onTaskCommit(m);
      }
      committer.commitJob(rootJob, CollectionConverters.asScala(commits).toList());
      if (kv) {
        markSuccess();
      }
    } catch (Throwable t) {
      try {
        if (tasks.jobRunning()) {
          sc.cancelJobGroup(group);  // e.g. the driver was interrupted; a failed job's tasks are killed by Spark
        }
        tasks.awaitAllEnded(ABORT_WAIT_MS);
        committer.abortJob(rootJob);
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

    /** Whether a job of the group has started and not ended, as far as the listener bus has told. */
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
          if (jobs.isEmpty() ? System.currentTimeMillis() - start > NO_JOB_WAIT_MS
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

  /**
   * Writes {@code outputs/_SUCCESS} as well (the commit protocol marks only its root, {@code
   * kv_cache/}), as Hadoop's committer would, unless {@code
   * mapreduce.fileoutputcommitter.marksuccessfuljobs} is false: schedulers watch for it.
   */
  private void markSuccess() throws java.io.IOException {
    Configuration conf = rootJob.getConfiguration();
    if (conf.getBoolean("mapreduce.fileoutputcommitter.marksuccessfuljobs", true)) {
      Path marker = new Path(outputsDir, "_SUCCESS");
      marker.getFileSystem(conf).create(marker, true).close();
    }
  }

  private FlatMapFunction<Iterator<Row>, FileCommitProtocol.TaskCommitMessage> task(InferencePartitionFunction inference) {
    return input -> List.of(writeTask(inference.call(input))).iterator();
  }

  /** One task: stream the union rows into the two writers, then commit the attempt. */
  private FileCommitProtocol.TaskCommitMessage writeTask(Iterator<Row> union) throws Exception {
    TaskContext tc = TaskContext.get();
    JobID jobId = SparkHadoopWriterUtils.createJobID(jobTrackerId, tc.stageId());
    TaskAttemptID attempt = new TaskAttemptID(new TaskID(jobId, TaskType.MAP, tc.partitionId()), tc.attemptNumber());
    Configuration base = baseConf.value().get();
    TaskAttemptContext rootCtx = attemptContext(base, rootConf, jobId, attempt);
    TaskAttemptContext outputsCtx = kv ? attemptContext(base, outputsConf, jobId, attempt) : rootCtx;
    committer.setupTask(rootCtx);
    // Interpreted Row -> InternalRow converters: cheap to create per task (an encoder's serializer
    // would generate code for each task) and they pass tensor bytes through without copying.
    Function1<Object, Object> outputsRow = CatalystTypeConverters.createToCatalystConverter(OutputSchemas.OUTPUTS);
    Function1<Object, Object> kvRow = kv ? CatalystTypeConverters.createToCatalystConverter(KV_FILE_SCHEMA) : null;
    OutputWriter outputs = null;
    OutputWriter kvFile = null;
    int kvFields = KV_FILE_SCHEMA.size();
    try {
      while (union.hasNext()) {
        Row r = union.next();
        if (OutputSchemas.KIND_OUTPUT.equals(r.getString(0))) {
          Row row = r.getStruct(1);
          if (outputs == null) {
            FileNameSpec name = new FileNameSpec("", outputsWriters.getFileExtension(outputsCtx));
            String path = kv ? committer.newTaskTempFileAbsPath(rootCtx, outputsDir, name)
                : committer.newTaskTempFile(rootCtx, scala.Option.empty(), name);
            outputs = outputsWriters.newInstance(path, OutputSchemas.OUTPUTS, outputsCtx);
          }
          outputs.write((InternalRow) outputsRow.apply(row));
          tally.add(row);
        } else if (kv) {
          Row row = r.getStruct(2);
          if (kvFile == null) {
            String path = committer.newTaskTempFile(rootCtx, scala.Option.apply(kvPartition),
                new FileNameSpec("", rootWriters.getFileExtension(rootCtx)));
            kvFile = rootWriters.newInstance(path, KV_FILE_SCHEMA, rootCtx);
          }
          Object[] values = new Object[kvFields];
          for (int i = 0; i < kvFields; i++) {
            values[i] = row.get(i);
          }
          kvFile.write((InternalRow) kvRow.apply(RowFactory.create(values)));
        }
      }
      // Close before committing: a writer that fails to flush fails the attempt, not the commit.
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
      return committer.commitTask(rootCtx);
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
        committer.abortTask(rootCtx);
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

  /** A Hadoop job for one output directory, with the writer options in its configuration. */
  private static Job job(SparkSession spark, String dir, Map<String, String> options) {
    try {
      Configuration conf = spark.sessionState().newHadoopConf();
      options.forEach(conf::set);
      Job job = Job.getInstance(conf);
      job.setOutputKeyClass(Void.class);
      job.setOutputValueClass(InternalRow.class);
      FileOutputFormat.setOutputPath(job, new Path(dir));
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
      throw new IllegalStateException(name + " must be the last column of " + schema.simpleString());
    }
    return new StructType(Arrays.copyOf(schema.fields(), schema.size() - 1));
  }
}
