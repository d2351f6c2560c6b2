package dev.tokenpress.jobs.compress;

import dev.tokenpress.operators.api.CompressionPlan;
import dev.tokenpress.spark.EngineInfo;
import dev.tokenpress.spark.InputRecord;
import dev.tokenpress.spark.ProcessorFactory;
import dev.tokenpress.spark.ProcessorSpec;
import dev.tokenpress.spark.RecordProcessor;
import dev.tokenpress.spark.RecordResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@link TestProcessorFactory} with faults for the fault-injection tests: the JVM halts (as under
 * {@code kill -9}) when a record with {@code haltOnId} is processed, and the record {@code
 * failOnceOnId} fails its task once (an {@link Error}, so the task attempt fails and Spark retries
 * it) — "once" across attempts and threads is a marker file created in {@code markerDir}.
 */
record FaultyProcessorFactory(String haltOnId, String failOnceOnId, String markerDir)
    implements ProcessorFactory {
  @Override
  public RecordProcessor create(ProcessorSpec spec, int intraOpThreads) {
    RecordProcessor inner = new TestProcessorFactory().create(spec, intraOpThreads);
    return new RecordProcessor() {
      @Override
      public RecordResult process(InputRecord r, CompressionPlan plan) {
        if (r.id().equals(haltOnId)) {
          Runtime.getRuntime().halt(137);
        }
        if (r.id().equals(failOnceOnId)) {
          try {
            Files.createFile(Path.of(markerDir, "failed-once"));
            throw new TestProcessorFactory.InjectedCrash(r.id());
          } catch (FileAlreadyExistsException e) {
            // the retried attempt: proceed
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
        return inner.process(r, plan);
      }

      @Override
      public EngineInfo engineInfo() {
        return inner.engineInfo();
      }

      @Override
      public void close() {
        inner.close();
      }
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
