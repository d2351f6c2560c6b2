package dev.tokenpress.operators.attention;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Finds a model's visual-sink dimensions ({@code D_sink} of {@link Var}) from the LM's layer-input
 * hidden states on sample images. The VAR paper lists them per model (LLaMA-2-7B: 1415, 2533) and
 * releases no search; this follows the spirit of the unofficial {@code Bostoncake/VisAttnSink}
 * tool: a dimension is a sink dimension when the RMS-normalised activation {@code |h[x,d]| /
 * sqrt(mean_d h[x,d]² + 1e-6)} (Var's {@link Var#sinkScores} for {@code D = {d}}) exceeds {@code τ}
 * at some position of at least {@code minImageShare} of the images.
 *
 * <p>Note that the normalised activation of one dimension is at most {@code sqrt(hiddenSize)} (all
 * of the row's energy in that dimension): with {@code τ = 20} no dimension of a model with {@code
 * hiddenSize <= 400} can qualify. {@link #maxPossible()} reports the bound.
 *
 * <p>Feed every image's layers with {@link #startImage()} then {@link #add}; not thread-safe.
 */
public final class SinkDimensionSearch {
  private final int hidden;
  private final int layers;
  private final double tau;
  private final float[] maxNorm;
  private final long[] over;
  private final long[] overVisual;
  private final int[] images;
  private final boolean[] seenThisImage;
  private final float[] layerMax;
  private final long[] layerRows;
  private int imageCount;

  /** Positions with at least one dimension over tau: {layer, visual, dims...}. */
  private final List<int[]> hits = new ArrayList<>();

  /**
   * @param hiddenSize the LM's hidden size
   * @param lmLayers the LM's layer count
   * @param tau the sink threshold
   */
  public SinkDimensionSearch(int hiddenSize, int lmLayers, double tau) {
    if (hiddenSize < 1 || lmLayers < 1 || !(tau > 0)) {
      throw new IllegalArgumentException(
          "hiddenSize and lmLayers must be >= 1 and tau > 0, got "
              + hiddenSize
              + ", "
              + lmLayers
              + ", "
              + tau);
    }
    this.hidden = hiddenSize;
    this.layers = lmLayers;
    this.tau = tau;
    maxNorm = new float[hiddenSize];
    over = new long[hiddenSize];
    overVisual = new long[hiddenSize];
    images = new int[hiddenSize];
    seenThisImage = new boolean[hiddenSize];
    layerMax = new float[lmLayers];
    layerRows = new long[lmLayers];
  }

  /** Starts the next image. */
  public void startImage() {
    Arrays.fill(seenThisImage, false);
    imageCount++;
  }

  /**
   * Adds the input hidden states of one LM layer for the current image.
   *
   * @param hiddenStates {@code [rows, hiddenSize]}
   * @param visual whether each row is a visual token
   */
  public void add(int layer, float[] hiddenStates, int rows, boolean[] visual) {
    if (imageCount == 0) {
      throw new IllegalStateException("call startImage() first");
    }
    if (hiddenStates.length != rows * hidden
        || visual.length != rows
        || layer < 0
        || layer >= layers) {
      throw new IllegalArgumentException(
          "layer "
              + layer
              + ": hidden states of "
              + hiddenStates.length
              + " values for "
              + rows
              + " rows of "
              + hidden
              + " (visual flags "
              + visual.length
              + ")");
    }
    int[] dimsOver = new int[hidden];
    for (int r = 0; r < rows; r++) {
      int o = r * hidden;
      double ss = 0;
      for (int d = 0; d < hidden; d++) {
        double v = hiddenStates[o + d];
        ss += v * v;
      }
      double rms = Math.sqrt(ss / hidden + 1e-6);
      int n = 0;
      for (int d = 0; d < hidden; d++) {
        float x = (float) (Math.abs(hiddenStates[o + d]) / rms);
        if (x > maxNorm[d]) {
          maxNorm[d] = x;
        }
        if (x > layerMax[layer]) {
          layerMax[layer] = x;
        }
        if (x > tau) {
          over[d]++;
          overVisual[d] += visual[r] ? 1 : 0;
          if (!seenThisImage[d]) {
            seenThisImage[d] = true;
            images[d]++;
          }
          dimsOver[n++] = d;
        }
      }
      if (n > 0) {
        int[] hit = new int[n + 2];
        hit[0] = layer;
        hit[1] = visual[r] ? 1 : 0;
        System.arraycopy(dimsOver, 0, hit, 2, n);
        hits.add(hit);
      }
    }
    layerRows[layer] += rows;
  }

  /** The images added so far. */
  public int images() {
    return imageCount;
  }

  /** {@code sqrt(hiddenSize)}: the largest normalised activation any dimension can reach. */
  public double maxPossible() {
    return Math.sqrt(hidden);
  }

  /**
   * The dimensions over {@code τ} somewhere in at least {@code minImageShare} of the images,
   * ascending.
   */
  public int[] sinkDims(double minImageShare) {
    int n = 0;
    int[] out = new int[hidden];
    for (int d = 0; d < hidden; d++) {
      if (images[d] > 0 && images[d] >= minImageShare * imageCount) {
        out[n++] = d;
      }
    }
    return Arrays.copyOf(out, n);
  }

  /** The {@code k} dimensions of largest normalised activation, largest first. */
  public int[] topDims(int k) {
    return dev.tokenpress.operators.tensor.Kernels.topK(maxNorm, Math.min(k, hidden));
  }

  /** Largest normalised activation of dimension {@code d}. */
  public float maxNorm(int d) {
    return maxNorm[d];
  }

  /**
   * Positions (over all images and layers) where dimension {@code d} exceeds {@code τ}; of them
   * visual.
   */
  public long[] positionsOver(int d) {
    return new long[] {over[d], overVisual[d]};
  }

  /** Images where dimension {@code d} exceeds {@code τ} somewhere. */
  public int imagesOver(int d) {
    return images[d];
  }

  /** Largest normalised activation of any dimension at {@code layer}. */
  public float layerMax(int layer) {
    return layerMax[layer];
  }

  /**
   * Mean sinks per image at each layer under {@code dims} (VAR's rule), {@code [layers][2]}: all
   * sinks, visual sinks.
   */
  public double[][] sinksPerImage(int[] dims) {
    boolean[] in = new boolean[hidden];
    for (int d : dims) {
      in[d] = true;
    }
    double[][] out = new double[layers][2];
    for (int[] h : hits) {
      boolean sink = false;
      for (int i = 2; i < h.length && !sink; i++) {
        sink = in[h[i]];
      }
      if (sink) {
        out[h[0]][0]++;
        out[h[0]][1] += h[1];
      }
    }
    for (double[] o : out) {
      o[0] /= Math.max(1, imageCount);
      o[1] /= Math.max(1, imageCount);
    }
    return out;
  }
}
