package dev.tokenpress.runtime.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
  @TempDir Path tmp;

  /** A file written byte by byte as the format describes (not with our writer). */
  private static void writeRaw(Path p, String header, byte[] data) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h).put(data);
    Files.write(p, b.array());
  }

  @Test
  void readsF16AndBf16AsFloat() throws IOException {
    // 1.5 = 0x3e00 (f16) = 0x3fc0 (bf16); -2 = 0xc000 (f16) = 0xc000 (bf16); 0.1 ~ 0x2e66 (f16) =
    // 0x3dcd (bf16)
    ByteBuffer d = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
    d.putShort((short) 0x3e00).putShort((short) 0xc000).putShort((short) 0x2e66);
    d.putShort((short) 0x3fc0).putShort((short) 0xc000).putShort((short) 0x3dcd);
    Path p = tmp.resolve("half.safetensors");
    writeRaw(
        p,
        "{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[6,12]},\"__metadata__\":{\"format\":\"pt\"}}",
        d.array());
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertThat(f.readFloats("a")).containsExactly(1.5f, -2f, 0.0999755859375f);
      assertThat(f.readFloats("b")).containsExactly(1.5f, -2f, 0.10009765625f);
      assertThat(f.metadata()).containsEntry("format", "pt");
    }
  }

  @Test
  void writerRoundTripsAndReadsRanges() {
    float[] w = new float[24];
    for (int i = 0; i < w.length; i++) {
      w[i] = i * 0.5f - 3;
    }
    Path p = tmp.resolve("w.safetensors");
    new SafetensorsWriter().add("w", w, 4, 6).add("s", new float[] {7f}).write(p);
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertThat(f.entry("w").shape()).containsExactly(4, 6);
      assertThat(f.readFloats("w")).containsExactly(w);
      float[] row = new float[6];
      f.readFloats("w", 12, row, 0, 6);
      assertThat(row).containsExactly(Arrays.copyOfRange(w, 12, 18));
      assertThat(f.entry("s").rank()).isZero();
      assertThat(f.readFloats("s")).containsExactly(7f);
    }
  }

  @Test
  void shardedCheckpointsResolveThroughTheIndex() throws IOException {
    new SafetensorsWriter()
        .add("x.a", new float[] {1, 2}, 2)
        .write(tmp.resolve("model-00001-of-00002.safetensors"));
    new SafetensorsWriter()
        .add("x.b", new float[] {3}, 1)
        .write(tmp.resolve("model-00002-of-00002.safetensors"));
    Files.writeString(
        tmp.resolve("model.safetensors.index.json"),
        "{\"metadata\":{},\"weight_map\":{"
            + "\"x.a\":\"model-00001-of-00002.safetensors\",\"x.b\":\"model-00002-of-00002.safetensors\"}}");
    try (TensorStore s = TensorStore.open(tmp)) {
      assertThat(s.names()).containsExactly("x.a", "x.b");
      assertThat(s.floats("x.b")).containsExactly(3f);
      assertThatThrownBy(() -> s.floats("x.c")).hasMessageContaining("x.c");
    }
  }

  @Test
  void truncatedAndUnsupportedFilesFailWithTheName() throws IOException {
    Path p = tmp.resolve("t.safetensors");
    new SafetensorsWriter().add("w", new float[100], 100).write(p);
    byte[] all = Files.readAllBytes(p);
    Files.write(p, Arrays.copyOf(all, all.length - 10));
    assertThatThrownBy(() -> SafetensorsFile.open(p))
        .hasMessageContaining("truncated")
        .hasMessageContaining("w");
    Path q = tmp.resolve("i.safetensors");
    writeRaw(q, "{\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]);
    assertThatThrownBy(() -> SafetensorsFile.open(q))
        .hasMessageContaining("I64")
        .hasMessageContaining("i");
  }
}
