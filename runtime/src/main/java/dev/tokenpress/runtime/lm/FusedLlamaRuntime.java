package dev.tokenpress.runtime.lm;

import static dev.tokenpress.runtime.lm.LmGraphNames.ATTENTION_BIAS;
import static dev.tokenpress.runtime.lm.LmGraphNames.INPUTS_EMBEDS;
import static dev.tokenpress.runtime.lm.LmGraphNames.LOGITS;
import static dev.tokenpress.runtime.lm.LmGraphNames.POSITION_IDS;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.tokenpress.runtime.RunnerException;
import dev.tokenpress.runtime.bundle.Bundle;
import dev.tokenpress.runtime.bundle.BundleException;
import dev.tokenpress.runtime.bundle.LmSpec;
import dev.tokenpress.runtime.onnx.DirectTensor;
import dev.tokenpress.runtime.onnx.GraphSession;
import dev.tokenpress.runtime.onnx.SessionConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Greedy generation on the conventional fused decoder ({@code lm/decoder_fused.onnx}, built with
 * {@code --fused}): one ORT call per token, the KV cache living in ORT tensors that are fed from
 * {@code present_*} straight back as {@code past_*} (the previous result stays open until the next
 * call returns). No hooks: this is the baseline the split runtime is compared against.
 */
public final class FusedLlamaRuntime implements AutoCloseable {
  private static final float MASKED = -1e9f;

  private final LmSpec spec;
  private final TokenEmbedding embedding;
  private final GraphSession session;

  private FusedLlamaRuntime(LmSpec spec, TokenEmbedding embedding, GraphSession session) {
    this.spec = spec;
    this.embedding = embedding;
    this.session = session;
  }

  public static FusedLlamaRuntime open(Bundle bundle, SessionConfig config) {
    LmSpec spec = bundle.lm();
    if (spec.graphs().fused() == null) {
      throw new BundleException(
          "bundle " + bundle.directory() + " has no fused decoder; rebuild it with --fused");
    }
    TokenEmbedding emb =
        new TokenEmbedding(bundle.resolve(spec.embedding()), spec.embeddingTensor());
    try {
      return new FusedLlamaRuntime(
          spec, emb, GraphSession.open(bundle.resolve(spec.graphs().fused()), config));
    } catch (RuntimeException e) {
      emb.close();
      throw e;
    }
  }

  public LmSpec spec() {
    return spec;
  }

  public TokenEmbedding embedding() {
    return embedding;
  }

  public GenerationResult generate(LmRequest req) {
    int t = req.rows();
    int d = spec.hiddenSize();
    int vocab = spec.vocabSize();
    int layers = spec.numLayers();
    int maxPos = spec.maxPositionEmbeddings();
    // zero bias for decode steps: one direct buffer, a prefix view per step
    FloatBuffer zeros =
        ByteBuffer.allocateDirect(4 * (maxPos + t + 1))
            .order(ByteOrder.nativeOrder())
            .asFloatBuffer();
    List<float[]> recorded = req.recordLogits() ? new ArrayList<>() : null;
    List<DirectTensor> owned = new ArrayList<>();
    OrtSession.Result prev = null;
    long[] prefillFlops = new long[layers];
    long decodeFlops = 0;
    try {
      DirectTensor x = own(owned, DirectTensor.floats(1, t, d));
      x.put(req.inputEmbedsShared(), 0, t * d);
      DirectTensor pos = own(owned, DirectTensor.longs(1, t));
      int lastPos = 0;
      for (int i = 0; i < t; i++) {
        pos.setLong(i, req.positionsShared()[i]);
        lastPos = Math.max(lastPos, req.positionsShared()[i]);
      }
      if (lastPos >= maxPos) {
        throw new IllegalArgumentException(
            "prompt reaches position "
                + lastPos
                + ", beyond the model's context of "
                + maxPos
                + " positions");
      }
      DirectTensor bias = own(owned, DirectTensor.floats(1, 1, t, t));
      float[] b = new float[t * t];
      for (int i = 0; i < t; i++) {
        for (int j = i + 1; j < t; j++) {
          b[i * t + j] = MASKED;
        }
      }
      bias.put(b, 0, b.length);
      Map<String, OnnxTensorLike> in = new HashMap<>();
      in.put(INPUTS_EMBEDS, x.tensor());
      in.put(POSITION_IDS, pos.tensor());
      in.put(ATTENTION_BIAS, bias.tensor());
      for (int l = 0; l < layers; l++) {
        in.put(
            LmGraphNames.pastKey(l),
            own(owned, DirectTensor.floats(1, spec.numKvHeads(), 0, spec.headDim())).tensor());
        in.put(
            LmGraphNames.pastValue(l),
            own(owned, DirectTensor.floats(1, spec.numKvHeads(), 0, spec.headDim())).tensor());
        prefillFlops[l] = LmFlops.layer(spec, t, t);
      }
      long t0 = System.nanoTime();
      prev = session.run(in);
      float[] logits = lastRow(prev, t, vocab);
      long prefillNanos = System.nanoTime() - t0;

      DirectTensor x1 = own(owned, DirectTensor.floats(1, 1, d));
      DirectTensor pos1 = own(owned, DirectTensor.longs(1, 1));
      float[] emb = new float[d];
      int[] out = new int[req.maxNewTokens()];
      int n = 0;
      int steps = 0;
      int past = t;
      int nextPos = lastPos + 1;
      StopReason reason = StopReason.MAX_NEW_TOKENS;
      long t1 = System.nanoTime();
      while (n < req.maxNewTokens()) {
        if (recorded != null) {
          recorded.add(logits.clone());
        }
        int next = Greedy.argmax(logits);
        if (req.isStop(next)) {
          reason = StopReason.STOP_TOKEN;
          break;
        }
        out[n++] = next;
        if (n == req.maxNewTokens()) {
          break;
        }
        if (nextPos >= maxPos) {
          reason = StopReason.CONTEXT_LIMIT;
          break;
        }
        embedding.lookup(next, emb, 0);
        x1.put(emb, 0, d);
        pos1.setLong(0, nextPos);
        FloatBuffer zb = zeros.duplicate();
        zb.limit(past + 1);
        try (OnnxTensor stepBias =
            OnnxTensor.createTensor(
                GraphSession.environment(), zb, new long[] {1, 1, 1, past + 1})) {
          Map<String, OnnxTensorLike> step = new HashMap<>();
          step.put(INPUTS_EMBEDS, x1.tensor());
          step.put(POSITION_IDS, pos1.tensor());
          step.put(ATTENTION_BIAS, stepBias);
          for (int l = 0; l < layers; l++) {
            step.put(LmGraphNames.pastKey(l), present(prev, LmGraphNames.presentKey(l)));
            step.put(LmGraphNames.pastValue(l), present(prev, LmGraphNames.presentValue(l)));
            decodeFlops += LmFlops.layer(spec, 1, past + 1);
          }
          OrtSession.Result r = session.run(step);
          prev.close();
          prev = r;
        } catch (OrtException e) {
          throw new RunnerException("cannot create the attention bias tensor", e);
        }
        decodeFlops += LmFlops.head(spec, 1);
        logits = lastRow(prev, 1, vocab);
        past++;
        nextPos++;
        steps++;
      }
      long decodeNanos = System.nanoTime() - t1;
      return new GenerationResult(
          java.util.Arrays.copyOf(out, n),
          reason,
          t,
          new LmFlops(prefillFlops, LmFlops.head(spec, t), decodeFlops, steps),
          new StageTimings(prefillNanos, decodeNanos, steps, decodeNanos, 0),
          null,
          recorded);
    } finally {
      if (prev != null) {
        prev.close();
      }
      for (DirectTensor dt : owned) {
        dt.close();
      }
    }
  }

  private static DirectTensor own(List<DirectTensor> owned, DirectTensor t) {
    owned.add(t);
    return t;
  }

  private static OnnxTensor present(OrtSession.Result r, String name) {
    return (OnnxTensor)
        r.get(name).orElseThrow(() -> new RunnerException("fused decoder has no output " + name));
  }

  private static float[] lastRow(OrtSession.Result r, int rows, int vocab) {
    FloatBuffer fb = present(r, LOGITS).getFloatBuffer();
    float[] out = new float[vocab];
    fb.position((rows - 1) * vocab);
    fb.get(out);
    return out;
  }

  @Override
  public void close() {
    session.close();
    embedding.close();
  }
}
