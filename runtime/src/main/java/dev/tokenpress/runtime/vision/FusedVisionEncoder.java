package dev.tokenpress.runtime.vision;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tokenpress.runtime.RunnerException;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.onnx.GraphSession;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * The conventional export: the whole vision tower and projector in one ONNX graph ({@link
 * VisionGraphs#fused()}), one call per image. No hooks or signals; the baseline the split {@link
 * VisionEncoder} is measured against. Thread-safe.
 */
public final class FusedVisionEncoder implements AutoCloseable {
  private final VisionConfig cfg;
  private final GraphSession session;

  private FusedVisionEncoder(VisionConfig cfg, GraphSession session) {
    this.cfg = cfg;
    this.session = session;
  }

  /** Builds the fused graph in memory, weights inline. */
  public static FusedVisionEncoder create(VisionGraphs graphs, SessionConfig config) {
    return new FusedVisionEncoder(
        graphs.config(), GraphSession.fromBytes("vision/fused", graphs.fused().toBytes(), config));
  }

  /** Loads a fused graph file by path. */
  public static FusedVisionEncoder load(Path file, VisionConfig cfg, SessionConfig config) {
    return new FusedVisionEncoder(cfg, GraphSession.open(file, config));
  }

  public VisionConfig config() {
    return cfg;
  }

  public VisionOutput encode(PixelValues pixels) {
    if (pixels.height() != cfg.imageSize() || pixels.width() != cfg.imageSize()) {
      throw new IllegalArgumentException(
          "pixel values are "
              + pixels.height()
              + "x"
              + pixels.width()
              + ", the vision tower takes "
              + cfg.imageSize()
              + "x"
              + cfg.imageSize());
    }
    long start = System.nanoTime();
    FloatBuffer px =
        ByteBuffer.allocateDirect(3 * pixels.height() * pixels.width() * 4)
            .order(ByteOrder.nativeOrder())
            .asFloatBuffer();
    pixels.copyTo(px);
    px.rewind();
    try (OnnxTensor in =
            OnnxTensor.createTensor(GraphSession.environment(), px, pixels.batchShape());
        OrtSession.Result r = session.run(Map.of("pixel_values", in))) {
      float[] f = VisionEncoder.copy((OnnxTensor) r.get(0));
      int[] tokens = new int[cfg.layersRun()];
      Arrays.fill(tokens, cfg.numPositions());
      int n = f.length / cfg.textHiddenSize();
      return new VisionOutput(
          f,
          n,
          cfg.textHiddenSize(),
          Map.of(),
          tokens,
          VisionFlops.total(cfg, tokens, n),
          (System.nanoTime() - start) / 1e6);
    } catch (OrtException e) {
      throw new RunnerException(
          "cannot create the fused vision input tensor: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    session.close();
  }
}
