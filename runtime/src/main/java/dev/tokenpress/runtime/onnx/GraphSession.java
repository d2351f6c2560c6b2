package dev.tokenpress.runtime.onnx;

import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tokenpress.runtime.RunnerException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One ONNX Runtime session over one graph, loaded by path (so external weights resolve and large
 * models never pass through a Java byte array). Wraps {@link OrtException} once into {@link
 * RunnerException} naming the graph. {@code run} is thread-safe, as ORT's is.
 */
public final class GraphSession implements AutoCloseable {
  private final String name;
  private final OrtSession session;
  private final OrtSession.SessionOptions options;
  private final List<String> inputNames;
  private final List<String> outputNames;

  private GraphSession(String name, OrtSession session, OrtSession.SessionOptions options)
      throws OrtException {
    this.name = name;
    this.session = session;
    this.options = options;
    this.inputNames = List.copyOf(new ArrayList<>(session.getInputNames()));
    this.outputNames = List.copyOf(new ArrayList<>(session.getOutputNames()));
  }

  /** The JVM's ONNX Runtime environment (a singleton owned by ORT; never closed by us). */
  public static OrtEnvironment environment() {
    return OrtEnvironment.getEnvironment();
  }

  /** Opens a model file. */
  public static GraphSession open(Path model, SessionConfig config) {
    return create(model.toString(), null, config);
  }

  /** Opens an in-memory model (tests and small graphs only; no external data). */
  public static GraphSession fromBytes(String name, byte[] model, SessionConfig config) {
    return create(name, model, config);
  }

  private static GraphSession create(String name, byte[] bytes, SessionConfig config) {
    OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
    try {
      opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      opts.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
      opts.setIntraOpNumThreads(config.intraOpThreads());
      opts.setInterOpNumThreads(1);
      opts.addConfigEntry("session.intra_op.allow_spinning", config.allowSpinning() ? "1" : "0");
      OrtSession s =
          bytes == null
              ? environment().createSession(name, opts)
              : environment().createSession(bytes, opts);
      return new GraphSession(name, s, opts);
    } catch (OrtException e) {
      opts.close();
      throw new RunnerException("cannot load ONNX graph " + name + ": " + e.getMessage(), e);
    }
  }

  public String name() {
    return name;
  }

  public List<String> inputNames() {
    return inputNames;
  }

  public List<String> outputNames() {
    return outputNames;
  }

  /** Runs the graph; the caller closes the result (try-with-resources). */
  public OrtSession.Result run(Map<String, ? extends OnnxTensorLike> inputs) {
    try {
      return session.run(inputs);
    } catch (OrtException e) {
      throw new RunnerException("ONNX graph " + name + " failed: " + e.getMessage(), e);
    }
  }

  /**
   * Runs the graph writing into caller-owned, preallocated output tensors (ORT's substitute for IO
   * binding in Java): no output allocation and no copy out.
   */
  public void runInto(
      Map<String, ? extends OnnxTensorLike> inputs,
      Map<String, ? extends OnnxValue> pinnedOutputs) {
    try (OrtSession.Result r = session.run(inputs, pinnedOutputs)) {
      assert r.size() == pinnedOutputs.size();
    } catch (OrtException e) {
      throw new RunnerException("ONNX graph " + name + " failed: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException e) {
      throw new RunnerException("cannot close ONNX session " + name, e);
    } finally {
      options.close();
    }
  }

  @Override
  public String toString() {
    return "GraphSession(" + name + ")";
  }
}
