package dev.tokenpress.operators.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.kernels.DecodeAttention;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link LayerKvCache#fromChunks} / {@link KvCache#fromChunks}: a layer rebuilt from its exported
 * chunks is the same cache (no re-quantisation) for every stored form.
 */
class KvChunkRoundTripTest {
  private static final KvLayout LAYOUT = new KvLayout(3, 6);
  private static final int W = LAYOUT.width();
  private static final KvCompressionInfo INFO =
      new KvCompressionInfo("zipvl", "sparse", 0.9, 20, 5, 6, 3L, 4, 2);

  private static float[] gaussian(SplittableRandom rnd, int n) {
    float[] f = new float[n];
    for (int i = 0; i < n; i++) {
      f[i] = (float) rnd.nextGaussian();
    }
    return f;
  }

  /**
   * {@code n} entries appended with {@code append}, token index {@code 3i + 1}, position {@code i}.
   */
  private static LayerKvCache filled(long seed, int n, KvPrecision append) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int[] tok = new int[n];
    int[] pos = new int[n];
    for (int i = 0; i < n; i++) {
      tok[i] = 3 * i + 1;
      pos[i] = i;
    }
    LayerKvCache c = new LayerKvCache(LAYOUT, KvCodec.of(append));
    c.appendRows(gaussian(rnd, n * W), 0, gaussian(rnd, n * W), 0, n, tok, pos, 0);
    return c;
  }

  private static boolean[] mask(int n, int seed) {
    boolean[] m = new boolean[n];
    for (int i = 0; i < n; i++) {
      m[i] = (i * 7 + seed) % 5 == 0;
    }
    return m;
  }

  /**
   * Every stored form, each ending (apart from the float-only ones) in a trailing fp16 or fp32 run.
   */
  private static List<LayerKvCache> layers() {
    List<LayerKvCache> out = new ArrayList<>();
    out.add(filled(1, 9, KvPrecision.FP32));
    out.add(filled(2, 9, KvPrecision.FP16));
    for (KvPrecision p : new KvPrecision[] {KvPrecision.INT8, KvPrecision.INT4, KvPrecision.INT2}) {
      LayerKvCache c = filled(3 + p.bits(), 20, KvPrecision.FP16);
      c.recode(0, 17, KvCodec.of(p)); // int group, 3 trailing fp16
      out.add(c);
    }
    LayerKvCache mixed = filled(20, 24, KvPrecision.FP16);
    mixed.recodeMixed(
        0, 20, mask(20, 1), MixedPrecisionEncoder.ZIPVL); // interleaved int4/int2, 4 trailing
    mixed.setCompressionInfo(INFO);
    out.add(mixed);
    LayerKvCache prefix = filled(21, 12, KvPrecision.FP32);
    boolean[] first = new boolean[10];
    first[0] =
        first[1] = first[2] = true; // high chunk = a prefix of the group: entries do not interleave
    prefix.recodeMixed(0, 10, first, new MixedPrecisionEncoder(8, 4));
    out.add(prefix);
    LayerKvCache lowFirst = filled(22, 12, KvPrecision.FP16);
    boolean[] last = new boolean[10];
    last[8] = last[9] = true; // high chunk = the group's last entries
    lowFirst.recodeMixed(0, 10, last, MixedPrecisionEncoder.ZIPVL);
    out.add(lowFirst);
    LayerKvCache heads = filled(23, 30, KvPrecision.FP16);
    heads.recode(0, 2, KvCodec.of(KvPrecision.INT8));
    boolean[] all = new boolean[10];
    java.util.Arrays.fill(all, true);
    heads.recodeMixedPerHead(
        2, 12, new boolean[][] {mask(10, 0), all, mask(10, 3)}, MixedPrecisionEncoder.ZIPVL);
    heads.recodeMixedPerHead(
        12,
        20,
        new boolean[][] {new boolean[8], mask(8, 2), mask(8, 4)},
        MixedPrecisionEncoder.ZIPVL); // a second per-head group right after the first
    heads.recodeMixed(20, 27, mask(7, 2), MixedPrecisionEncoder.ZIPVL);
    heads.setCompressionInfo(
        new KvCompressionInfo(
            "zipvl",
            "sparse",
            0.9,
            27,
            9,
            10,
            4L,
            4,
            2,
            KvCompressionInfo.HEADS_PER_KV_HEAD,
            new int[] {2, 9, 3},
            new int[] {2, 10, 3}));
    out.add(heads);
    LayerKvCache evicted = filled(24, 26, KvPrecision.FP16);
    evicted.recodeMixed(0, 22, mask(22, 2), MixedPrecisionEncoder.ZIPVL);
    evicted.retain(new int[] {0, 1, 3, 4, 5, 8, 9, 13, 17, 20, 21, 22, 25});
    out.add(evicted);
    return out;
  }

  private static void assertSame(LayerKvCache a, LayerKvCache b, String what) {
    assertThat(b.length()).as(what).isEqualTo(a.length());
    assertThat(b.keys()).as(what).containsExactly(a.keys());
    assertThat(b.values()).as(what).containsExactly(a.values());
    assertThat(b.tokenIndices()).as(what).containsExactly(a.tokenIndices());
    assertThat(b.positions()).as(what).containsExactly(a.positions());
    assertThat(b.precisions()).as(what).containsExactly(a.precisions());
    assertThat(b.storedBytes()).as(what).isEqualTo(a.storedBytes());
    assertThat(b.trailingFloatEntries()).as(what).isEqualTo(a.trailingFloatEntries());
    assertThat(b.compressionInfo()).as(what).isEqualTo(a.compressionInfo());
    assertThat(b.importantEntries()).as(what).isEqualTo(a.importantEntries());
    assertThat(b.chunks()).as(what).containsExactlyElementsOf(a.chunks());
    assertThat(b.chunkCount()).as(what).isEqualTo(a.chunkCount());
  }

  @Test
  void everyStoredFormRebuildsTheSameCacheAndDecodeAttentionOverIt() {
    DecodeAttention att = new DecodeAttention();
    SplittableRandom rnd = new SplittableRandom(99);
    int heads = 6; // two query heads per KV head
    float scale = (float) (1 / Math.sqrt(LAYOUT.headDim()));
    List<LayerKvCache> layers = layers();
    for (int i = 0; i < layers.size(); i++) {
      LayerKvCache a = layers.get(i);
      String what = "layer form " + i + " " + a.segments();
      LayerKvCache b =
          LayerKvCache.fromChunks(LAYOUT, a.appendCodec(), a.chunks(), a.compressionInfo());
      assertSame(a, b, what);
      float[] q = gaussian(rnd, heads * LAYOUT.headDim());
      float[] outA = new float[q.length];
      float[] outB = new float[q.length];
      float[] probsA = new float[heads * a.length()];
      float[] probsB = new float[heads * a.length()];
      att.attend(q, 0, a, heads, scale, null, outA, 0, probsA);
      att.attend(q, 0, b, heads, scale, null, outB, 0, probsB);
      assertThat(outB).as(what).containsExactly(outA);
      assertThat(probsB).as(what).containsExactly(probsA);
      // decoding continues from the rebuilt cache as from the original
      float[] k = gaussian(rnd, W);
      float[] v = gaussian(rnd, W);
      a.append(k, 0, v, 0, 500, 40);
      b.append(k, 0, v, 0, 500, 40);
      assertSame(a, b, what + " after an append");
    }
    assertThat(layers.get(5).chunks())
        .extracting(KvChunk::precision)
        .containsExactly(KvPrecision.INT4, KvPrecision.INT2, KvPrecision.FP16);
    assertThat(layers.get(8).chunks())
        .extracting(KvChunk::kvHead)
        .containsExactly(-1, 0, 0, 1, 2, 2, 0, 1, 1, 2, 2, -1, -1, -1);
    assertThat(layers.get(8).importantEntries()).hasSizeGreaterThan(10);
  }

  @Test
  void aCacheRebuildsLayerByLayerWithItsLayoutAndDecodeState() {
    List<LayerKvCache> src = layers();
    LayerKvCache heads = src.get(8);
    List<List<KvChunk>> chunks = List.of(heads.chunks(), src.get(5).chunks());
    KvCache r =
        KvCache.fromChunks(
            KvCodec.of(KvPrecision.FP16),
            chunks,
            java.util.Arrays.asList(heads.compressionInfo(), null),
            31);
    assertThat(r.numLayers()).isEqualTo(2);
    assertThat(r.layout()).isEqualTo(LAYOUT);
    assertThat(r.nextPosition()).isEqualTo(31);
    assertThat(r.nextTokenIndex()).isEqualTo(3 * 29 + 2); // one past the largest stored token index
    assertSame(heads, r.layer(0), "layer 0");
    assertThat(r.layer(1).keys()).containsExactly(src.get(5).keys());
    assertThat(r.layer(1).compressionInfo()).isNull();
    assertThat(r.storedBytes()).isEqualTo(heads.storedBytes() + src.get(5).storedBytes());

    // a cache of per-KV-head chunks only: the head count comes from the largest kv_head
    LayerKvCache onlyHeads = filled(5, 4, KvPrecision.FP16);
    onlyHeads.recodeMixedPerHead(
        0, 4, new boolean[][] {mask(4, 0), mask(4, 1), mask(4, 2)}, MixedPrecisionEncoder.ZIPVL);
    KvCache h =
        KvCache.fromChunks(
            KvCodec.of(KvPrecision.FP32), List.of(onlyHeads.chunks(), List.of()), null, 4);
    assertThat(h.layout()).isEqualTo(LAYOUT);
    assertThat(h.layer(1).length()).isZero();
    assertThat(h.layer(0).values()).containsExactly(onlyHeads.values());
  }

  @Test
  void chunksThatDoNotFormTheLayerAreRejectedNamingLayerEntryAndHead() {
    LayerKvCache heads = layers().get(8);
    List<KvChunk> chunks = heads.chunks();
    List<KvChunk> missing = new ArrayList<>(chunks);
    missing.remove(3); // KV head 1 of the first per-head group
    assertThatThrownBy(
            () -> KvCache.fromChunks(heads.appendCodec(), List.of(chunks, missing), null, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("layer 1: entry 2 of KV head 1 is in no chunk");
    List<KvChunk> twice = new ArrayList<>(chunks);
    twice.add(chunks.get(4));
    assertThatThrownBy(() -> LayerKvCache.fromChunks(LAYOUT, heads.appendCodec(), twice, null))
        .hasMessageContaining("entry 3 of KV head 2 is stored in more than one chunk");
    List<KvChunk> swapped = new ArrayList<>(chunks);
    swapped.set(3, chunks.get(4));
    swapped.set(4, chunks.get(3));
    assertThatThrownBy(() -> LayerKvCache.fromChunks(LAYOUT, heads.appendCodec(), swapped, null))
        .hasMessageContaining(
            "entry 2 of KV head 1 is in no chunk of the per-KV-head group starting at entry 2");
    List<KvChunk> reordered = new ArrayList<>(chunks);
    reordered.add(0, reordered.remove(reordered.size() - 1)); // the fp16 tail first
    assertThatThrownBy(() -> LayerKvCache.fromChunks(LAYOUT, heads.appendCodec(), reordered, null))
        .hasMessageContaining("from entry 0 where the layer continues");
    assertThatThrownBy(
            () -> LayerKvCache.fromChunks(new KvLayout(3, 4), heads.appendCodec(), chunks, null))
        .hasMessageContaining(
            "has shape [2, 3, 6], the layer of KvLayout[numKvHeads=3, headDim=4] needs [2, 3, 4]");
    LayerKvCache mixed = layers().get(5);
    List<KvChunk> lowFirst = new ArrayList<>(mixed.chunks());
    lowFirst.add(0, lowFirst.remove(1));
    assertThatThrownBy(() -> LayerKvCache.fromChunks(LAYOUT, mixed.appendCodec(), lowFirst, null))
        .hasMessageContaining("the high-precision one first");
  }

  @Test
  void aStoredChunkIsCheckedAgainstItsPrecision() {
    KvChunk c = layers().get(2).chunks().get(0);
    assertThatThrownBy(
            () ->
                KvChunk.of(
                    c.entries(), c.tokenIndex(), c.position(), KvPrecision.INT4, c.k(), c.v(), -1))
        .hasMessageContaining("precision INT4 does not match the dtypes k uint8, v uint8");
    assertThatThrownBy(
            () ->
                KvChunk.of(
                    new int[] {0, 0}, new int[2], new int[2], c.precision(), c.k(), c.v(), -1))
        .hasMessageContaining("ascending");
    KvChunk same =
        KvChunk.of(c.entries(), c.tokenIndex(), c.position(), c.precision(), c.k(), c.v(), -1);
    assertThat(same).isEqualTo(c).hasSameHashCodeAs(c);
  }
}
