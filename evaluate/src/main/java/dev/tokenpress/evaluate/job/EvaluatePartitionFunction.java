package dev.tokenpress.evaluate.job;

import dev.tokenpress.datasets.Question;
import dev.tokenpress.datasets.Scene;
import dev.tokenpress.evaluate.eval.AnswerScoring;
import dev.tokenpress.evaluate.eval.ShapesVqaSource;
import dev.tokenpress.operators.api.CompressionPlan;
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

/**
 * Executor side of the {@code evaluate} job: each input row is an image index; the image is
 * regenerated from the sample's seed, and its questions of the configured kinds are answered with
 * every plan in one {@link RecordProcessor#processImage} call, so that the work the pairs have in
 * common runs once (the VLM: one vision pass for the plans without a ViT operator, one prefix
 * prefill per group of equal prefixes). One {@link #SCHEMA} row per (plan, question) comes out, plan
 * after plan; {@code ms} is the pair's own time plus its even share of what it shared. The model is
 * the executor's cached runtime ({@link ExecutorRuntimes}, keyed by the model), so every plan runs on
 * one loaded copy. A question that fails becomes a row with {@code error} set, never a dead task.
 */
final class EvaluatePartitionFunction implements FlatMapFunction<Iterator<Row>, Row> {
  private static final long serialVersionUID = 1L;

  /** One row per (plan, question). */
  static final StructType SCHEMA = new StructType()
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
      .add("error", DataTypes.StringType, true);

  /** Input rows: which image (every plan runs on it). */
  static final StructType WORK = new StructType()
      .add("image_index", DataTypes.IntegerType, false);

  private final ProcessorFactory factory;
  private final ProcessorSpec spec;
  private final List<EvaluateConfig.LabelledPlan> plans;
  private final EvaluateConfig.Sample sample;

  EvaluatePartitionFunction(ProcessorFactory factory, ProcessorSpec spec, List<EvaluateConfig.LabelledPlan> plans,
      EvaluateConfig.Sample sample) {
    this.factory = factory;
    this.spec = spec;
    this.plans = List.copyOf(plans);
    this.sample = sample;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    // one intra-op thread per task unless configured: the tasks of an executor run side by side
    RecordProcessor processor = ExecutorRuntimes.getOrCreate(factory, spec, Math.max(1, spec.intraOpThreads()));
    ShapesVqaSource data = new ShapesVqaSource(sample.seed(), 128, sample.split());
    return new Iterator<>() {
      private final java.util.ArrayDeque<Row> pending = new java.util.ArrayDeque<>();

      @Override
      public boolean hasNext() {
        while (pending.isEmpty() && input.hasNext()) {
          Row w = input.next();
          pending.addAll(image(processor, data, w.getInt(0)));
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
    byte[] png = ShapesVqaSource.png(scene);
    String source = "shapesvqa:" + sample.split() + "/" + imageIndex;
    List<Question> questions = new ArrayList<>();
    List<InputRecord> records = new ArrayList<>();
    for (Question q : scene.questions()) {
      if (sample.kinds().contains(q.kind())) {
        questions.add(q);
        records.add(new InputRecord(q.id(), source, png, q.question(), null));
      }
    }
    List<CompressionPlan> planList = new ArrayList<>();
    for (EvaluateConfig.LabelledPlan p : plans) {
      planList.add(p.plan());
    }
    List<List<RecordProcessor.RecordOutcome>> outcomes = processor.processImage(records, planList);
    List<Row> rows = new ArrayList<>();
    for (int planIndex = 0; planIndex < plans.size(); planIndex++) {
      EvaluateConfig.LabelledPlan plan = plans.get(planIndex);
      for (int i = 0; i < questions.size(); i++) {
        Question q = questions.get(i);
        RecordProcessor.RecordOutcome o = outcomes.get(planIndex).get(i);
        if (o.error() != null) {
          String why = o.error().getClass().getSimpleName() + ": " + o.error().getMessage();
          rows.add(RowFactory.create(planIndex, plan.label(), plan.plan().planHash(), imageIndex, scene.imageId(),
              q.id(), q.kind(), q.question(), q.answer(), null, null, null, null, null, null, null, null, null, o.ms(),
              why));
          continue;
        }
        RecordResult r = o.result();
        StageCount visual = r.stages().isEmpty() ? null : r.stages().get(0);
        Boolean correct = q.kind().equals("caption") ? null : AnswerScoring.exactMatch(r.answer(), q.answer());
        rows.add(RowFactory.create(planIndex, plan.label(), plan.plan().planHash(), imageIndex, scene.imageId(), q.id(),
            q.kind(), q.question(), q.answer(), r.answer(), correct,
            visual == null ? null : visual.tokensIn(), visual == null ? null : visual.tokensOut(),
            r.flops().vision(), r.flops().prefill(), r.flops().decode(), r.answerTokenIds().length,
            r.kvCache() == null ? null : r.kvCache().storedBytes(), o.ms(), null));
      }
    }
    return rows;
  }
}
