package dev.tokenpress.runtime.vision;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tokenpress.operators.api.Hook;
import dev.tokenpress.operators.api.HookRunner;
import dev.tokenpress.operators.api.SequenceLayout;
import dev.tokenpress.operators.api.Signal;
import dev.tokenpress.operators.api.TokenReduction;
import dev.tokenpress.operators.api.VisionPoint;
import dev.tokenpress.operators.tensor.FloatTensor;
import dev.tokenpress.operators.tensor.Kernels;
import dev.tokenpress.runtime.RunnerException;
import dev.tokenpress.runtime.media.PixelValues;
import dev.tokenpress.runtime.onnx.GraphBuilder;
import dev.tokenpress.runtime.onnx.GraphSession;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Runs the split vision graphs of {@link VisionGraphs} with ONNX Runtime: patch embedding, per
 * layer pre-attention → attention → post-attention, projector. Intermediate tensors stay inside
 * ONNX Runtime (an output {@code OnnxTensor} feeds the next graph directly); only the final
 * features, and what a plan's {@link HookRunner} asks for (signals, rows to reduce), are copied to
 * Java.
 *
 * <p>Graphs are cut between attentions ({@code embed_pre0}, {@code post_pre_i}, {@code
 * post_projector}): {@code 1 + 2L} calls for L layers; {@link VisionPoint#AFTER_ATTENTION}
 * reductions fit between attention and {@code post_pre_i}. When an operator acts {@link
 * VisionPoint#AFTER_LAYER}, every layer runs {@code post_i} and {@code pre_{i+1}} separately around
 * the hook. Once tokens are merged and the plan asks for proportional attention, {@code
 * attention_bias} runs with {@code log(size)} of each key added to the logits.
 *
 * <p>Thread-safe: sessions are shared, each call owns its tensors. Close once, after all calls.
 */
public final class VisionEncoder implements AutoCloseable {
  private final VisionConfig cfg;
  private final Map<String, GraphSession> sessions;

  private VisionEncoder(VisionConfig cfg, Map<String, GraphSession> sessions) {
    this.cfg = cfg;
    this.sessions = sessions;
  }

  /**
   * The graph stems the split encoder loads for {@code cfg} (see {@link
   * VisionGraphs#splitGraphs()}).
   */
  static List<String> graphNames(VisionConfig cfg) {
    List<String> names =
        new ArrayList<>(List.of("embed", "attention", "attention_bias", "projector"));
    int n = cfg.layersRun();
    if (n > 0) {
      names.add("embed_pre0");
      names.add("post_projector");
    }
    for (int i = 0; i < n; i++) {
      names.add("pre_" + i);
      names.add("post_" + i);
      if (i + 1 < n) {
        names.add("post_pre_" + i);
      }
    }
    return names;
  }

  /** Builds the graphs in memory, weights inline (small models and tests). */
  public static VisionEncoder create(VisionGraphs graphs, SessionConfig config) {
    Map<String, GraphBuilder> all = graphs.splitGraphs();
    return open(
        graphs.config(),
        name -> GraphSession.fromBytes("vision/" + name, all.get(name).toBytes(), config));
  }

  /** Loads {@code <dir>/<stem>.onnx} for every graph (by path, so external weights resolve). */
  public static VisionEncoder load(Path dir, VisionConfig cfg, SessionConfig config) {
    return open(
        cfg,
        name -> {
          Path f = dir.resolve(name + ".onnx");
          if (!Files.isRegularFile(f)) {
            throw new IllegalArgumentException("vision graph " + f + " is missing");
          }
          return GraphSession.open(f, config);
        });
  }

  private interface Opener {
    GraphSession open(String name);
  }

  private static VisionEncoder open(VisionConfig cfg, Opener opener) {
    Map<String, GraphSession> sessions = new HashMap<>();
    try {
      for (String name : graphNames(cfg)) {
        sessions.put(name, opener.open(name));
      }
      return new VisionEncoder(cfg, sessions);
    } catch (RuntimeException e) {
      for (GraphSession s : sessions.values()) {
        s.close();
      }
      throw e;
    }
  }

  public VisionConfig config() {
    return cfg;
  }

  /** Features of one image, no operator. */
  public VisionOutput encode(PixelValues pixels) {
    return encode(pixels, null);
  }

  /**
   * Features of one image, with the plan of {@code hooks} (may be null) acting inside the ViT:
   * signals computed only when requested ({@link Signal.ClsAttention} for {@code VISUAL_TOKENS},
   * {@link Signal.VitClsAttention}, {@link Signal.VitClsHeadAttention}, {@link
   * Signal.VitClsLogits}, {@link Signal.VitKeys}, {@link Signal.VitHiddenStates}, {@link
   * Signal.VitLayerOutput}), {@link Hook#VISION_LAYER} reductions applied at their {@link
   * VisionPoint}, and the {@code log(size)} attention bias under proportional attention.
   */
  public VisionOutput encode(PixelValues pixels, HookRunner hooks) {
    Set<Integer> clsLayers = new TreeSet<>();
    if (hooks != null) {
      for (Signal s : hooks.signals()) {
        if (s instanceof Signal.ClsAttention c) {
          clsLayers.add(c.vitLayer());
        }
      }
    }
    return encode(pixels, hooks, clsLayers);
  }

  /**
   * Features of one image with no operator inside the ViT, plus the CLS attention rows of {@code
   * clsLayers} ({@link VisionOutput#clsAttention()}): one pass that every plan without a {@link
   * Hook#VISION_LAYER} operator can use through {@link #replay}, since such plans leave the ViT's
   * computation as it is.
   */
  public VisionOutput encodeShared(PixelValues pixels, Set<Integer> clsLayers) {
    return encode(pixels, null, new TreeSet<>(clsLayers));
  }

  /**
   * Delivers a {@link #encodeShared} pass to a record's {@code hooks} as {@link
   * #encode(PixelValues, HookRunner)} would have: starts the record's ViT and stores the CLS
   * attention rows its plan asks for ({@link Signal.ClsAttention}). Only for plans with no {@link
   * Hook#VISION_LAYER} operator.
   *
   * @throws IllegalArgumentException when the plan acts inside the ViT or asks for a row the pass
   *     did not compute
   */
  public void replay(VisionOutput shared, HookRunner hooks) {
    if (hooks.acts(Hook.VISION_LAYER)) {
      throw new IllegalArgumentException("a plan acting at VISION_LAYER needs its own vision pass");
    }
    hooks.startVision(cfg.numPatches() + 1);
    for (Signal s : hooks.signals()) {
      if (s instanceof Signal.ClsAttention c) {
        float[] row = shared.clsAttention().get(c.vitLayer());
        if (row == null) {
          throw new IllegalArgumentException(
              "the shared vision pass has no CLS attention row of ViT layer " + c.vitLayer());
        }
        hooks.putClsAttention(c.vitLayer(), row.clone());
      }
    }
  }

  private VisionOutput encode(PixelValues pixels, HookRunner hooks, Set<Integer> clsLayers) {
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
    if (hooks != null) {
      hooks.startVision(cfg.numPatches() + 1);
    }
    boolean atAttention = hooks != null && hooks.actsAt(VisionPoint.AFTER_ATTENTION);
    boolean afterLayer = hooks != null && hooks.actsAt(VisionPoint.AFTER_LAYER);
    int n = cfg.layersRun();
    int d = cfg.hiddenSize();
    int[] tokensPerLayer = new int[n];
    int[] mlpTokens = new int[n];
    Map<Integer, float[]> cls = new HashMap<>();
    FloatBuffer px =
        ByteBuffer.allocateDirect(3 * pixels.height() * pixels.width() * 4)
            .order(ByteOrder.nativeOrder())
            .asFloatBuffer();
    pixels.copyTo(px);
    px.rewind();
    Chain chain = new Chain();
    try {
      OnnxTensor pixelTensor =
          chain.own(OnnxTensor.createTensor(GraphSession.environment(), px, pixels.batchShape()));
      if (n == 0) {
        OrtSession.Result r = chain.run(sessions.get("embed"), Map.of("pixel_values", pixelTensor));
        OrtSession.Result f =
            chain.run(sessions.get("projector"), Map.of("hidden", tensor(r, "hidden")));
        float[] features = copy(tensor(f, "image_features"));
        return output(features, cls, tokensPerLayer, mlpTokens, start);
      }
      OrtSession.Result r =
          chain.run(sessions.get("embed_pre0"), Map.of("pixel_values", pixelTensor));
      OnnxTensor hidden = tensor(r, "hidden");
      OnnxTensor[] qkv = {tensor(r, "q"), tensor(r, "k"), tensor(r, "v")};
      for (int layer = 0; layer < n; layer++) {
        int t = (int) hidden.getInfo().getShape()[1];
        tokensPerLayer[layer] = t;
        mlpTokens[layer] = t;
        float[] keyBias = hooks == null ? null : hooks.visionKeyBias();
        LayerSignals signals = new LayerSignals(hidden, qkv[0], qkv[1], t, keyBias);
        if (clsLayers.contains(layer)) {
          float[] row = signals.clsRow();
          cls.put(layer, row);
          if (hooks != null) {
            hooks.putClsAttention(layer, row.clone());
          }
        }
        OnnxTensor attn;
        if (keyBias == null) {
          attn =
              tensor(
                  chain.run(
                      sessions.get("attention"), Map.of("q", qkv[0], "k", qkv[1], "v", qkv[2])),
                  "attn");
        } else {
          OnnxTensor bias = chain.own(floats(biasRows(keyBias), 1, 1, t, t));
          attn =
              tensor(
                  chain.run(
                      sessions.get("attention_bias"),
                      Map.of("q", qkv[0], "k", qkv[1], "v", qkv[2], "bias", bias)),
                  "attn");
        }
        if (atAttention) {
          TokenReduction red = hooks.visionLayer(layer, VisionPoint.AFTER_ATTENTION, signals);
          if (red != null) {
            int out = red.outputCount();
            mlpTokens[layer] = out;
            hidden = chain.own(floats(red.apply(copy(hidden), d), 1, out, d));
            attn = chain.own(floats(red.apply(copy(attn), d), 1, out, d));
          }
        }
        if (!afterLayer) {
          if (layer == n - 1) {
            OrtSession.Result f =
                chain.run(sessions.get("post_projector"), Map.of("hidden", hidden, "attn", attn));
            return output(copy(tensor(f, "image_features")), cls, tokensPerLayer, mlpTokens, start);
          }
          OrtSession.Result p =
              chain.run(sessions.get("post_pre_" + layer), Map.of("hidden", hidden, "attn", attn));
          hidden = tensor(p, "hidden_out");
          qkv = new OnnxTensor[] {tensor(p, "q"), tensor(p, "k"), tensor(p, "v")};
          chain.keepOnly(p);
          continue;
        }
        // An operator acts after the whole layer: post, hook, then pre of the next layer.
        OrtSession.Result p =
            chain.run(sessions.get("post_" + layer), Map.of("hidden", hidden, "attn", attn));
        OnnxTensor out = tensor(p, "hidden_out");
        TokenReduction red =
            hooks.visionLayer(layer, VisionPoint.AFTER_LAYER, signals.withOutput(out));
        AutoCloseable keep = p;
        if (red != null) {
          out = chain.own(floats(red.apply(copy(out), d), 1, red.outputCount(), d));
          keep = out;
        }
        if (layer == n - 1) {
          OrtSession.Result f = chain.run(sessions.get("projector"), Map.of("hidden", out));
          return output(copy(tensor(f, "image_features")), cls, tokensPerLayer, mlpTokens, start);
        }
        OrtSession.Result q = chain.run(sessions.get("pre_" + (layer + 1)), Map.of("hidden", out));
        hidden = out;
        qkv = new OnnxTensor[] {tensor(q, "q"), tensor(q, "k"), tensor(q, "v")};
        chain.keepOnly(q, keep);
      }
      throw new IllegalStateException("unreachable");
    } catch (OrtException e) {
      throw new RunnerException("cannot create a vision input tensor: " + e.getMessage(), e);
    } finally {
      chain.close();
    }
  }

  /** The signals of one layer, computed from its input rows on first request. */
  private final class LayerSignals implements HookRunner.SignalSource {
    private final OnnxTensor hidden;
    private final OnnxTensor q;
    private final OnnxTensor k;
    private final int tokens;
    private final float[] keyBias;
    private final OnnxTensor output;
    private float[] clsRow;
    private float[] clsHeads;

    LayerSignals(OnnxTensor hidden, OnnxTensor q, OnnxTensor k, int tokens, float[] keyBias) {
      this(hidden, q, k, tokens, keyBias, null);
    }

    private LayerSignals(
        OnnxTensor hidden,
        OnnxTensor q,
        OnnxTensor k,
        int tokens,
        float[] keyBias,
        OnnxTensor output) {
      this.output = output;
      this.hidden = hidden;
      this.q = q;
      this.k = k;
      this.tokens = tokens;
      this.keyBias = keyBias;
    }

    /**
     * The same signals, plus {@link Signal.VitLayerOutput} from {@code out}, the layer's output
     * rows.
     */
    LayerSignals withOutput(OnnxTensor out) {
      LayerSignals s = new LayerSignals(hidden, q, k, tokens, keyBias, out);
      s.clsRow = clsRow;
      s.clsHeads = clsHeads;
      return s;
    }

    float[] clsRow() {
      if (clsRow == null) {
        clsRow = Kernels.meanOverHeads(clsHeads(), cfg.numHeads(), tokens);
      }
      return clsRow.clone();
    }

    /** {@code [H, T]}: the CLS row per head, from which {@link #clsRow} is the mean. */
    float[] clsHeads() {
      if (clsHeads == null) {
        clsHeads =
            ClsAttention.perHead(copy(q), copy(k), cfg.numHeads(), tokens, cfg.headDim(), keyBias);
      }
      return clsHeads.clone();
    }

    @Override
    public FloatTensor compute(Signal signal, SequenceLayout layout, int[] rows) {
      if (signal instanceof Signal.VitClsAttention) {
        return FloatTensor.wrap(clsRow(), tokens);
      }
      if (signal instanceof Signal.VitClsHeadAttention) {
        return FloatTensor.wrap(clsHeads(), cfg.numHeads(), tokens);
      }
      if (signal instanceof Signal.VitClsLogits) {
        return FloatTensor.wrap(
            ClsAttention.logits(copy(q), copy(k), cfg.numHeads(), tokens, cfg.headDim(), keyBias),
            cfg.numHeads(),
            tokens);
      }
      if (signal instanceof Signal.VitKeys) {
        int w = tokens * cfg.headDim();
        return FloatTensor.wrap(
            Kernels.meanOverHeads(copy(k), cfg.numHeads(), w), tokens, cfg.headDim());
      }
      if (signal instanceof Signal.VitLayerOutput && output != null) {
        int n = (int) output.getInfo().getShape()[1];
        return FloatTensor.wrap(copy(output), n, cfg.hiddenSize());
      }
      if (signal instanceof Signal.VitHiddenStates) {
        return FloatTensor.wrap(copy(hidden), tokens, cfg.hiddenSize());
      }
      throw new IllegalArgumentException("signal " + signal + " is not computed inside the ViT");
    }
  }

  /** {@code [T, T]}: every query row gets the same per-key bias. */
  private static float[] biasRows(float[] keyBias) {
    int t = keyBias.length;
    float[] b = new float[t * t];
    for (int i = 0; i < t; i++) {
      System.arraycopy(keyBias, 0, b, i * t, t);
    }
    return b;
  }

  private static OnnxTensor floats(float[] values, long... shape) throws OrtException {
    FloatBuffer b =
        ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
    b.put(values).rewind();
    return OnnxTensor.createTensor(GraphSession.environment(), b, shape);
  }

  private VisionOutput output(
      float[] features,
      Map<Integer, float[]> cls,
      int[] tokensPerLayer,
      int[] mlpTokens,
      long start) {
    int dim = cfg.textHiddenSize();
    int tokens = features.length / dim;
    long flops = VisionFlops.total(cfg, tokensPerLayer, mlpTokens, tokens);
    return new VisionOutput(
        features, tokens, dim, cls, tokensPerLayer, flops, (System.nanoTime() - start) / 1e6);
  }

  private static OnnxTensor tensor(OrtSession.Result r, String name) {
    OnnxValue v =
        r.get(name)
            .orElseThrow(() -> new RunnerException("vision graph output " + name + " is missing"));
    return (OnnxTensor) v;
  }

  /** A heap copy of a float tensor (the only way values leave ONNX Runtime). */
  static float[] copy(OnnxTensor t) {
    FloatBuffer b = t.getFloatBuffer();
    float[] a = new float[b.remaining()];
    b.get(a);
    return a;
  }

  @Override
  public void close() {
    for (GraphSession s : sessions.values()) {
      s.close();
    }
    sessions.clear();
  }

  /** Owns every Result/tensor of one encode call; all are closed at the end of the call. */
  private static final class Chain implements AutoCloseable {
    private final java.util.ArrayList<AutoCloseable> owned = new java.util.ArrayList<>();

    OnnxTensor own(OnnxTensor t) {
      owned.add(t);
      return t;
    }

    OrtSession.Result run(GraphSession s, Map<String, OnnxTensor> inputs) {
      OrtSession.Result r = s.run(inputs);
      owned.add(r);
      return r;
    }

    /** Closes everything this call owns except {@code keep} (the values the next step reads). */
    void keepOnly(AutoCloseable... keep) {
      java.util.List<AutoCloseable> k = java.util.Arrays.asList(keep);
      java.util.ArrayList<AutoCloseable> drop = new java.util.ArrayList<>();
      for (AutoCloseable c : owned) {
        if (!k.contains(c)) {
          drop.add(c);
        }
      }
      owned.retainAll(k);
      for (AutoCloseable c : drop) {
        try {
          c.close();
        } catch (Exception e) {
          // closing native memory does not fail in practice
        }
      }
    }

    @Override
    public void close() {
      for (int i = owned.size() - 1; i >= 0; i--) {
        try {
          owned.get(i).close();
        } catch (Exception e) {
          // closing native memory does not fail in practice
        }
      }
      owned.clear();
    }
  }
}
