package dev.tokenpress.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.types.pojo.Field;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Arrow IPC export: canonical tensor type, exact round trip, allocator limit and no leaks. */
class KvArrowExportTest {
  @TempDir Path tmp;

  static KvCache cache() {
    SplittableRandom rnd = new SplittableRandom(3);
    int h = 2;
    int d = 4;
    KvLayer l0 = new KvLayer(0, TokenpressFunctionsTest.random(rnd, h * 5 * d), new int[] {5, h, d},
        TokenpressFunctionsTest.random(rnd, h * 5 * d), new int[] {5, h, d}, new int[] {0, 1, 2, 3, 4},
        new int[] {0, 1, 2, 3, 4});
    KvLayer l1 = new KvLayer(1, TokenpressFunctionsTest.random(rnd, h * 2 * d), new int[] {2, h, d},
        TokenpressFunctionsTest.random(rnd, h * 2 * d), new int[] {2, h, d}, new int[] {0, 4}, new int[] {0, 4});
    return new KvCache("img-1.png", 9, List.of(l0, l1));
  }

  @Test
  void roundTripsExactlyWithTheCanonicalTensorTypeAndReleasesEveryBuffer() throws IOException {
    KvCache c = cache();
    Path file = tmp.resolve("kv.arrow");
    try (BufferAllocator root = new RootAllocator(64L << 20)) {
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
        KvArrowExport.write(c, ch, root, 1L << 20);
      }
      assertThat(root.getAllocatedMemory()).isZero();
      KvCache back;
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        back = KvArrowExport.read(ch, root);
      }
      assertThat(root.getAllocatedMemory()).isZero();
      assertThat(back.id()).isEqualTo("img-1.png");
      assertThat(back.nextPosition()).isEqualTo(9);
      assertThat(back.layers()).hasSize(2);
      for (int i = 0; i < 2; i++) {
        KvLayer a = c.layers().get(i);
        KvLayer b = back.layers().get(i);
        assertThat(b.layer()).isEqualTo(a.layer());
        assertThat(b.k()).containsExactly(a.k());
        assertThat(b.v()).containsExactly(a.v());
        assertThat(b.kShape()).containsExactly(a.kShape());
        assertThat(b.tokenIndex()).containsExactly(a.tokenIndex());
        assertThat(b.position()).containsExactly(a.position());
      }
      // The IPC schema carries the canonical extension name and metadata on k and v.
      VariableShapeTensorType.register();
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
          ArrowFileReader r = new ArrowFileReader(ch, root)) {
        Field k = r.getVectorSchemaRoot().getSchema().findField("k");
        assertThat(k.getType()).isInstanceOf(VariableShapeTensorType.class);
        assertThat(((VariableShapeTensorType) k.getType()).dimNames()).containsExactly("T", "H_kv", "D");
        assertThat(k.getChildren()).extracting(Field::getName).containsExactly("data", "shape");
      }
      assertThat(root.getAllocatedMemory()).isZero();
    } // RootAllocator.close() throws if any buffer leaked
  }

  @Test
  void overTheLimitFailsWithTheSizesAndLeaksNothing() throws IOException {
    try (BufferAllocator root = new RootAllocator(64L << 20);
        FileChannel ch = FileChannel.open(tmp.resolve("big.arrow"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      assertThatThrownBy(() -> KvArrowExport.write(cache(), ch, root, 256))
          .isInstanceOf(KvArrowExport.KvExportTooLargeException.class)
          .hasMessageContaining("img-1.png")
          .hasMessageContaining("limit of 256 bytes");
      assertThat(root.getAllocatedMemory()).isZero();
    }
  }
}
