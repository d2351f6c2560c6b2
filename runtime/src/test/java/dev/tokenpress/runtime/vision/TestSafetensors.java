package dev.tokenpress.runtime.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/** A tiny F32-only safetensors reader for test resources. */
final class TestSafetensors implements WeightSource {
  private final Map<String, float[]> data = new HashMap<>();
  private final Map<String, long[]> shapes = new HashMap<>();

  static TestSafetensors resource(String path) {
    try (InputStream in = TestSafetensors.class.getResourceAsStream(path)) {
      if (in == null) {
        throw new IllegalStateException("missing test resource " + path);
      }
      return new TestSafetensors(in.readAllBytes());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static JsonNode json(String path) {
    try (InputStream in = TestSafetensors.class.getResourceAsStream(path)) {
      return new ObjectMapper().readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private TestSafetensors(byte[] bytes) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    int n = (int) b.getLong(0);
    JsonNode header = new ObjectMapper().readTree(new String(bytes, 8, n, StandardCharsets.UTF_8));
    header
        .fields()
        .forEachRemaining(
            e -> {
              if (e.getKey().equals("__metadata__")) {
                return;
              }
              JsonNode t = e.getValue();
              long[] shape = new long[t.get("shape").size()];
              for (int i = 0; i < shape.length; i++) {
                shape[i] = t.get("shape").get(i).asLong();
              }
              int from = 8 + n + t.get("data_offsets").get(0).asInt();
              int to = 8 + n + t.get("data_offsets").get(1).asInt();
              float[] f = new float[(to - from) / 4];
              b.duplicate()
                  .order(ByteOrder.LITTLE_ENDIAN)
                  .position(from)
                  .limit(to)
                  .slice()
                  .order(ByteOrder.LITTLE_ENDIAN)
                  .asFloatBuffer()
                  .get(f);
              data.put(e.getKey(), f);
              shapes.put(e.getKey(), shape);
            });
  }

  @Override
  public float[] floats(String name) {
    float[] f = data.get(name);
    if (f == null) {
      throw new IllegalArgumentException("no tensor " + name);
    }
    return f.clone();
  }

  @Override
  public long[] shape(String name) {
    return shapes.get(name).clone();
  }

  @Override
  public boolean contains(String name) {
    return data.containsKey(name);
  }
}
