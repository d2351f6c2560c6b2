package dev.tokenpress.runtime.vision;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tokenpress.runtime.media.PixelValues;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Runs the split vision graphs of {@link VisionGraphs} with ONNX Runtime: patch embedding, per
 * layer pre-attention → attention → post-attention, projector. Intermediate tensors stay inside
 * ONNX Runtime (an output {@code OnnxTensor} feeds the next graph directly); only the final
 * features, and the q/k rows a {@link VisionHook} asks for, are copied to Java.
 *
 * <p>Without a hook, graphs are cut between attentions ({@code embed_pre0}, {@code post_pre_i},
 * {@code post_projector}): {@code 1 + 2L} calls for L layers. A layer whose token stream a hook
 * may change runs {@code post_i} and {@code pre_{i+1}} separately around the hook.
 *
 * <p>Thread-safe: sessions are shared, each call owns its tensors. Close once, after all calls.
 */
public final class VisionEncoder implements AutoCloseable {
  private static final String[] QKV = {"q", "k", "v"};

  private final VisionConfig cfg;
  private final OrtEnvironment env;
  private final OrtSession.SessionOptions options;
  private final Map<String, OrtSession> sessions;

  private VisionEncoder(VisionConfig cfg, OrtEnvironment env, OrtSession.SessionOptions options,
      Map<String, OrtSession> sessions) {
    this.cfg = cfg;
    this.env = env;
    this.options = options;
    this.sessions = sessions;
  }

  /** Builds the graphs in memory (small models and tests). */
  public static VisionEncoder create(VisionGraphs graphs, int intraOpThreads) {
    Map<String, byte[]> bytes = new LinkedHashMap<>();
    graphs.splitGraphs().forEach((k, v) -> bytes.put(k, v.toByteArray()));
    return open(graphs.config(), intraOpThreads, name -> bytes.get(name), null);
  }

  /** Loads {@code <stem>.onnx} graphs written by {@link VisionGraphs#writeTo(Path)}, by path. */
  public static VisionEncoder load(Path dir, VisionConfig cfg, int intraOpThreads) {
    return open(cfg, intraOpThreads, null, dir);
  }

  private interface Source {
    byte[] get(String name);
  }

  private static VisionEncoder open(VisionConfig cfg, int threads, Source bytes, Path dir) {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions opts = sessionOptions(threads);
    Map<String, OrtSession> sessions = new HashMap<>();
    String current = null;
    try {
      int n = cfg.layersRun();
      java.util.List<String> names = new java.util.ArrayList<>(java.util.List.of("embed", "attention", "attention_bias", "projector"));
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
      for (String name : names) {
        current = name;
        if (dir != null) {
          Path f = dir.resolve(name + ".onnx");
          if (!Files.isRegularFile(f)) {
            throw new IllegalArgumentException("vision graph " + f + " is missing");
          }
          sessions.put(name, env.createSession(f.toString(), opts));
        } else {
          sessions.put(name, env.createSession(bytes.get(name), opts));
        }
      }
      return new VisionEncoder(cfg, env, opts, sessions);
    } catch (OrtException | RuntimeException e) {
      for (OrtSession s : sessions.values()) {
        closeQuietly(s);
      }
      opts.close();
      throw new IllegalStateException("Failed to load vision graph " + current, e);
    }
  }

  static OrtSession.SessionOptions sessionOptions(int threads) {
    OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
    try {
      opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      opts.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
      opts.setIntraOpNumThreads(Math.max(1, threads));
      opts.setInterOpNumThreads(1);
      return opts;
    } catch (OrtException e) {
      opts.close();
      throw new IllegalStateException("Failed to configure ONNX Runtime session options", e);
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
      OnnxTensor pixelTensor = chain.own(OnnxTensor.createTensor(env, px, pixels.batchShape()));
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
          hidden = chain.own(OnnxTensor.createTensor(env, hb, new long[] {1, changed.length / cfg.hiddenSize(), cfg.hiddenSize()}));
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
      throw new IllegalStateException("Failed to execute the vision graphs", e);
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
    OnnxValue v = r.get(name).orElseThrow(() -> new IllegalStateException("graph output " + name + " is missing"));
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
    for (OrtSession s : sessions.values()) {
      closeQuietly(s);
    }
    sessions.clear();
    options.close();
  }

  private static void closeQuietly(OrtSession s) {
    try {
      s.close();
    } catch (OrtException e) {
      // nothing useful to do while closing
    }
  }

  /** Owns every Result/tensor of one encode call; all are closed at the end of the call. */
  private static final class Chain implements AutoCloseable {
    private final java.util.ArrayList<AutoCloseable> owned = new java.util.ArrayList<>();

    OnnxTensor own(OnnxTensor t) {
      owned.add(t);
      return t;
    }

    OrtSession.Result run(OrtSession s, Map<String, OnnxTensor> inputs) throws OrtException {
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
