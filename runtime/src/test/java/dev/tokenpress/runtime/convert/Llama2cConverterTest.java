package dev.tokenpress.runtime.convert;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Llama2cConverterTest {

  /** llama2.c's RoPE: adjacent pairs (i, i+1) of each head, frequency 10000^(-(i % hd)/hd). */
  private static double[] ropeInterleaved(double[] x, int hd, int pos) {
    double[] o = x.clone();
    for (int i = 0; i < x.length; i += 2) {
      double freq = 1.0 / Math.pow(10000.0, (i % hd) / (double) hd);
      double c = Math.cos(pos * freq);
      double s = Math.sin(pos * freq);
      o[i] = x[i] * c - x[i + 1] * s;
      o[i + 1] = x[i] * s + x[i + 1] * c;
    }
    return o;
  }

  /** Hugging Face's RoPE: (j, j + hd/2) of each head, frequency 10000^(-2j/hd). */
  private static double[] ropeHalf(double[] x, int hd, int pos) {
    double[] o = x.clone();
    for (int h = 0; h < x.length / hd; h++) {
      for (int j = 0; j < hd / 2; j++) {
        double freq = Math.pow(10000.0, -2.0 * j / hd);
        double c = Math.cos(pos * freq);
        double s = Math.sin(pos * freq);
        int a = h * hd + j;
        int b = a + hd / 2;
        o[a] = x[a] * c - x[b] * s;
        o[b] = x[b] * c + x[a] * s;
      }
    }
    return o;
  }

  private static double[] apply(float[] w, double[] x, int out) {
    double[] y = new double[out];
    for (int r = 0; r < out; r++) {
      for (int c = 0; c < x.length; c++) {
        y[r] += w[r * x.length + c] * x[c];
      }
    }
    return y;
  }

  @Test
  void permutedProjectionsGiveLlama2cAttentionScores() {
    int heads = 2;
    int hd = 8;
    int dim = heads * hd;
    SplittableRandom rnd = new SplittableRandom(9);
    float[] wq = new float[dim * dim];
    float[] wk = new float[dim * dim];
    for (int i = 0; i < wq.length; i++) {
      wq[i] = (float) (rnd.nextDouble() - 0.5);
      wk[i] = (float) (rnd.nextDouble() - 0.5);
    }
    float[] pq = Llama2cConverter.permuteRope(wq, heads, hd, dim);
    float[] pk = Llama2cConverter.permuteRope(wk, heads, hd, dim);
    double[] x1 = new double[dim];
    double[] x2 = new double[dim];
    for (int i = 0; i < dim; i++) {
      x1[i] = rnd.nextDouble() - 0.5;
      x2[i] = rnd.nextDouble() - 0.5;
    }
    double[] q = ropeInterleaved(apply(wq, x1, dim), hd, 7);
    double[] k = ropeInterleaved(apply(wk, x2, dim), hd, 3);
    double[] qh = ropeHalf(apply(pq, x1, dim), hd, 7);
    double[] kh = ropeHalf(apply(pk, x2, dim), hd, 3);
    for (int h = 0; h < heads; h++) {
      double a = 0;
      double b = 0;
      for (int e = 0; e < hd; e++) {
        a += q[h * hd + e] * k[h * hd + e];
        b += qh[h * hd + e] * kh[h * hd + e];
      }
      assertThat(b).as("head %d score", h).isCloseTo(a, within(1e-9));
    }
  }

  @Test
  void rejectsWhatIsNotALlama2cCheckpoint(@TempDir Path tmp) throws IOException {
    Path tiny = tmp.resolve("x.bin");
    Files.write(tiny, new byte[10]);
    assertThatThrownBy(() -> Llama2cConverter.convert(tiny, tmp.resolve("out")))
        .hasMessageContaining("too small");
    ByteBuffer h = ByteBuffer.allocate(28 + 400).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(64).putInt(172).putInt(5).putInt(8).putInt(4).putInt(512).putInt(512);
    Path trunc = tmp.resolve("t.bin");
    Files.write(trunc, h.array());
    assertThatThrownBy(() -> Llama2cConverter.convert(trunc, tmp.resolve("out")))
        .hasMessageContaining("truncated");
  }
}
