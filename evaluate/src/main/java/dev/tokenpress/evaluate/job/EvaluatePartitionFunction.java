package dev.tokenpress.evaluate.job;

import dev.tokenpress.datasets.Question;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.evaluate.eval.AnswerScoring;
import dev.tokenpress.evaluate.eval.ShapesVqaSource;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.spark.ExecutorRuntimes;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.RecordResult;
import dev.tokenpress.spark.StageCount;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.LongAccumulator;

/**
 * Executor side of the {@code evaluate} job: each input row is an image index; the image is
 * regenerated from the sample's seed (or, for a manifest, read from its path or carried as bytes;
 * an unreadable or undecodable image gives error rows for its questions), and its questions are
 * answered with every plan in one {@link RecordProcessor#processImage} call, so that the work the
 * pairs have in common runs once (the VLM: one vision pass for the plans without a ViT operator,
 * one prefix prefill per group of equal prefixes). One {@link #SCHEMA} row per (plan, question)
 * comes out, plan after plan; {@code ms} is the pair's own time plus its even share of what it
 * shared. The model is the executor's cached runtime ({@link ExecutorRuntimes}, keyed by the
 * model), so every plan runs on one loaded copy. A question that fails becomes a row with {@code
 * error} set, never a dead task.
 */
final class EvaluatePartitionFunction implements FlatMapFunction<Iterator<Row>, Row> {
  private static final long serialVersionUID = 1L;

  /** One row per (plan, question). */
  static final StructType SCHEMA =
      new StructType()
          .add("plan_index", DataTypes.IntegerType, false)
          .add("plan_label", DataTypes.StringType, false)
          .add("plan_hash", DataTypes.StringType, false)
          .add("image_index", DataTypes.IntegerType, false)
          .add("image_id", DataTypes.StringType, false)
          .add("question_id", DataTypes.StringType, false)
          .add("kind", DataTypes.StringType, false)
          .add("question", DataTypes.StringType, false)
          .add("expected", DataTypes.StringType, false)
          .add("answer", DataTypes.StringType, true)
          .add("correct", DataTypes.BooleanType, true)
          .add("visual_tokens_in", DataTypes.IntegerType, true)
          .add("visual_tokens_kept", DataTypes.IntegerType, true)
          .add("flops_vision", DataTypes.LongType, true)
          .add("flops_prefill", DataTypes.LongType, true)
          .add("flops_decode", DataTypes.LongType, true)
          .add("generated_tokens", DataTypes.IntegerType, true)
          .add("kv_bytes", DataTypes.LongType, true)
          .add("ms", DataTypes.DoubleType, false)
          .add("error", DataTypes.StringType, true)
          .add("important_share", DataTypes.createArrayType(DataTypes.DoubleType, false), true);

  /**
   * Input rows: which image (every plan runs on it); a manifest's rows add its {@link
   * ManifestSample.Image}.
   */
  static final StructType WORK = new StructType().add("image_index", DataTypes.IntegerType, false);

  private final ProcessorFactory factory;
  private final ProcessorSpec spec;
  private final List<EvaluateConfig.LabelledPlan> plans;
  private final EvaluateConfig.Sample sample;
  private final org.apache.spark.util.SerializableConfiguration hadoop;
  private final LongAccumulator ok;
  private final LongAccumulator errors;

  /**
   * @param hadoop the configuration manifest images are read with (null for a ShapesVQA split)
   * @param ok (plan, question) rows answered, for the driver's progress lines
   * @param errors (plan, question) rows that became error rows
   */
  EvaluatePartitionFunction(
      ProcessorFactory factory,
      ProcessorSpec spec,
      List<EvaluateConfig.LabelledPlan> plans,
      EvaluateConfig.Sample sample,
      org.apache.spark.util.SerializableConfiguration hadoop,
      LongAccumulator ok,
      LongAccumulator errors) {
    this.factory = factory;
    this.spec = spec;
    this.plans = List.copyOf(plans);
    this.sample = sample;
    this.hadoop = hadoop;
    this.ok = ok;
    this.errors = errors;
  }

  /**
   * The questions of image {@code imageIndex} of a ShapesVQA split that {@code sample} asks (its
   * kinds), as the tasks answer them.
   */
  static List<ManifestSample.Item> questions(
      ShapesVqaSource data, EvaluateConfig.Sample sample, int imageIndex) {
    List<ManifestSample.Item> items = new ArrayList<>();
    for (Question q : data.scene(imageIndex).questions()) {
      if (sample.kinds().contains(q.kind())) {
        items.add(new ManifestSample.Item(q.id(), q.kind(), q.question(), q.answer()));
      }
    }
    return items;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    // one intra-op thread per task unless configured: the tasks of an executor run side by side
    RecordProcessor processor =
        ExecutorRuntimes.getOrCreate(factory, spec, Math.max(1, spec.intraOpThreads()));
    ShapesVqaSource data =
        sample.isManifest() ? null : new ShapesVqaSource(sample.seed(), 128, sample.split());
    return new Iterator<>() {
      private final java.util.ArrayDeque<Row> pending = new java.util.ArrayDeque<>();

      @Override
      public boolean hasNext() {
        while (pending.isEmpty() && input.hasNext()) {
          Row w = input.next();
          pending.addAll(
              data == null
                  ? manifestImage(processor, (ManifestSample.Image) w.get(1))
                  : image(processor, data, w.getInt(0)));
        }
        return !pending.isEmpty();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new java.util.NoSuchElementException();
        }
        return pending.poll();
      }
    };
  }

  private List<Row> image(RecordProcessor processor, ShapesVqaSource data, int imageIndex) {
    Scene scene = data.scene(imageIndex);
    List<ManifestSample.Item> items = questions(data, sample, imageIndex);
    return answer(
        processor,
        imageIndex,
        scene.imageId(),
        "shapesvqa:" + sample.split() + "/" + imageIndex,
        ShapesVqaSource.png(scene),
        null,
        items);
  }

  private List<Row> manifestImage(RecordProcessor processor, ManifestSample.Image image) {
    byte[] bytes = image.bytes();
    RuntimeException failure = null;
    if (bytes == null) {
      org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(image.path());
      try (java.io.InputStream in = p.getFileSystem(hadoop.value()).open(p)) {
        bytes = in.readAllBytes();
      } catch (java.io.IOException e) {
        failure = new java.io.UncheckedIOException("cannot read image " + image.path(), e);
      }
    }
    return answer(
        processor,
        image.index(),
        image.imageId(),
        image.path() == null ? image.imageId() : image.path(),
        bytes,
        failure,
        image.items());
  }

  /**
   * Every plan on the image's questions in one call; {@code failure}: the image could not be read.
   */
  private List<Row> answer(
      RecordProcessor processor,
      int imageIndex,
      String imageId,
      String source,
      byte[] image,
      RuntimeException failure,
      List<ManifestSample.Item> questions) {
    List<List<RecordProcessor.RecordOutcome>> outcomes = null;
    if (failure == null) {
      List<InputRecord> records = new ArrayList<>();
      for (ManifestSample.Item q : questions) {
        records.add(new InputRecord(q.id(), source, image, q.question(), null));
      }
      List<CompressionPlan> planList = new ArrayList<>();
      for (EvaluateConfig.LabelledPlan p : plans) {
        planList.add(p.plan());
      }
      try {
        outcomes = processor.processImage(records, planList);
      } catch (RuntimeException e) {
        failure = e;
      }
    }
    List<Row> rows = new ArrayList<>();
    for (int planIndex = 0; planIndex < plans.size(); planIndex++) {
      EvaluateConfig.LabelledPlan plan = plans.get(planIndex);
      for (int i = 0; i < questions.size(); i++) {
        ManifestSample.Item q = questions.get(i);
        RecordProcessor.RecordOutcome o = outcomes == null ? null : outcomes.get(planIndex).get(i);
        RuntimeException error = o == null ? failure : o.error();
        if (error != null) {
          String why =
              error.getClass().getSimpleName()
                  + ": "
                  + error.getMessage()
                  + (error.getCause() == null ? "" : " (" + error.getCause() + ")");
          rows.add(
              RowFactory.create(
                  planIndex,
                  plan.label(),
                  plan.plan().planHash(),
                  imageIndex,
                  imageId,
                  q.id(),
                  q.kind(),
                  q.question(),
                  q.answer(),
                  null,
                  null,
                  null,
                  null,
                  null,
                  null,
                  null,
                  null,
                  null,
                  o == null ? 0.0 : o.ms(),
                  why,
                  null));
          errors.add(1);
          continue;
        }
        RecordResult r = o.result();
        StageCount visual = r.stages().isEmpty() ? null : r.stages().get(0);
        Boolean correct =
            q.kind().equals("caption") ? null : AnswerScoring.exactMatch(r.answer(), q.answer());
        rows.add(
            RowFactory.create(
                planIndex,
                plan.label(),
                plan.plan().planHash(),
                imageIndex,
                imageId,
                q.id(),
                q.kind(),
                q.question(),
                q.answer(),
                r.answer(),
                correct,
                visual == null ? null : visual.tokensIn(),
                visual == null ? null : visual.tokensOut(),
                r.flops().vision(),
                r.flops().prefill(),
                r.flops().decode(),
                r.answerTokenIds().length,
                r.kvCache() == null ? null : r.kvCache().storedBytes(),
                o.ms(),
                null,
                importantShare(r.kvCache())));
        ok.add(1);
      }
    }
    return rows;
  }

  /**
   * Per LM layer, the share of the cache a KV-quantising operator stored at its high precision
   * ({@link KvCompressionInfo#importantRatio()}: ZipVL's important tokens, or (token, KV head)
   * pairs with {@code per_kv_head}); null when no layer carries compression info.
   */
  static double[] importantShare(KvCache cache) {
    if (cache == null || cache.layer(0).compressionInfo() == null) {
      return null;
    }
    double[] out = new double[cache.numLayers()];
    for (int l = 0; l < out.length; l++) {
      KvCompressionInfo info = cache.layer(l).compressionInfo();
      out[l] = info == null ? Double.NaN : info.importantRatio();
    }
    return out;
  }
}
