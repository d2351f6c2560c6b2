package dev.tokenpress.runtime.vision;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
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

/**
 * Runs the split vision graphs of {@link VisionGraphs} with ONNX Runtime: patch embedding, per
 * layer pre-attention → attention → post-attention, projector. Intermediate tensors stay inside
 * ONNX Runtime (an output {@code OnnxTensor} feeds the next graph directly); only the final
 * features, and the q/k a {@link VisionHook} asks for, are copied to Java.
 *
 * <p>Without a hook, graphs are cut between attentions ({@code embed_pre0}, {@code post_pre_i},
 * {@code post_projector}): {@code 1 + 2L} calls for L layers. A layer whose token stream a hook
 * may change runs {@code post_i} and {@code pre_{i+1}} separately around the hook.
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

  /** The graph stems the split encoder loads for {@code cfg} (see {@link VisionGraphs#splitGraphs()}). */
  static List<String> graphNames(VisionConfig cfg) {
    List<String> names = new ArrayList<>(List.of("embed", "attention", "attention_bias", "projector"));
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
    return open(graphs.config(), name -> GraphSession.fromBytes("vision/" + name, all.get(name).toBytes(), config));
  }

  /** Loads {@code <dir>/<stem>.onnx} for every graph (by path, so external weights resolve). */
  public static VisionEncoder load(Path dir, VisionConfig cfg, SessionConfig config) {
    return open(cfg, name -> {
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

  /** Features of one image, no hook. */
  public VisionOutput encode(PixelValues pixels) {
    return encode(pixels, null);
  }

  /** Features of one image, with {@code hook} observing/changing the token stream (may be null). */
  public VisionOutput encode(PixelValues pixels, VisionHook hook) {
    if (pixels.height() != cfg.imageSize() || pixels.width() != cfg.imageSize()) {
      throw new IllegalArgumentException("pixel values are " + pixels.height() + "x" + pixels.width()
          + ", the vision tower takes " + cfg.imageSize() + "x" + cfg.imageSize());
    }
    long start = System.nanoTime();
    Set<Integer> clsLayers = hook == null ? Set.of() : hook.clsAttentionLayers();
    Set<Integer> tokenLayers = hook == null ? Set.of() : hook.tokenLayers();
    int n = cfg.layersRun();
    int[] tokensPerLayer = new int[n];
    Map<Integer, float[]> cls = new HashMap<>();
    FloatBuffer px = ByteBuffer.allocateDirect(3 * pixels.height() * pixels.width() * 4)
        .order(ByteOrder.nativeOrder()).asFloatBuffer();
    pixels.copyTo(px);
    px.rewind();
    Chain chain = new Chain();
    try {
      OnnxTensor pixelTensor = chain.own(OnnxTensor.createTensor(GraphSession.environment(), px, pixels.batchShape()));
      if (n == 0) {
        OrtSession.Result r = chain.run(sessions.get("embed"), Map.of("pixel_values", pixelTensor));
        OrtSession.Result f = chain.run(sessions.get("projector"), Map.of("hidden", tensor(r, "hidden")));
        float[] features = copy(tensor(f, "image_features"));
        return output(features, cls, tokensPerLayer, start);
      }
      OrtSession.Result r = chain.run(sessions.get("embed_pre0"), Map.of("pixel_values", pixelTensor));
      OnnxTensor hidden = tensor(r, "hidden");
      OnnxTensor[] qkv = {tensor(r, "q"), tensor(r, "k"), tensor(r, "v")};
      for (int layer = 0; layer < n; layer++) {
        int t = (int) hidden.getInfo().getShape()[1];
        tokensPerLayer[layer] = t;
        if (clsLayers.contains(layer)) {
          float[] row = ClsAttention.headAveraged(copy(qkv[0]), copy(qkv[1]), cfg.numHeads(), t, cfg.headDim());
          cls.put(layer, row);
          hook.clsAttention(layer, row.clone());
        }
        OrtSession.Result a = chain.run(sessions.get("attention"), Map.of("q", qkv[0], "k", qkv[1], "v", qkv[2]));
        OnnxTensor attn = tensor(a, "attn");
        if (layer == n - 1 && !tokenLayers.contains(layer)) {
          OrtSession.Result f = chain.run(sessions.get("post_projector"), Map.of("hidden", hidden, "attn", attn));
          return output(copy(tensor(f, "image_features")), cls, tokensPerLayer, start);
        }
        if (!tokenLayers.contains(layer)) {
          OrtSession.Result p = chain.run(sessions.get("post_pre_" + layer), Map.of("hidden", hidden, "attn", attn));
          hidden = tensor(p, "hidden_out");
          qkv = new OnnxTensor[] {tensor(p, "q"), tensor(p, "k"), tensor(p, "v")};
          chain.keepOnly(p);
          continue;
        }
        // A hook may change the token stream after this layer: post, hook, then pre of the next.
        OrtSession.Result p = chain.run(sessions.get("post_" + layer), Map.of("hidden", hidden, "attn", attn));
        hidden = tensor(p, "hidden_out");
        int tNow = (int) hidden.getInfo().getShape()[1];
        float[] changed = hook.afterLayer(layer, copy(hidden), tNow);
        if (changed != null) {
          if (changed.length == 0 || changed.length % cfg.hiddenSize() != 0) {
            throw new IllegalArgumentException("hook returned " + changed.length + " values after ViT layer " + layer
                + ", not a positive multiple of hidden size " + cfg.hiddenSize());
          }
          FloatBuffer hb = ByteBuffer.allocateDirect(changed.length * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
          hb.put(changed).rewind();
          hidden = chain.own(OnnxTensor.createTensor(GraphSession.environment(), hb, new long[] {1, changed.length / cfg.hiddenSize(), cfg.hiddenSize()}));
        }
        if (layer == n - 1) {
          OrtSession.Result f = chain.run(sessions.get("projector"), Map.of("hidden", hidden));
          return output(copy(tensor(f, "image_features")), cls, tokensPerLayer, start);
        }
        OrtSession.Result q = chain.run(sessions.get("pre_" + (layer + 1)), Map.of("hidden", hidden));
        qkv = new OnnxTensor[] {tensor(q, "q"), tensor(q, "k"), tensor(q, "v")};
        chain.keepOnly(q, changed != null ? hidden : p);
      }
      throw new IllegalStateException("unreachable");
    } catch (OrtException e) {
      throw new RunnerException("cannot create a vision input tensor: " + e.getMessage(), e);
    } finally {
      chain.close();
    }
  }

  private VisionOutput output(float[] features, Map<Integer, float[]> cls, int[] tokensPerLayer, long start) {
    int dim = cfg.textHiddenSize();
    int tokens = features.length / dim;
    long flops = VisionFlops.total(cfg, tokensPerLayer, tokens);
    return new VisionOutput(features, tokens, dim, cls, tokensPerLayer, flops, (System.nanoTime() - start) / 1e6);
  }

  private static OnnxTensor tensor(OrtSession.Result r, String name) {
    OnnxValue v = r.get(name).orElseThrow(() -> new RunnerException("vision graph output " + name + " is missing"));
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
