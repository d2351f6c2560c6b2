package dev.tokenpress.evaluate.job;

import dev.tokenpress.jobs.config.ConfigException;
import java.io.Serializable;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * A labelled sample read from a manifest (driver side): a JSONL file ({@code .jsonl} or {@code
 * .json}) or a Parquet file or folder, one row per question with the columns {@code image} (a path,
 * relative ones resolved against the manifest's folder, or the encoded image itself when the column
 * is binary), {@code question}, {@code answer} (the reference), and optionally {@code id} (default
 * {@code <image_id>#<n>}, n counting the image's questions in manifest order), {@code kind}
 * (default {@code qa}; {@code caption} rows get no exact-match score) and {@code image_id} (default
 * the {@code image} path as written, or for bytes {@code sha256:} and the first 16 hex digits of
 * their hash). Rows are grouped by image (in order of first appearance), so that every image is one
 * work item.
 */
final class ManifestSample {
  static final List<String> REQUIRED = List.of("image", "question", "answer");
  static final List<String> OPTIONAL = List.of("id", "kind", "image_id");

  private ManifestSample() {}

  /** One question of a manifest image. */
  record Item(String id, String kind, String question, String answer) implements Serializable {}

  /**
   * One distinct image: {@code path} (a resolved Hadoop path) or {@code bytes}, and its questions.
   *
   * @param index position among the manifest's distinct images
   */
  record Image(int index, String imageId, String path, byte[] bytes, List<Item> items)
      implements Serializable {}

  /** Reads and checks the manifest; {@code maxImages} null: every image. */
  static List<Image> read(SparkSession spark, String manifest, Integer maxImages) {
    Path path = new Path(manifest);
    Path base;
    boolean folder;
    try {
      FileSystem fs = path.getFileSystem(spark.sparkContext().hadoopConfiguration());
      if (!fs.exists(path)) {
        throw new ConfigException("sample.manifest", "'" + manifest + "' does not exist");
      }
      folder = fs.getFileStatus(path).isDirectory();
      base = fs.makeQualified(folder ? path : path.getParent());
    } catch (java.io.IOException e) {
      throw new ConfigException(
          "sample.manifest", "cannot read '" + manifest + "': " + e.getMessage());
    }
    String name = manifest.toLowerCase(Locale.ROOT);
    boolean json = !folder && (name.endsWith(".jsonl") || name.endsWith(".json"));
    Dataset<Row> df;
    try {
      df = json ? spark.read().json(manifest) : spark.read().parquet(manifest);
    } catch (RuntimeException e) {
      throw new ConfigException(
          "sample.manifest",
          "cannot read '"
              + manifest
              + "' as "
              + (json ? "JSONL" : "Parquet")
              + " (a .jsonl/.json file is read as JSONL, anything else as Parquet): "
              + e.getMessage());
    }
    StructType schema = df.schema();
    Set<String> columns = Set.of(schema.fieldNames());
    if (columns.contains("_corrupt_record")) {
      throw new ConfigException(
          "sample.manifest", "'" + manifest + "' has lines that are not JSON objects");
    }
    for (String c : REQUIRED) {
      if (!columns.contains(c)) {
        throw new ConfigException(
            "sample.manifest",
            "'"
                + manifest
                + "' has no column '"
                + c
                + "' (required: "
                + REQUIRED
                + ", optional: "
                + OPTIONAL
                + "; found: "
                + List.of(schema.fieldNames())
                + ")");
      }
    }
    DataType imageType = schema.apply("image").dataType();
    if (!imageType.equals(DataTypes.StringType) && !imageType.equals(DataTypes.BinaryType)) {
      throw new ConfigException(
          "sample.manifest",
          "column 'image' must be a string (path) or binary (encoded image), "
              + "got "
              + imageType.simpleString());
    }
    List<String> select = new ArrayList<>(REQUIRED);
    for (String c : OPTIONAL) {
      select.add(
          columns.contains(c)
              ? "CAST(" + c + " AS STRING) AS " + c
              : "CAST(NULL AS STRING) AS " + c);
    }
    select.set(1, "CAST(question AS STRING) AS question");
    select.set(2, "CAST(answer AS STRING) AS answer");
    List<Row> rows = df.selectExpr(select.toArray(String[]::new)).collectAsList();

    Map<String, List<Row>> byImage = new LinkedHashMap<>();
    Map<String, Object> imageValue = new LinkedHashMap<>();
    for (int i = 0; i < rows.size(); i++) {
      Row r = rows.get(i);
      for (int c = 0; c < REQUIRED.size(); c++) {
        if (r.isNullAt(c)) {
          throw new ConfigException(
              "sample.manifest",
              "row " + i + " of '" + manifest + "': column '" + REQUIRED.get(c) + "' is null");
        }
      }
      Object image = r.get(0);
      String key =
          image instanceof byte[] b ? "sha256:" + sha256(b) : resolve(base, (String) image);
      if (!byImage.containsKey(key) && maxImages != null && byImage.size() >= maxImages) {
        continue;
      }
      byImage.computeIfAbsent(key, k -> new ArrayList<>()).add(r);
      imageValue.putIfAbsent(key, image);
    }
    List<Image> images = new ArrayList<>();
    Set<String> ids = new HashSet<>();
    for (Map.Entry<String, List<Row>> e : byImage.entrySet()) {
      Object image = imageValue.get(e.getKey());
      List<Row> qs = e.getValue();
      String imageId =
          !qs.get(0).isNullAt(5)
              ? qs.get(0).getString(5)
              : image instanceof byte[] ? e.getKey() : (String) image;
      List<Item> items = new ArrayList<>();
      for (int n = 0; n < qs.size(); n++) {
        Row r = qs.get(n);
        String id = r.isNullAt(3) ? imageId + "#" + n : r.getString(3);
        if (!ids.add(id)) {
          throw new ConfigException(
              "sample.manifest",
              "question id '" + id + "' occurs twice in '" + manifest + "'; ids must be unique");
        }
        items.add(
            new Item(id, r.isNullAt(4) ? "qa" : r.getString(4), r.getString(1), r.getString(2)));
      }
      images.add(
          image instanceof byte[] b
              ? new Image(images.size(), imageId, null, b, List.copyOf(items))
              : new Image(images.size(), imageId, e.getKey(), null, List.copyOf(items)));
    }
    if (images.isEmpty()) {
      throw new ConfigException("sample.manifest", "'" + manifest + "' has no rows");
    }
    return images;
  }

  private static String resolve(Path base, String image) {
    Path p = new Path(image);
    return (p.isAbsolute() || p.toUri().getScheme() != null ? p : new Path(base, p)).toString();
  }

  private static String sha256(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b), 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
