package dev.tokenpress.spark;

import ai.onnxruntime.OrtEnvironment;
import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.operators.api.KeptMap;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.media.DecodeOptions;
import dev.tokenpress.runtime.onnx.SessionConfig;
import dev.tokenpress.runtime.vlm.ImageBatchResult;
import dev.tokenpress.runtime.vlm.VlmOptions;
import dev.tokenpress.runtime.vlm.VlmRequest;
import dev.tokenpress.runtime.vlm.VlmResult;
import dev.tokenpress.runtime.vlm.VlmRuntime;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.deploy.SparkHadoopUtil;

/**
 * The production {@link ProcessorFactory}: the ONNX Runtime VLM ({@link VlmRuntime}) over a model
 * bundle, with the job's plan, limits, KV precision and seed. One runtime per executor JVM (via
 * {@link ExecutorRuntimes}); its ORT sessions run {@code intraOpThreads} threads per call, with
 * spinning off so idle pools do not steal cores from the other task slots.
 */
public enum VlmProcessorFactory implements ProcessorFactory {
  INSTANCE;

  @Override
  public RecordProcessor create(ProcessorSpec spec, int intraOpThreads) {
    Path dir = BundleLocator.localize(spec.bundle(), hadoopConf());
    VlmOptions options =
        new VlmOptions(
            new SessionConfig(intraOpThreads, false),
            DecodeOptions.DEFAULT.withMaxPixels(spec.maxPixels()),
            spec.maxNewTokens(),
            spec.kvPrecision(),
            spec.seed(),
            Bundle.Verify.FULL,
            false);
    VlmRuntime runtime = VlmRuntime.open(dir, options);
    try {
      return new Processor(
          runtime, new EngineInfo(BundleLocator.bundleSha256(dir), engineVersion()));
    } catch (RuntimeException e) {
      runtime.close();
      throw e;
    }
  }

  @Override
  public EngineInfo describe(ProcessorSpec spec) {
    Path dir = BundleLocator.localize(spec.bundle(), hadoopConf());
    return new EngineInfo(BundleLocator.bundleSha256(dir), engineVersion());
  }

  /** {@link VlmRuntime#checkPlan} against the shape in the bundle's manifest; opens no session. */
  @Override
  public void checkPlan(ProcessorSpec spec, CompressionPlan plan) {
    Path dir = BundleLocator.localize(spec.bundle(), hadoopConf());
    VlmRuntime.checkPlan(plan, VlmRuntime.shape(Bundle.open(dir, Bundle.Verify.SIZE)));
  }

  static String engineVersion() {
    String tp = VlmRuntime.class.getPackage().getImplementationVersion();
    return "tokenpress-runtime "
        + (tp == null ? "dev" : tp)
        + ", onnxruntime "
        + OrtEnvironment.getEnvironment().getVersion();
  }

  private static Configuration hadoopConf() {
    try {
      return SparkHadoopUtil.get().conf();
    } catch (RuntimeException e) {
      return new Configuration();
    }
  }

  /**
   * Adapts {@link VlmResult} to the row codec's {@link RecordResult}. Each distinct plan is
   * validated against the model on its first record (the driver already checked it against the
   * bundle's manifest) and remembered.
   */
  static final class Processor implements RecordProcessor {
    private final VlmRuntime runtime;
    private final EngineInfo engine;
    private final Set<CompressionPlan> validated = ConcurrentHashMap.newKeySet();

    Processor(VlmRuntime runtime, EngineInfo engine) {
      this.runtime = runtime;
      this.engine = engine;
    }

    @Override
    public RecordResult process(InputRecord record, CompressionPlan plan) {
      if (!validated.contains(plan)) {
        runtime.validate(plan);
        validated.add(plan);
      }
      VlmResult r =
          runtime.generate(
              VlmRequest.ofBytes(record.id(), record.bytes(), record.prompt()).withPlan(plan));
      return toRecordResult(r);
    }

    /**
     * {@link VlmRuntime#generateImage} over every (plan, record) pair of the image: one vision pass
     * for the plans without a ViT operator, one prefix prefill per group of equal prefixes. A plan
     * the model rejects fails its pairs only.
     */
    @Override
    public List<List<RecordOutcome>> processImage(
        List<InputRecord> records, List<CompressionPlan> plans) {
      List<VlmRequest> requests = new ArrayList<>();
      List<IllegalArgumentException> invalid = new ArrayList<>();
      for (CompressionPlan plan : plans) {
        IllegalArgumentException why = null;
        try {
          if (!validated.contains(plan)) {
            runtime.validate(plan);
            validated.add(plan);
          }
          for (InputRecord r : records) {
            requests.add(VlmRequest.ofBytes(r.id(), r.bytes(), r.prompt()).withPlan(plan));
          }
        } catch (IllegalArgumentException e) {
          why = e;
        }
        invalid.add(why);
      }
      ImageBatchResult batch = runtime.generateImage(requests);
      List<List<RecordOutcome>> out = new ArrayList<>(plans.size());
      int next = 0;
      for (int p = 0; p < plans.size(); p++) {
        List<RecordOutcome> row = new ArrayList<>(records.size());
        for (int i = 0; i < records.size(); i++) {
          if (invalid.get(p) != null) {
            row.add(new RecordOutcome(null, invalid.get(p), 0));
            continue;
          }
          ImageBatchResult.Outcome o = batch.outcomes().get(next++);
          row.add(
              o.error() != null
                  ? new RecordOutcome(null, o.error(), o.ms())
                  : new RecordOutcome(toRecordResult(o.result()), null, o.ms()));
        }
        out.add(row);
      }
      return out;
    }

    @Override
    public EngineInfo engineInfo() {
      return engine;
    }

    @Override
    public void close() {
      runtime.close();
    }
  }

  /** The row codec's view of a runtime result. */
  public static RecordResult toRecordResult(VlmResult r) {
    List<StageCount> stages = new ArrayList<>();
    stages.add(new StageCount("visual_tokens", r.visualTokensIn(), r.visualTokensKept()));
    List<KeptTokens> kept = new ArrayList<>();
    for (KeptMap m : r.keptMaps()) {
      String stage =
          m.operator()
              + "@"
              + m.hook().name().toLowerCase()
              + (m.layer() >= 0 ? "[" + m.layer() + "]" : "");
      stages.add(new StageCount(stage, m.inputCount(), m.kept().length));
      kept.add(
          new KeptTokens(
              m.operator(),
              m.hook().name(),
              m.layer(),
              m.inputCount(),
              m.kept(),
              m.original(),
              m.labels()));
    }
    Map<String, Long> f = r.flops();
    Flops flops =
        new Flops(
            f.getOrDefault("vision", 0L),
            f.getOrDefault("prefill", 0L),
            f.getOrDefault("decode", 0L));
    return new RecordResult(
        r.answer(),
        r.tokenIds(),
        stages,
        kept,
        flops,
        r.timingsMs(),
        r.kvCache(),
        r.provenance(),
        r.recordSeed(),
        r.operatorStats());
  }
}
