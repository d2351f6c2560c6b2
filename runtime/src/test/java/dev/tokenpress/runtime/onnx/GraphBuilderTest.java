package dev.tokenpress.runtime.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GraphBuilderTest {
  @TempDir Path tmp;

  private static final int IN = 8;
  private static final int OUT = 64; // 8x64 floats = 2 KiB: large enough to go external

  private static float[] weights() {
    float[] w = new float[IN * OUT];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) Math.sin(i * 0.37) * 0.5f;
    }
    return w;
  }

  /** {@code y = silu(rmsnorm(x) @ W) }, plus a layer norm and a gelu output. */
  private static GraphBuilder graph(String name, AtomicInteger supplied) {
    GraphBuilder g = new GraphBuilder(name);
    String x = g.input("x", DataType.FLOAT, "batch", IN);
    String w =
        g.weight(
            "proj.weight_t",
            new long[] {IN, OUT},
            () -> {
              supplied.incrementAndGet();
              return weights();
            });
    String norm = g.rmsNorm(x, g.constant(new float[] {1, 1, 1, 1, 2, 2, 2, 2}, IN), 1e-5);
    g.output(g.silu(g.matMul(norm, w)), "y", DataType.FLOAT, "batch", OUT);
    String ln =
        g.layerNorm(
            x,
            g.constant(new float[] {1, 1, 1, 1, 1, 1, 1, 1}, IN),
            g.constant(new float[IN], IN),
            1e-5f);
    g.output(g.gelu(ln), "z", DataType.FLOAT, "batch", IN);
    g.output(x, "x_copy", DataType.FLOAT, "batch", IN); // an input passed through (Identity)
    return g;
  }

  private static double[] expected(float[] x) {
    double ss = 0;
    for (float v : x) {
      ss += v * v;
    }
    double inv = 1 / Math.sqrt(ss / IN + 1e-5);
    float[] w = weights();
    double[] y = new double[OUT];
    for (int o = 0; o < OUT; o++) {
      double acc = 0;
      for (int i = 0; i < IN; i++) {
        acc += x[i] * inv * (i < 4 ? 1 : 2) * w[i * OUT + o];
      }
      y[o] = acc / (1 + Math.exp(-acc));
    }
    return y;
  }

  private static float[] run(GraphSession s, float[] x, String output) {
    try (DirectTensor in = DirectTensor.floats(1, IN)) {
      in.put(x, 0, IN);
      try (OrtSession.Result r = s.run(Map.of("x", in.tensor()))) {
        OnnxTensor t = (OnnxTensor) r.get(output).orElseThrow();
        float[] out = new float[(int) t.getInfo().getNumElements()];
        t.getFloatBuffer().get(out);
        return out;
      }
    }
  }

  @Test
  void inlineGraphComputesWhatItSays() {
    float[] x = {0.5f, -1, 2, 0.25f, -0.75f, 1.5f, 0, 3};
    AtomicInteger supplied = new AtomicInteger();
    try (GraphSession s =
        GraphSession.fromBytes(
            "t", graph("t", supplied).toBytes(), SessionConfig.singleThreaded())) {
      assertThat(s.inputNames()).containsExactly("x");
      assertThat(s.outputNames()).containsExactlyInAnyOrder("y", "z", "x_copy");
      float[] y = run(s, x, "y");
      double[] want = expected(x);
      for (int o = 0; o < OUT; o++) {
        assertThat((double) y[o]).isCloseTo(want[o], within(1e-5));
      }
      float[] z = run(s, x, "z");
      double mean = 0;
      for (float v : x) {
        mean += v;
      }
      mean /= IN;
      double var = 0;
      for (float v : x) {
        var += (v - mean) * (v - mean);
      }
      var /= IN;
      double n0 = (x[0] - mean) / Math.sqrt(var + 1e-5);
      double gelu0 = 0.5 * n0 * (1 + erf(n0 / Math.sqrt(2)));
      assertThat((double) z[0]).isCloseTo(gelu0, within(1e-5));
      assertThat(run(s, x, "x_copy")).containsExactly(x);
    }
    assertThat(supplied.get()).isEqualTo(1);
  }

  @Test
  void externalWeightsAreWrittenOnceAndShared() throws Exception {
    AtomicInteger supplied = new AtomicInteger();
    float[] x = {1, 2, 3, 4, 5, 6, 7, 8};
    try (ExternalWeights ext = new ExternalWeights(tmp.resolve("weights.bin"))) {
      graph("a", supplied).write(tmp.resolve("a.onnx"), ext);
      graph("b", supplied).write(tmp.resolve("b.onnx"), ext);
      assertThat(ext.size()).isEqualTo(IN * OUT * 4L);
    }
    assertThat(supplied.get()).isEqualTo(1); // the second graph found the key in the file
    assertThat(Files.size(tmp.resolve("a.onnx"))).isLessThan(IN * OUT * 4L);
    try (GraphSession a = GraphSession.open(tmp.resolve("a.onnx"), SessionConfig.singleThreaded());
        GraphSession b = GraphSession.open(tmp.resolve("b.onnx"), SessionConfig.singleThreaded())) {
      assertThat(run(a, x, "y")).containsExactly(run(b, x, "y"));
      double[] want = expected(x);
      assertThat((double) run(a, x, "y")[3]).isCloseTo(want[3], within(1e-5));
    }
  }

  /** erf from the Numerical Recipes erfc approximation (fractional error below 1.2e-7). */
  private static double erf(double v) {
    double t = 1 / (1 + 0.5 * Math.abs(v));
    double y =
        1
            - t
                * Math.exp(
                    -v * v
                        - 1.26551223
                        + t
                            * (1.00002368
                                + t
                                    * (0.37409196
                                        + t
                                            * (0.09678418
                                                + t
                                                    * (-0.18628806
                                                        + t
                                                            * (0.27886807
                                                                + t
                                                                    * (-1.13520398
                                                                        + t
                                                                            * (1.48851587
                                                                                + t
                                                                                    * (-0.82215223
                                                                                        + t
                                                                                            * 0.17087277)))))))));
    return v >= 0 ? y : -y;
  }
}
