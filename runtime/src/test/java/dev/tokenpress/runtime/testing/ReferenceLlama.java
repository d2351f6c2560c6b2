package dev.tokenpress.runtime.testing;

import dev.tokenpress.runtime.checkpoint.LlamaConfig;
import dev.tokenpress.runtime.checkpoint.LmCheckpoint;
import java.util.Map;

/**
 * An independent, deliberately plain Llama forward in double precision, straight from the Hugging
 * Face weights ({@code y = W x} with W as [out, in], half-split RoPE, causal attention by row
 * order, GQA by head grouping), with optional row drops after layers — the reference the ONNX
 * graphs and the runtime are checked against.
 */
public final class ReferenceLlama {
  private final LlamaConfig c;
  private final LmCheckpoint ck;
  private double[][] lastRowAttention;

  public ReferenceLlama(LmCheckpoint ck) {
    this.ck = ck;
    this.c = ck.config();
  }

  /**
   * Logits of the last row.
   *
   * @param x input embeddings, {@code rows x hidden}
   * @param positions position id per row
   * @param keepAfter rows to keep after layer ℓ (indices into the rows present at ℓ), may be empty
   * @param extraMask if not null, {@code extraMask[layer][i][j]} true masks key row j for query row
   *     i at that layer (rows present at that layer)
   */
  public double[] lastLogits(
      float[][] x, int[] positions, Map<Integer, int[]> keepAfter, boolean[][][] extraMask) {
    return lastLogits(x, positions, keepAfter, extraMask, false);
  }

  /**
   * As {@link #lastLogits(float[][], int[], Map, boolean[][][])}; with {@code repack} the rows kept
   * after a layer take positions {@code 0..k-1} from the next layer on (PositionMode.REPACK).
   */
  public double[] lastLogits(
      float[][] x,
      int[] positions,
      Map<Integer, int[]> keepAfter,
      boolean[][][] extraMask,
      boolean repack) {
    int d = c.hiddenSize();
    int hd = c.headDim();
    int nh = c.numHeads();
    int nkv = c.numKvHeads();
    double[][] h = new double[x.length][d];
    for (int i = 0; i < x.length; i++) {
      for (int j = 0; j < d; j++) {
        h[i][j] = x[i][j];
      }
    }
    int[] pos = positions.clone();
    lastRowAttention = new double[c.numLayers()][];
    for (int l = 0; l < c.numLayers(); l++) {
      String p = "layers." + l + ".";
      int n = h.length;
      double[][] q = new double[n][];
      double[][] k = new double[n][];
      double[][] v = new double[n][];
      for (int i = 0; i < n; i++) {
        double[] xn = rms(h[i], ck.weight(p + "input_layernorm.weight"));
        q[i] = rope(mv(ck.weight(p + "self_attn.q_proj.weight"), xn, nh * hd), nh, pos[i]);
        k[i] = rope(mv(ck.weight(p + "self_attn.k_proj.weight"), xn, nkv * hd), nkv, pos[i]);
        v[i] = mv(ck.weight(p + "self_attn.v_proj.weight"), xn, nkv * hd);
      }
      double[][] out = new double[n][];
      lastRowAttention[l] = new double[n];
      for (int i = 0; i < n; i++) {
        double[] a = new double[nh * hd];
        for (int hh = 0; hh < nh; hh++) {
          int g = hh / (nh / nkv);
          double[] s = new double[i + 1];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= i; j++) {
            double dot = 0;
            for (int e = 0; e < hd; e++) {
              dot += q[i][hh * hd + e] * k[j][g * hd + e];
            }
            s[j] = dot / Math.sqrt(hd);
            if (extraMask != null && extraMask[l] != null && extraMask[l][i][j]) {
              s[j] = Double.NEGATIVE_INFINITY;
            }
            max = Math.max(max, s[j]);
          }
          double sum = 0;
          for (int j = 0; j <= i; j++) {
            s[j] = Math.exp(s[j] - max);
            sum += s[j];
          }
          for (int j = 0; j <= i; j++) {
            if (i == n - 1) {
              lastRowAttention[l][j] += s[j] / sum / nh;
            }
            for (int e = 0; e < hd; e++) {
              a[hh * hd + e] += s[j] / sum * v[j][g * hd + e];
            }
          }
        }
        double[] o = mv(ck.weight(p + "self_attn.o_proj.weight"), a, d);
        double[] hh2 = new double[d];
        for (int e = 0; e < d; e++) {
          hh2[e] = h[i][e] + o[e];
        }
        double[] xn = rms(hh2, ck.weight(p + "post_attention_layernorm.weight"));
        double[] gate = mv(ck.weight(p + "mlp.gate_proj.weight"), xn, c.intermediateSize());
        double[] up = mv(ck.weight(p + "mlp.up_proj.weight"), xn, c.intermediateSize());
        for (int e = 0; e < gate.length; e++) {
          gate[e] = gate[e] / (1 + Math.exp(-gate[e])) * up[e];
        }
        double[] down = mv(ck.weight(p + "mlp.down_proj.weight"), gate, d);
        for (int e = 0; e < d; e++) {
          hh2[e] += down[e];
        }
        out[i] = hh2;
      }
      h = out;
      int[] keep = keepAfter.get(l);
      if (keep != null) {
        double[][] kh = new double[keep.length][];
        int[] kp = new int[keep.length];
        for (int i = 0; i < keep.length; i++) {
          kh[i] = h[keep[i]];
          kp[i] = repack ? i : pos[keep[i]];
        }
        h = kh;
        pos = kp;
      }
    }
    double[] last = rms(h[h.length - 1], ck.weight("norm.weight"));
    return mv(ck.lmHead(), last, c.vocabSize());
  }

  /**
   * Head-mean attention of the last row over the rows present at {@code layer}, from the last call.
   */
  public double[] lastRowAttention(int layer) {
    return lastRowAttention[layer].clone();
  }

  private double[] rms(double[] x, float[] w) {
    double ss = 0;
    for (double e : x) {
      ss += e * e;
    }
    double inv = 1 / Math.sqrt(ss / x.length + c.rmsNormEps());
    double[] o = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      o[i] = x[i] * inv * w[i];
    }
    return o;
  }

  private static double[] mv(float[] w, double[] x, int out) {
    int in = x.length;
    double[] y = new double[out];
    for (int r = 0; r < out; r++) {
      double acc = 0;
      for (int col = 0; col < in; col++) {
        acc += w[r * in + col] * x[col];
      }
      y[r] = acc;
    }
    return y;
  }

  private double[] rope(double[] x, int heads, int position) {
    int hd = c.headDim();
    int half = hd / 2;
    double[] o = x.clone();
    for (int h = 0; h < heads; h++) {
      for (int j = 0; j < half; j++) {
        double freq = Math.pow(c.ropeTheta(), -2.0 * j / hd);
        double ang = position * freq;
        double a = x[h * hd + j];
        double b = x[h * hd + j + half];
        o[h * hd + j] = a * Math.cos(ang) - b * Math.sin(ang);
        o[h * hd + j + half] = b * Math.cos(ang) + a * Math.sin(ang);
      }
    }
    return o;
  }
}
