package dev.tokenpress.runtime.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenpress.runtime.checkpoint.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/** Writes small random Llama / LLaVA-layout checkpoints (seeded) for runtime tests. */
public final class TinyCheckpoints {
    public static final int HIDDEN = 32;
    public static final int INTERMEDIATE = 48;
    public static final int LAYERS = 3;
    public static final int HEADS = 4;
    public static final int KV_HEADS = 2;
    public static final int HEAD_DIM = 8;
    public static final int VOCAB = 64;
    public static final int MAX_POS = 96;

    private TinyCheckpoints() {}

    /**
     * @param llava      LLaVA layout: {@code text_config} and {@code language_model.} weight names
     *                   (the names a LLaVA checkpoint of transformers &lt; 4.52 uses)
     * @param tied       tie_word_embeddings (no lm_head tensor)
     */
    public static Path write(Path dir, long seed, boolean llava, boolean tied) {
        SplittableRandom rnd = new SplittableRandom(seed);
        String dec = llava ? "language_model.model." : "model.";
        String head = llava ? "language_model.lm_head.weight" : "lm_head.weight";
        int q = HEADS * HEAD_DIM;
        int kv = KV_HEADS * HEAD_DIM;
        SafetensorsWriter w = new SafetensorsWriter();
        w.add(dec + "embed_tokens.weight", gaussian(rnd, VOCAB * HIDDEN, 1.0), VOCAB, HIDDEN);
        for (int l = 0; l < LAYERS; l++) {
            String p = dec + "layers." + l + ".";
            w.add(p + "input_layernorm.weight", around1(rnd, HIDDEN), HIDDEN);
            w.add(p + "self_attn.q_proj.weight", gaussian(rnd, q * HIDDEN, 0.3), q, HIDDEN);
            w.add(p + "self_attn.k_proj.weight", gaussian(rnd, kv * HIDDEN, 0.3), kv, HIDDEN);
            w.add(p + "self_attn.v_proj.weight", gaussian(rnd, kv * HIDDEN, 0.3), kv, HIDDEN);
            w.add(p + "self_attn.o_proj.weight", gaussian(rnd, HIDDEN * q, 0.2), HIDDEN, q);
            w.add(p + "post_attention_layernorm.weight", around1(rnd, HIDDEN), HIDDEN);
            w.add(p + "mlp.gate_proj.weight", gaussian(rnd, INTERMEDIATE * HIDDEN, 0.2), INTERMEDIATE, HIDDEN);
            w.add(p + "mlp.up_proj.weight", gaussian(rnd, INTERMEDIATE * HIDDEN, 0.2), INTERMEDIATE, HIDDEN);
            w.add(p + "mlp.down_proj.weight", gaussian(rnd, HIDDEN * INTERMEDIATE, 0.2), HIDDEN, INTERMEDIATE);
        }
        w.add(dec + "norm.weight", around1(rnd, HIDDEN), HIDDEN);
        if (!tied) {
            w.add(head, gaussian(rnd, VOCAB * HIDDEN, 0.3), VOCAB, HIDDEN);
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode text = json.createObjectNode();
        text.put("model_type", "llama");
        text.put("hidden_size", HIDDEN);
        text.put("intermediate_size", INTERMEDIATE);
        text.put("num_hidden_layers", LAYERS);
        text.put("num_attention_heads", HEADS);
        text.put("num_key_value_heads", KV_HEADS);
        text.put("vocab_size", VOCAB);
        text.put("max_position_embeddings", MAX_POS);
        text.put("rms_norm_eps", 1e-5);
        text.put("rope_theta", 10000.0);
        text.put("bos_token_id", 1);
        text.put("eos_token_id", 2);
        ObjectNode cfg;
        if (llava) {
            cfg = json.createObjectNode();
            cfg.put("model_type", "llava");
            cfg.putArray("architectures").add("LlavaForConditionalGeneration");
            cfg.set("text_config", text);
            cfg.put("tie_word_embeddings", tied);
            cfg.put("image_token_index", 63);
        } else {
            cfg = text;
            cfg.put("tie_word_embeddings", tied);
        }
        try {
            Files.createDirectories(dir);
            w.write(dir.resolve("model.safetensors"));
            json.writeValue(dir.resolve("config.json").toFile(), cfg);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    private static float[] gaussian(SplittableRandom rnd, int n, double std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (nextGaussian(rnd) * std);
        }
        return a;
    }

    private static float[] around1(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (1 + 0.1 * nextGaussian(rnd));
        }
        return a;
    }

    private static double nextGaussian(SplittableRandom rnd) {
        double u = rnd.nextDouble();
        double v = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }
}
