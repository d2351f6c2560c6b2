package dev.tokenpress.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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

  /**
   * A ZipVL-like layer: 4/2-bit mixed group over the first 30 entries, 3 trailing fp16 entries,
   * as {@link KvCacheReader} builds it from Parquet rows (chunks in stored form).
   */
  static KvLayer compressedLayer(boolean[] important) {
    SplittableRandom rnd = new SplittableRandom(8);
    KvLayout layout = new KvLayout(2, 8);
    int n = important.length + 3;
    float[] k = TokenpressFunctionsTest.random(rnd, n * layout.width());
    float[] v = TokenpressFunctionsTest.random(rnd, n * layout.width());
    int[] idx = new int[n];
    for (int i = 0; i < n; i++) {
      idx[i] = 2 * i;
    }
    LayerKvCache lc = new LayerKvCache(layout, KvCodec.of(KvPrecision.FP16));
    lc.appendRows(k, 0, v, 0, n, idx, idx, 0);
    lc.recodeMixed(0, important.length, important, MixedPrecisionEncoder.ZIPVL);
    List<KvStoredChunk> chunks = new ArrayList<>();
    for (KvChunk c : lc.chunks()) {
      chunks.add(new KvStoredChunk(c.entries(), c.k(), c.v()));
    }
    int imp = 0;
    for (boolean b : important) {
      imp += b ? 1 : 0;
    }
    KvCompressionInfo info = new KvCompressionInfo("zipvl", "sparse", 0.96, important.length, imp - 1, imp, 77L, 4, 2);
    int[] shape = {n, 2, 8};
    return new KvLayer(0, lc.keys(), shape, lc.values(), shape.clone(), idx, idx, info, lc.trailingFloatEntries(),
        chunks);
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
    KvLayer a = compressedLayer(important);
    assertThat(a.chunks()).hasSize(3); // int4 subset, int2 subset, fp16 tail
    Path file = tmp.resolve("zip.arrow");
    try (BufferAllocator root = new RootAllocator(64L << 20)) {
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
        KvArrowExport.write(new KvCache("z.png", 99, List.of(a)), ch, root, 4L << 20);
      }
      KvLayer b;
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        b = KvArrowExport.read(ch, root).layers().get(0);
      }
      assertThat(root.getAllocatedMemory()).isZero();
      assertThat(b.compression()).isEqualTo(a.compression());
      assertThat(b.trailingFloat()).isEqualTo(3);
      assertThat(b.importantEntries()).containsExactly(expectImportant.stream().mapToInt(Integer::intValue).toArray());
      assertThat(b.chunks()).hasSize(3);
      int w = 16;
      float[] k = new float[b.length() * w];
      float[] v = new float[b.length() * w];
      for (int c = 0; c < 3; c++) {
        KvStoredChunk x = a.chunks().get(c);
        KvStoredChunk y = b.chunks().get(c);
        assertThat(y.entries()).containsExactly(x.entries());
        assertThat(y.k().data()).containsExactly(x.k().data());
        assertThat(y.k().bits()).isEqualTo(x.k().bits());
        assertThat(y.k().dtype()).isEqualTo(x.k().dtype());
        assertThat(y.k().scales()).containsExactly(x.k().scales());
        assertThat(y.v().zeros()).containsExactly(x.v().zeros());
        assertThat(y.v().channelScales()).containsExactly(x.v().channelScales());
        float[] ck = y.k().dequantize();
        float[] cv = y.v().dequantize();
        int[] e = y.entries();
        for (int i = 0; i < e.length; i++) {
          System.arraycopy(ck, i * w, k, e[i] * w, w);
          System.arraycopy(cv, i * w, v, e[i] * w, w);
        }
      }
      // dequantising the exported chunks gives exactly the exported floats
      assertThat(k).containsExactly(b.k());
      assertThat(v).containsExactly(b.v());
      assertThat(b.k()).containsExactly(a.k());
    }
  }

  @Test
  void carriesPerKvHeadChunksAndCounts() throws IOException {
    LayerKvCache lc = TokenpressFunctionsTest.perHeadCache().layer(0);
    List<KvStoredChunk> chunks = new ArrayList<>();
    for (KvChunk c : lc.chunks()) {
      chunks.add(new KvStoredChunk(c.entries(), c.kvHead(), c.k(), c.v()));
    }
    int[] shape = {lc.length(), 3, 5};
    KvLayer a = new KvLayer(0, lc.keys(), shape, lc.values(), shape.clone(), lc.tokenIndices(), lc.positions(),
        lc.compressionInfo(), lc.trailingFloatEntries(), chunks);
    Path file = tmp.resolve("heads.arrow");
    try (BufferAllocator root = new RootAllocator(64L << 20)) {
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
        KvArrowExport.write(new KvCache("h.png", 9, List.of(a)), ch, root, 4L << 20);
      }
      KvLayer b;
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        b = KvArrowExport.read(ch, root).layers().get(0);
      }
      assertThat(root.getAllocatedMemory()).isZero();
      assertThat(b.compression()).isEqualTo(a.compression());
      assertThat(b.compression().heads()).isEqualTo("per_kv_head");
      assertThat(b.compression().headImportant()).containsExactly(3, 7, 2);
      assertThat(b.compression().headRatioCounts()).containsExactly(2, 7, 1);
      assertThat(b.chunks()).extracting(KvStoredChunk::kvHead).containsExactly(-1, 0, 0, 1, 2, 2, -1);
      // each stored chunk dequantises into its head's channels of the exported floats
      float[] k = new float[b.length() * 15];
      for (KvStoredChunk c : b.chunks()) {
        float[] ck = c.k().dequantize();
        int g0 = Math.max(c.kvHead(), 0);
        int cw = c.kvHead() < 0 ? 15 : 5;
        int[] e = c.entries();
        for (int i = 0; i < e.length; i++) {
          System.arraycopy(ck, i * cw, k, e[i] * 15 + g0 * 5, cw);
        }
      }
      assertThat(k).containsExactly(b.k());
      assertThat(b.k()).containsExactly(a.k());
      assertThat(b.importantEntries()).containsExactly(1, 2, 3, 4, 5, 6, 7);
    }
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
