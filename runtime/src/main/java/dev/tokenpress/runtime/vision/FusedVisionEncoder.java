package dev.tokenpress.runtime.vision;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tokenpress.runtime.media.PixelValues;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Map;

/**
 * The conventional export: the whole vision tower and projector in one ONNX graph
 * ({@link VisionGraphs#fused()}), one call per image. No hooks or signals; the baseline the split
 * {@link VisionEncoder} is measured against.
 */
public final class FusedVisionEncoder implements AutoCloseable {
  private final VisionConfig cfg;
  private final OrtEnvironment env;
  private final OrtSession.SessionOptions options;
  private final OrtSession session;

  private FusedVisionEncoder(VisionConfig cfg, OrtEnvironment env, OrtSession.SessionOptions options, OrtSession session) {
    this.cfg = cfg;
    this.env = env;
    this.options = options;
    this.session = session;
  }

  public static FusedVisionEncoder create(VisionGraphs graphs, int intraOpThreads) {
    return open(graphs.config(), intraOpThreads, graphs.fused().toByteArray(), null);
  }

  /** Loads {@code fused.onnx} from {@code dir} by path. */
  public static FusedVisionEncoder load(Path dir, VisionConfig cfg, int intraOpThreads) {
    return open(cfg, intraOpThreads, null, dir.resolve("fused.onnx"));
  }

  private static FusedVisionEncoder open(VisionConfig cfg, int threads, byte[] bytes, Path file) {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions opts = VisionEncoder.sessionOptions(threads);
    try {
      OrtSession s = bytes != null ? env.createSession(bytes, opts) : env.createSession(file.toString(), opts);
      return new FusedVisionEncoder(cfg, env, opts, s);
    } catch (OrtException e) {
      opts.close();
      throw new IllegalStateException("Failed to load the fused vision graph" + (file == null ? "" : " " + file), e);
    }
  }

  public VisionOutput encode(PixelValues pixels) {
    long start = System.nanoTime();
    FloatBuffer px = ByteBuffer.allocateDirect(3 * pixels.height() * pixels.width() * 4)
        .order(ByteOrder.nativeOrder()).asFloatBuffer();
    pixels.copyTo(px);
    px.rewind();
    try (OnnxTensor in = OnnxTensor.createTensor(env, px, pixels.batchShape());
        OrtSession.Result r = session.run(Map.of("pixel_values", in))) {
      float[] f = VisionEncoder.copy((OnnxTensor) r.get(0));
      int[] tokens = new int[cfg.layersRun()];
      java.util.Arrays.fill(tokens, cfg.numPositions());
      int n = f.length / cfg.textHiddenSize();
      return new VisionOutput(f, n, cfg.textHiddenSize(), Map.of(), tokens, VisionFlops.total(cfg, tokens, n),
          (System.nanoTime() - start) / 1e6);
    } catch (OrtException e) {
      throw new IllegalStateException("Failed to execute the fused vision graph", e);
    }
  }

  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException e) {
      // nothing useful to do while closing
    }
    options.close();
  }
}
