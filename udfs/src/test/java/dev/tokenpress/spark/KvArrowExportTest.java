package dev.tokenpress.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.kv.KvCache;
import dev.tokenpress.operators.kv.KvChunk;
import dev.tokenpress.operators.kv.KvCodec;
import dev.tokenpress.operators.kv.KvCompressionInfo;
import dev.tokenpress.operators.kv.KvLayout;
import dev.tokenpress.operators.kv.KvPrecision;
import dev.tokenpress.operators.kv.LayerKvCache;
import dev.tokenpress.operators.kv.MixedPrecisionEncoder;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.types.pojo.Field;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Arrow IPC export: canonical tensor type, exact round trip, allocator limit and no leaks. */
class KvArrowExportTest {
  @TempDir Path tmp;

  /** Two layers of an fp32 cache: 5 entries and 2 (token 1..3 dropped after layer 0). */
  static KvCache cache() {
    SplittableRandom rnd = new SplittableRandom(3);
    KvLayout layout = new KvLayout(2, 4);
    KvCache c = new KvCache(2, layout, KvCodec.of(KvPrecision.FP32));
    c.layer(0)
        .appendRows(
            TokenpressFunctionsTest.random(rnd, 5 * 8),
            0,
            TokenpressFunctionsTest.random(rnd, 5 * 8),
            0,
            5,
            new int[] {0, 1, 2, 3, 4},
            new int[] {0, 1, 2, 3, 4},
            0);
    c.layer(1)
        .appendRows(
            TokenpressFunctionsTest.random(rnd, 2 * 8),
            0,
            TokenpressFunctionsTest.random(rnd, 2 * 8),
            0,
            2,
            new int[] {0, 4},
            new int[] {0, 4},
            0);
    c.advance(5, 9);
    return c;
  }

  private KvArrowExport.Read roundTrip(String id, KvCache c, String file) throws IOException {
    Path path = tmp.resolve(file);
    try (BufferAllocator root = new RootAllocator(64L << 20)) {
      try (FileChannel ch =
          FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
        KvArrowExport.write(id, c, ch, root, 4L << 20);
      }
      assertThat(root.getAllocatedMemory()).isZero();
      KvArrowExport.Read back;
      try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
        back = KvArrowExport.read(ch, root);
      }
      assertThat(root.getAllocatedMemory()).isZero();
      return back;
    } // RootAllocator.close() throws if any buffer leaked
  }

  /**
   * The same cache: floats, bookkeeping, precisions, stored bytes and chunks, compression, trailing
   * float.
   */
  static void assertSameCache(KvCache b, KvCache a) {
    assertThat(b.numLayers()).isEqualTo(a.numLayers());
    assertThat(b.layout()).isEqualTo(a.layout());
    assertThat(b.nextPosition()).isEqualTo(a.nextPosition());
    assertThat(b.storedBytes()).isEqualTo(a.storedBytes());
    for (int l = 0; l < a.numLayers(); l++) {
      LayerKvCache x = a.layer(l);
      LayerKvCache y = b.layer(l);
      assertThat(y.keys()).as("layer %d", l).containsExactly(x.keys());
      assertThat(y.values()).as("layer %d", l).containsExactly(x.values());
      assertThat(y.tokenIndices()).as("layer %d", l).containsExactly(x.tokenIndices());
      assertThat(y.positions()).as("layer %d", l).containsExactly(x.positions());
      assertThat(y.precisions()).as("layer %d", l).containsExactly(x.precisions());
      assertThat(y.chunks()).as("layer %d", l).containsExactlyElementsOf(x.chunks());
      assertThat(y.compressionInfo()).as("layer %d", l).isEqualTo(x.compressionInfo());
      assertThat(y.trailingFloatEntries()).as("layer %d", l).isEqualTo(x.trailingFloatEntries());
    }
  }

  @Test
  void roundTripsExactlyWithTheCanonicalTensorTypeAndReleasesEveryBuffer() throws IOException {
    KvCache c = cache();
    KvArrowExport.Read back = roundTrip("img-1.png", c, "kv.arrow");
    assertThat(back.id()).isEqualTo("img-1.png");
    assertThat(back.cache().nextPosition()).isEqualTo(9);
    assertThat(back.cache().nextTokenIndex()).isEqualTo(5);
    assertSameCache(back.cache(), c);
    // The IPC schema carries the canonical extension name and metadata on k and v.
    VariableShapeTensorType.register();
    try (BufferAllocator root = new RootAllocator(64L << 20);
        FileChannel ch = FileChannel.open(tmp.resolve("kv.arrow"), StandardOpenOption.READ);
        ArrowFileReader r = new ArrowFileReader(ch, root)) {
      Field k = r.getVectorSchemaRoot().getSchema().findField("k");
      assertThat(k.getType()).isInstanceOf(VariableShapeTensorType.class);
      assertThat(((VariableShapeTensorType) k.getType()).dimNames())
          .containsExactly("T", "H_kv", "D");
      assertThat(k.getChildren()).extracting(Field::getName).containsExactly("data", "shape");
      assertThat(r.loadNextBatch()).isTrue();
      assertThat(((ListVector) r.getVectorSchemaRoot().getVector("chunks")).getObject(1))
          .hasSize(1);
    }
  }

  /**
   * A ZipVL-like cache of one layer: 4/2-bit mixed group over the first 30 entries, 3 trailing fp16
   * entries.
   */
  static KvCache compressedCache(boolean[] important) {
    SplittableRandom rnd = new SplittableRandom(8);
    KvLayout layout = new KvLayout(2, 8);
    int n = important.length + 3;
    int[] idx = new int[n];
    for (int i = 0; i < n; i++) {
      idx[i] = 2 * i;
    }
    KvCache c = new KvCache(1, layout, KvCodec.of(KvPrecision.FP16));
    LayerKvCache lc = c.layer(0);
    lc.appendRows(
        TokenpressFunctionsTest.random(rnd, n * layout.width()),
        0,
        TokenpressFunctionsTest.random(rnd, n * layout.width()),
        0,
        n,
        idx,
        idx,
        0);
    lc.recodeMixed(0, important.length, important, MixedPrecisionEncoder.ZIPVL);
    int imp = 0;
    for (boolean b : important) {
      imp += b ? 1 : 0;
    }
    lc.setCompressionInfo(
        new KvCompressionInfo("zipvl", "sparse", 0.96, important.length, imp - 1, imp, 77L, 4, 2));
    c.advance(2 * n, 99);
    return c;
  }

  @Test
  void carriesTheCompressionMetadataSoConsumersCanDequantiseTheStoredChunks() throws IOException {
    boolean[] important = new boolean[30];
    List<Integer> expectImportant = new ArrayList<>();
    for (int i = 0; i < important.length; i++) {
      important[i] = i % 3 == 0 || i == 29;
      if (important[i]) {
        expectImportant.add(i);
      }
    }
    KvCache a = compressedCache(important);
    assertThat(a.layer(0).chunks()).hasSize(3); // int4 subset, int2 subset, fp16 tail
    KvCache back = roundTrip("z.png", a, "zip.arrow").cache();
    assertSameCache(back, a);
    assertThat(back.nextPosition()).isEqualTo(99);
    LayerKvCache b = back.layer(0);
    assertThat(b.compressionInfo().bitsHigh()).isEqualTo(4);
    assertThat(b.trailingFloatEntries()).isEqualTo(3);
    assertThat(b.importantEntries())
        .containsExactly(expectImportant.stream().mapToInt(Integer::intValue).toArray());
    assertThat(b.chunks())
        .extracting(c -> c.k().dtype())
        .containsExactly("uint4x2", "uint2x4", "float16");
    // dequantising the stored chunks (as a consumer of the chunks column does) gives exactly the
    // floats
    int w = 16;
    float[] k = new float[b.length() * w];
    float[] v = new float[b.length() * w];
    for (KvChunk y : b.chunks()) {
      float[] ck = y.k().dequantize();
      float[] cv = y.v().dequantize();
      int[] e = y.entries();
      for (int i = 0; i < e.length; i++) {
        System.arraycopy(ck, i * w, k, e[i] * w, w);
        System.arraycopy(cv, i * w, v, e[i] * w, w);
      }
    }
    assertThat(k).containsExactly(b.keys());
    assertThat(v).containsExactly(b.values());
  }

  @Test
  void carriesPerKvHeadChunksAndCounts() throws IOException {
    KvCache a = TokenpressFunctionsTest.perHeadCache();
    KvCache back = roundTrip("h.png", a, "heads.arrow").cache();
    assertSameCache(back, a);
    LayerKvCache b = back.layer(0);
    assertThat(b.compressionInfo().heads()).isEqualTo("per_kv_head");
    assertThat(b.compressionInfo().headImportant()).containsExactly(3, 7, 2);
    assertThat(b.compressionInfo().headRatioCounts()).containsExactly(2, 7, 1);
    assertThat(b.chunks()).extracting(KvChunk::kvHead).containsExactly(-1, 0, 0, 1, 2, 2, -1);
    // each stored chunk dequantises into its head's channels of the floats
    float[] k = new float[b.length() * 15];
    for (KvChunk c : b.chunks()) {
      float[] ck = c.k().dequantize();
      int g0 = Math.max(c.kvHead(), 0);
      int cw = c.kvHead() < 0 ? 15 : 5;
      int[] e = c.entries();
      for (int i = 0; i < e.length; i++) {
        System.arraycopy(ck, i * cw, k, e[i] * 15 + g0 * 5, cw);
      }
    }
    assertThat(k).containsExactly(b.keys());
    assertThat(b.importantEntries()).containsExactly(1, 2, 3, 4, 5, 6, 7);
  }

  @Test
  void overTheLimitFailsWithTheSizesAndLeaksNothing() throws IOException {
    try (BufferAllocator root = new RootAllocator(64L << 20);
        FileChannel ch =
            FileChannel.open(
                tmp.resolve("big.arrow"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      assertThatThrownBy(() -> KvArrowExport.write("img-1.png", cache(), ch, root, 256))
          .isInstanceOf(KvArrowExport.KvExportTooLargeException.class)
          .hasMessageContaining("img-1.png")
          .hasMessageContaining("limit of 256 bytes");
      assertThat(root.getAllocatedMemory()).isZero();
    }
  }
}
