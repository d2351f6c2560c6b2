package dev.tokenpress.operators.kv;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Rebuilds a layer's segments from its stored chunks ({@link LayerKvCache#chunks()} read back),
 * without re-quantising: an FP32 or FP16 chunk becomes a float segment of its stored floats or
 * halves, a ZipCache chunk a {@link QuantizedKvSegment} of its codes and metadata, two chunks whose
 * entries interleave a {@link MixedKvSegment} (high-precision chunk first), and a run of chunks
 * tagged with KV heads 0, 1, ... a {@link HeadSplitKvSegment}.
 *
 * <p>Chunks come in the order {@link LayerKvCache#chunks()} gives them (segment by segment, the
 * Parquet {@code chunk} column). Every (entry, KV head) pair must be in exactly one chunk, and each
 * segment's chunks must continue the layer where the previous segment ended.
 */
final class KvChunkAssembler {
  private KvChunkAssembler() {}

  /** The segments of a layer of {@code layout} stored as {@code chunks}, in entry order. */
  static List<KvSegment> segments(KvLayout layout, List<KvChunk> chunks) {
    checkCoverage(layout, chunks);
    int heads = layout.numKvHeads();
    KvLayout one = new KvLayout(1, layout.headDim());
    List<KvSegment> out = new ArrayList<>();
    int s = 0;
    int i = 0;
    while (i < chunks.size()) {
      KvChunk c = chunks.get(i);
      if (c.kvHead() < 0) {
        Run r = run(layout, chunks, i, s, false);
        out.add(r.segment);
        i += r.chunks;
        s += r.segment.rows();
        continue;
      }
      if (c.kvHead() != 0) {
        throw new IllegalArgumentException(
            "chunk "
                + i
                + " ("
                + c
                + ") starts a per-KV-head group at entry "
                + s
                + " with KV head "
                + c.kvHead()
                + "; a group's chunks come KV head 0 first");
      }
      KvSegment[] segs = new KvSegment[heads];
      for (int g = 0; g < heads; g++) {
        if (i >= chunks.size() || chunks.get(i).kvHead() != g) {
          throw new IllegalArgumentException(
              "entry "
                  + s
                  + " of KV head "
                  + g
                  + " is in no chunk of the"
                  + " per-KV-head group starting at entry "
                  + s
                  + (i < chunks.size()
                      ? " (chunk " + i + " holds KV head " + chunks.get(i).kvHead() + ")"
                      : ""));
        }
        Run r = run(one, chunks, i, s, heads > 1);
        if (g > 0 && r.segment.rows() != segs[0].rows()) {
          throw new IllegalArgumentException(
              "KV head "
                  + g
                  + " of the per-KV-head group at entry "
                  + s
                  + " holds "
                  + r.segment.rows()
                  + " entries, KV head 0 holds "
                  + segs[0].rows());
        }
        segs[g] = r.segment;
        i += r.chunks;
      }
      try {
        out.add(new HeadSplitKvSegment(layout, segs));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "per-KV-head group at entry " + s + ": " + e.getMessage(), e);
      }
      s += segs[0].rows();
    }
    return out;
  }

  /** A segment and how many chunks it took. */
  private record Run(KvSegment segment, int chunks) {}

  /**
   * The segment starting at chunk {@code i}, holding entries from {@code s}: one chunk of the
   * contiguous entries {@code [s, s + rows)}, or a mixed pair (chunk i at the high precision, chunk
   * i + 1 at the low one, same KV head) whose entries together are such a run. With {@code
   * pairBySameHead}, the chunk after is the pair's second whenever it has the same KV head (a
   * per-KV-head group gives one or two chunks per head); otherwise only when chunk i is not
   * contiguous from {@code s}.
   */
  private static Run run(
      KvLayout layout, List<KvChunk> chunks, int i, int s, boolean pairBySameHead) {
    KvChunk c = chunks.get(i);
    boolean sameHeadNext = i + 1 < chunks.size() && chunks.get(i + 1).kvHead() == c.kvHead();
    boolean pair =
        c.precision().quantized() && (pairBySameHead ? sameHeadNext : !contiguousFrom(c, s));
    if (!pair) {
      if (!contiguousFrom(c, s)) {
        throw new IllegalArgumentException(
            "chunk "
                + i
                + " ("
                + c
                + ") does not hold the contiguous entries"
                + " from entry "
                + s
                + " where the layer continues"
                + head(c));
      }
      return new Run(single(layout, c), 1);
    }
    if (!sameHeadNext) {
      throw new IllegalArgumentException(
          "chunk "
              + i
              + " ("
              + c
              + ") interleaves its entries but no chunk of the"
              + " same KV head follows to complete a mixed-precision group from entry "
              + s
              + head(c));
    }
    KvChunk d = chunks.get(i + 1);
    if (!c.precision().quantized()
        || !d.precision().quantized()
        || d.precision().bits() > c.precision().bits()) {
      throw new IllegalArgumentException(
          "chunks "
              + i
              + " ("
              + c
              + ") and "
              + (i + 1)
              + " ("
              + d
              + ") form a"
              + " mixed-precision group from entry "
              + s
              + head(c)
              + ": both must be ZipCache integer chunks,"
              + " the high-precision one first");
    }
    int n = c.rows() + d.rows();
    int[] ce = c.entries();
    int[] de = d.entries();
    boolean[] isHigh = new boolean[n];
    for (int e : ce) {
      if (e < s || e >= s + n) {
        throw new IllegalArgumentException(
            "entry "
                + e
                + " of chunk "
                + i
                + " is outside the mixed-precision"
                + " group ["
                + s
                + ", "
                + (s + n)
                + ")"
                + head(c));
      }
      isHigh[e - s] = true;
    }
    for (int e : de) {
      if (e < s || e >= s + n) {
        throw new IllegalArgumentException(
            "entry "
                + e
                + " of chunk "
                + (i + 1)
                + " is outside the"
                + " mixed-precision group ["
                + s
                + ", "
                + (s + n)
                + ")"
                + head(c));
      }
    }
    return new Run(
        new MixedKvSegment(
            layout,
            QuantizedKvSegment.ofChunk(layout, c),
            QuantizedKvSegment.ofChunk(layout, d),
            isHigh),
        2);
  }

  private static String head(KvChunk c) {
    return c.kvHead() < 0 ? "" : " of KV head " + c.kvHead();
  }

  private static boolean contiguousFrom(KvChunk c, int s) {
    int[] e = c.entries();
    return e.length == 0 || (e[0] == s && e[e.length - 1] == s + e.length - 1);
  }

  /** One chunk as one segment of its own precision. */
  private static KvSegment single(KvLayout layout, KvChunk c) {
    switch (c.precision()) {
      case FP32:
        return Fp32Codec.INSTANCE.encode(
            layout, c.k().dequantize(), c.v().dequantize(), c.rows(), c.tokenIndex(), c.position());
      case FP16:
        return Fp16Codec.Segment.ofStored(
            layout, c.k().data(), c.v().data(), c.tokenIndex(), c.position());
      default:
        return QuantizedKvSegment.ofChunk(layout, c);
    }
  }

  /**
   * Checks shapes against {@code layout} and that every (entry, KV head) pair of {@code [0, max
   * entry]} is in exactly one chunk, naming the first pair that is not.
   */
  private static void checkCoverage(KvLayout layout, List<KvChunk> chunks) {
    int heads = layout.numKvHeads();
    int total = 0;
    for (int i = 0; i < chunks.size(); i++) {
      KvChunk c = chunks.get(i);
      int g = c.kvHead();
      int[] shape = c.k().shape();
      int[] want = {c.rows(), g < 0 ? heads : 1, layout.headDim()};
      if (g >= heads || !Arrays.equals(shape, want)) {
        throw new IllegalArgumentException(
            "chunk "
                + i
                + " ("
                + c
                + ") has shape "
                + Arrays.toString(shape)
                + (g >= heads ? " and KV head " + g : "")
                + ", the layer of "
                + layout
                + " needs "
                + Arrays.toString(want)
                + (g >= 0 ? " and a KV head below " + heads : ""));
      }
      int[] e = c.entries();
      if (e.length > 0) {
        total = Math.max(total, e[e.length - 1] + 1);
      }
    }
    int[] seen = new int[total * heads];
    for (KvChunk c : chunks) {
      int g0 = Math.max(c.kvHead(), 0);
      int g1 = c.kvHead() < 0 ? heads : g0 + 1;
      for (int e : c.entries()) {
        for (int h = g0; h < g1; h++) {
          if (seen[e * heads + h]++ > 0) {
            throw new IllegalArgumentException(
                "entry " + e + " of KV head " + h + " is stored in more than one chunk");
          }
        }
      }
    }
    for (int p = 0; p < seen.length; p++) {
      if (seen[p] == 0) {
        throw new IllegalArgumentException(
            "entry " + p / heads + " of KV head " + p % heads + " is in no chunk");
      }
    }
  }
}
