package dev.tokenpress.jobs.corpus;

import static org.apache.spark.sql.functions.coalesce;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.when;

import dev.tokenpress.jobs.config.ConfigException;
import dev.tokenpress.jobs.config.JobConfig;
import dev.tokenpress.spark.OutputSchemas;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.GlobPattern;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads a corpus into {@link OutputSchemas#WORK} rows ({@code id, source, bytes, prompt,
 * reference}) without reading image bytes on the driver or in the listing: directory corpora are
 * listed on the driver by {@link DirectoryListing} (content is then read inside the task that
 * processes it; what the listing leaves out is counted by reason), manifests keep their rows as
 * they are.
 *
 * <p>Ids are deterministic: a directory corpus uses the file's path relative to the corpus root
 * ({@code images/000123.png}); a manifest uses its id column, which must be unique and non-null.
 */
public final class CorpusReader {
  private static final Logger LOG = LoggerFactory.getLogger(CorpusReader.class);
  private static final Set<String> FIELDS = Set.of("id", "path", "bytes", "prompt", "reference");

  private CorpusReader() {}

  /**
   * A corpus as work rows: a manifest's rows as read, or a directory's files as listed on the
   * driver ({@link #listed()}, already partitioned; its {@link #rows()} Dataset is only built when
   * asked for).
   */
  public static final class Corpus {
    private final SparkSession spark;
    private final JavaRDD<Row> listed;
    private final long listedCount;
    private final List<DirectoryListing.Exclusion> excluded;
    private Dataset<Row> rows;

    private Corpus(
        SparkSession spark,
        Dataset<Row> rows,
        JavaRDD<Row> listed,
        long listedCount,
        List<DirectoryListing.Exclusion> excluded) {
      this.spark = spark;
      this.rows = rows;
      this.listed = listed;
      this.listedCount = listedCount;
      this.excluded = List.copyOf(excluded);
    }

    /** {@link OutputSchemas#WORK} rows. */
    public Dataset<Row> rows() {
      if (rows == null) {
        rows = spark.createDataFrame(listed, OutputSchemas.WORK);
      }
      return rows;
    }

    /** Records of a directory corpus (listed on the driver), -1 for manifests. */
    public long listedCount() {
      return listedCount;
    }

    /** A directory corpus's work rows as listed, already partitioned; null for manifests. */
    public JavaRDD<Row> listed() {
      return listed;
    }

    /**
     * Entries of a directory corpus that are not work rows, by reason ({@link DirectoryListing});
     * empty for manifests (every manifest row is a work row).
     */
    public List<DirectoryListing.Exclusion> excluded() {
      return excluded;
    }

    /** Excluded entries of all reasons. */
    public long excludedCount() {
      return excluded.stream().mapToLong(DirectoryListing.Exclusion::count).sum();
    }
  }

  /**
   * The corpus as work rows; a directory corpus comes already split into partitions of about {@code
   * rowsPerTask} records (at least the default parallelism), with its size known.
   */
  public static Corpus open(SparkSession spark, JobConfig.Input in, int rowsPerTask) {
    return switch (in.format()) {
      case DIRECTORY -> directory(spark, in, rowsPerTask);
      case JSONL, PARQUET -> {
        Dataset<Row> m = manifest(spark, in);
        yield new Corpus(
            spark,
            m.select(
                col("id").cast(DataTypes.StringType).as("id"),
                col("source").cast(DataTypes.StringType).as("source"),
                col("bytes").cast(DataTypes.BinaryType).as("bytes"),
                col("prompt").cast(DataTypes.StringType).as("prompt"),
                col("reference").cast(DataTypes.StringType).as("reference")),
            null,
            -1,
            List.of());
      }
    };
  }

  /**
   * Tasks for {@code rows} records: about {@code rowsPerTask} records each, rounded up to a
   * multiple of the task slots ({@code parallelism}) so that every slot gets the same share of the
   * work (no slot idles while another finishes a last task); never more tasks than records.
   */
  public static int tasksFor(long rows, int rowsPerTask, int parallelism) {
    if (rows <= 0) {
      return 1;
    }
    long slots = Math.max(1, parallelism);
    long tasks = (rows + rowsPerTask - 1) / rowsPerTask;
    tasks = (tasks + slots - 1) / slots * slots;
    return (int) Math.max(1, Math.min(rows, tasks));
  }

  /** Checks that ids are non-null and unique (one aggregation over the id column). */
  public static void checkIds(Dataset<Row> work, String path) {
    Row r =
        work.selectExpr(
                "count(*) AS n", "count(id) AS non_null", "count(DISTINCT id) AS distinct_ids")
            .first();
    long n = r.getLong(0);
    long nonNull = r.getLong(1);
    long distinct = r.getLong(2);
    if (nonNull != n) {
      throw new ConfigException(
          "input.columns.id", (n - nonNull) + " of " + n + " rows of " + path + " have a null id");
    }
    if (distinct != n) {
      List<Row> dups =
          work.groupBy("id").count().where(col("count").gt(1)).limit(5).collectAsList();
      throw new ConfigException(
          "input.columns.id", (n - distinct) + " duplicate ids in " + path + ", e.g. " + dups);
    }
  }

  private static Corpus directory(SparkSession spark, JobConfig.Input in, int rowsPerTask) {
    String root = qualify(spark, in.path(), "input.path");
    List<FileStatus> files;
    List<DirectoryListing.Exclusion> excluded = List.of();
    String glob = in.glob() == null || in.glob().isBlank() ? null : in.glob();
    GlobPattern pattern;
    try {
      pattern = glob == null ? null : DirectoryListing.pattern(glob, in.globCaseSensitive());
    } catch (IllegalArgumentException e) {
      throw new ConfigException("input.glob", "invalid glob '" + glob + "': " + e.getMessage());
    }
    try {
      Path rootPath = new Path(root);
      FileSystem fs = rootPath.getFileSystem(spark.sparkContext().hadoopConfiguration());
      FileStatus st = fs.getFileStatus(rootPath);
      if (st.isDirectory()) {
        DirectoryListing listing =
            DirectoryListing.list(fs, rootPath, pattern, in.globCaseSensitive(), in.recursive());
        files = listing.files();
        excluded = listing.exclusions();
      } else {
        files = List.of(st);
      }
    } catch (IOException e) {
      throw new ConfigException("input.path", "cannot list " + root + ": " + e.getMessage());
    }
    String prefix = qualifiedPrefix(root);
    int slices = tasksFor(files.size(), rowsPerTask, spark.sparkContext().defaultParallelism());
    List<List<Row>> dealt = new ArrayList<>(slices);
    for (List<FileStatus> task : deal(files, slices)) {
      List<Row> rows = new ArrayList<>(task.size());
      for (FileStatus f : task) {
        String source = f.getPath().toString();
        String id = source.startsWith(prefix) ? source.substring(prefix.length()) : source;
        rows.add(RowFactory.create(id, source, null, in.prompt(), null));
      }
      dealt.add(rows);
    }
    // Already split into as many partitions as the job's tasks: no shuffle is needed to spread
    // work.
    JavaRDD<Row> listed =
        JavaSparkContext.fromSparkContext(spark.sparkContext())
            .parallelize(dealt, slices)
            .flatMap(List::iterator);
    return new Corpus(spark, null, listed, files.size(), excluded);
  }

  /**
   * Splits {@code files} into {@code tasks} lists of equal counts (±1) and similar byte sizes: by
   * size, largest first, dealt in snake order (task 0, 1, …, n−1, n−1, …, 0, 0, …) — a record's
   * cost is a fixed part (the model) plus a part growing with its file (decoding), so each task
   * gets the same number of records and the same mix of large and small files (contiguous ranges of
   * the sorted paths would give one task a whole directory of large photos). Each list is in path
   * order.
   */
  static List<List<FileStatus>> deal(List<FileStatus> files, int tasks) {
    List<FileStatus> bySize = new ArrayList<>(files);
    bySize.sort(
        java.util.Comparator.comparingLong(FileStatus::getLen)
            .reversed()
            .thenComparing(f -> f.getPath().toString()));
    List<List<FileStatus>> out = new ArrayList<>(tasks);
    for (int t = 0; t < tasks; t++) {
      out.add(new ArrayList<>(files.size() / tasks + 1));
    }
    for (int i = 0; i < bySize.size(); i++) {
      int round = i / tasks;
      int pos = i % tasks;
      out.get(round % 2 == 0 ? pos : tasks - 1 - pos).add(bySize.get(i));
    }
    for (List<FileStatus> task : out) {
      task.sort(java.util.Comparator.comparing(f -> f.getPath().toString()));
    }
    return out;
  }

  private static String qualifiedPrefix(String root) {
    String r = new Path(root).toString();
    return r.endsWith("/") ? r : r + "/";
  }

  private static Dataset<Row> manifest(SparkSession spark, JobConfig.Input in) {
    String file = qualify(spark, in.path(), "input.path");
    Dataset<Row> m;
    try {
      m =
          in.format() == dev.tokenpress.jobs.config.InputFormat.JSONL
              ? spark.read().option("mode", "FAILFAST").json(file)
              : spark.read().parquet(file);
    } catch (Exception e) {
      throw new ConfigException(
          "input.path", "cannot read manifest " + file + ": " + e.getMessage());
    }
    JobConfig.Columns c = in.columns();
    Set<String> have = new TreeSet<>(Arrays.asList(m.columns()));
    if (!have.contains(c.id())) {
      throw new ConfigException(
          "input.columns.id",
          "manifest " + file + " has no column '" + c.id() + "'; its columns: " + have);
    }
    boolean hasPath = c.path() != null && have.contains(c.path());
    boolean hasBytes = c.bytes() != null && have.contains(c.bytes());
    if (!hasPath && !hasBytes) {
      throw new ConfigException(
          "input.columns.path",
          "manifest "
              + file
              + " has neither a path column '"
              + c.path()
              + "' nor a bytes column '"
              + c.bytes()
              + "'; its columns: "
              + have);
    }
    boolean hasPrompt = c.prompt() != null && have.contains(c.prompt());
    if (!hasPrompt && (in.prompt() == null || in.prompt().isBlank())) {
      throw new ConfigException(
          "input.prompt",
          "manifest "
              + file
              + " has no prompt column '"
              + c.prompt()
              + "' and input.prompt is not set");
    }
    boolean hasRef = c.reference() != null && have.contains(c.reference());
    TreeSet<String> ignored = new TreeSet<>(have);
    ignored.removeAll(Arrays.asList(c.id(), c.path(), c.bytes(), c.prompt(), c.reference()));
    if (!ignored.isEmpty()) {
      LOG.info("manifest {}: ignoring columns {} (used: {})", file, ignored, FIELDS);
    }
    // Relative paths are relative to the manifest's directory.
    String base = manifestBase(spark, file);
    Column path =
        hasPath ? col(c.path()).cast(DataTypes.StringType) : lit(null).cast(DataTypes.StringType);
    Column source =
        when(path.isNull(), lit(null).cast(DataTypes.StringType))
            .when(path.rlike("^[A-Za-z][A-Za-z0-9+.-]*:").or(path.startsWith("/")), path)
            .otherwise(concat(lit(base), path));
    Column prompt =
        hasPrompt
            ? coalesce(col(c.prompt()).cast(DataTypes.StringType), lit(in.prompt()))
            : lit(in.prompt());
    Column bytes = hasBytes ? col(c.bytes()) : lit(null).cast(DataTypes.BinaryType);
    Column sourceOrManifest =
        coalesce(source, concat(lit(file + "#"), col(c.id()).cast(DataTypes.StringType)));
    return m.select(
        col(c.id()).as("id"),
        sourceOrManifest.as("source"),
        bytes.as("bytes"),
        prompt.as("prompt"),
        (hasRef ? col(c.reference()) : lit(null)).cast(DataTypes.StringType).as("reference"));
  }

  private static String manifestBase(SparkSession spark, String file) {
    try {
      Path p = new Path(file);
      FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
      Path dir = fs.getFileStatus(p).isDirectory() ? p : p.getParent();
      return dir.toString() + "/";
    } catch (IOException e) {
      throw new ConfigException("input.path", "cannot stat " + file + ": " + e.getMessage());
    }
  }

  /**
   * Fully qualified form of {@code path} (e.g. {@code file:/abs/dir}); fails if it does not exist.
   */
  public static String qualify(SparkSession spark, String path, String field) {
    try {
      Path p = new Path(path);
      FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
      Path q = fs.makeQualified(p);
      if (!fs.exists(q)) {
        throw new ConfigException(field, q + " does not exist");
      }
      return q.toString();
    } catch (IOException e) {
      throw new ConfigException(field, "cannot access " + path + ": " + e.getMessage());
    }
  }
}
