package dev.tokenpress.operators.kv;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The KV cache of one layer of one sequence: an ordered list of {@link KvSegment}s, each with its
 * own precision, holding for every entry the original token index and position id.
 *
 * <p>Lengths are per layer (a token dropped after layer K is absent from the later layers). New
 * entries go into an open segment of the append codec (FP32 or FP16); {@link #recode} re-encodes a
 * range with another codec (e.g. a ZipCache int4 group), {@link #recodeMixed} re-encodes a range at
 * two precisions chosen per token (ZipVL / ZipCache mixed precision; {@link #recodeMixedPerHead}:
 * chosen per token and KV head), {@link #retain} keeps a subset (eviction, merging). Every reader
 * sees entries in their order whatever the segments: {@link #tokenIndices}, {@link #positions},
 * {@link #precisions}, {@link #keys}, the kernels ({@code DecodeAttention} reads each segment in
 * place, dequantising on the fly) and {@link #chunks} (the Parquet form, from which {@link
 * #fromChunks} rebuilds the same layer).
 *
 * <p>Not thread-safe.
 */
public final class LayerKvCache {
  private static final int INITIAL_CAPACITY = 64;

  private final KvLayout layout;
  private final KvCodec appendCodec;
  private final List<KvSegment> segments = new ArrayList<>();
  private int length;
  private KvCompressionInfo compressionInfo;

  /**
   * @param appendCodec codec of appended entries; must be {@link KvCodec#appendable()} (FP32 or
   *     FP16): quantised groups are made with {@link #recode}/{@link #recodeMixed}
   */
  public LayerKvCache(KvLayout layout, KvCodec appendCodec) {
    if (!appendCodec.appendable()) {
      throw new IllegalArgumentException(
          appendCodec
              + " cannot be an append codec: append in FP32 or FP16"
              + " and re-encode groups with recode/recodeMixed");
    }
    this.layout = layout;
    this.appendCodec = appendCodec;
  }

  /**
   * The layer stored as {@code chunks} ({@link #chunks()} read back, e.g. from Parquet {@code
   * kv_cache} rows in {@code chunk} order), rebuilt without re-quantising: the same stored bytes,
   * dequantised floats, token indices, positions and precisions, so decoding can continue from it
   * (appends go to {@code appendCodec}). FP32/FP16 chunks become float segments, a ZipCache chunk a
   * quantised group of its codes and metadata, two chunks whose entries interleave a
   * mixed-precision group, chunks tagged with KV heads 0..H-1 a per-KV-head group.
   *
   * @param info what a KV-quantising operator recorded for the layer, or null
   * @throws IllegalArgumentException naming the entry and KV head when a pair is in no chunk or in
   *     several, or the chunk when its shape or place does not fit
   */
  public static LayerKvCache fromChunks(
      KvLayout layout, KvCodec appendCodec, List<KvChunk> chunks, KvCompressionInfo info) {
    LayerKvCache c = new LayerKvCache(layout, appendCodec);
    for (KvSegment s : KvChunkAssembler.segments(layout, chunks)) {
      c.segments.add(s);
      c.length += s.rows();
    }
    c.compressionInfo = info;
    return c;
  }

  public KvLayout layout() {
    return layout;
  }

  public KvCodec appendCodec() {
    return appendCodec;
  }

  /** Number of entries. */
  public int length() {
    return length;
  }

  /** The segments in entry order (read-only view). */
  public List<KvSegment> segments() {
    return Collections.unmodifiableList(segments);
  }

  /** Appends one entry: K and V rows of {@code layout.width()} floats. */
  public void append(float[] k, int kOff, float[] v, int vOff, int tokenIndex, int position) {
    openSegment(1).append(k, kOff, v, vOff, tokenIndex, position);
    length++;
  }

  /**
   * Appends {@code rows} entries: K and V are row-major from the offsets; token indices and
   * positions from {@code idxOff}.
   */
  public void appendRows(
      float[] k,
      int kOff,
      float[] v,
      int vOff,
      int rows,
      int[] tokenIndex,
      int[] position,
      int idxOff) {
    KvSegment seg = openSegment(rows);
    int w = layout.width();
    for (int r = 0; r < rows; r++) {
      seg.append(k, kOff + r * w, v, vOff + r * w, tokenIndex[idxOff + r], position[idxOff + r]);
    }
    length += rows;
  }

  private KvSegment openSegment(int expectedRows) {
    if (!segments.isEmpty()) {
      KvSegment last = segments.get(segments.size() - 1);
      if (last.appendable() && last.precision() == appendCodec.precision()) {
        return last;
      }
    }
    KvSegment seg = appendCodec.allocate(layout, Math.max(INITIAL_CAPACITY, expectedRows));
    segments.add(seg);
    return seg;
  }

  /** What a KV-quantising operator recorded for this layer, or null. */
  public KvCompressionInfo compressionInfo() {
    return compressionInfo;
  }

  /** Records what a KV-quantising operator decided for this layer (replaces any earlier record). */
  public void setCompressionInfo(KvCompressionInfo info) {
    this.compressionInfo = info;
  }

  /**
   * How many entries at the end of the layer are stored in a float precision (FP32 or FP16), e.g.
   * generated tokens a quantising operator has not re-encoded yet.
   */
  public int trailingFloatEntries() {
    int n = 0;
    for (int i = segments.size() - 1; i >= 0; i--) {
      KvSegment s = segments.get(i);
      if (s.precision().quantized()) {
        break;
      }
      n += s.rows();
    }
    return n;
  }

  /**
   * The entries stored at {@link KvCompressionInfo#bitsHigh()} of {@link #compressionInfo()}
   * (ZipVL's important tokens), in at least one KV head for a per-KV-head group, apart from the
   * {@link #trailingFloatEntries() trailing float entries}; ascending. Null without a compression
   * record.
   */
  public int[] importantEntries() {
    if (compressionInfo == null) {
      return null;
    }
    int bits = compressionInfo.bitsHigh();
    int end = length - trailingFloatEntries();
    KvPrecision[] p = precisions();
    int n = 0;
    for (int e = 0; e < end; e++) {
      if (p[e].bits() == bits) {
        n++;
      }
    }
    int[] out = new int[n];
    for (int e = 0, i = 0; e < end; e++) {
      if (p[e].bits() == bits) {
        out[i++] = e;
      }
    }
    return out;
  }

  /** Original token index of every entry, in entry order. */
  public int[] tokenIndices() {
    int[] out = new int[length];
    int i = 0;
    for (KvSegment s : segments) {
      for (int r = 0; r < s.rows(); r++) {
        out[i++] = s.tokenIndex(r);
      }
    }
    return out;
  }

  /** Position id of every entry, in entry order. */
  public int[] positions() {
    int[] out = new int[length];
    int i = 0;
    for (KvSegment s : segments) {
      for (int r = 0; r < s.rows(); r++) {
        out[i++] = s.position(r);
      }
    }
    return out;
  }

  /** Precision of every entry, in entry order. */
  public KvPrecision[] precisions() {
    KvPrecision[] out = new KvPrecision[length];
    int i = 0;
    for (KvSegment s : segments) {
      for (int r = 0; r < s.rows(); r++) {
        out[i++] = s.precision(r);
      }
    }
    return out;
  }

  /** Dequantized keys, {@code length * width} floats, row-major. */
  public float[] keys() {
    float[] out = new float[length * layout.width()];
    decodeKeys(out, 0);
    return out;
  }

  /** Dequantized values, {@code length * width} floats, row-major. */
  public float[] values() {
    float[] out = new float[length * layout.width()];
    decodeValues(out, 0);
    return out;
  }

  /** Writes the dequantized keys of all entries into {@code dst} from {@code dstOff}. */
  public void decodeKeys(float[] dst, int dstOff) {
    int o = dstOff;
    for (KvSegment s : segments) {
      s.decodeKeys(dst, o);
      o += s.rows() * layout.width();
    }
  }

  /** Writes the dequantized values of all entries into {@code dst} from {@code dstOff}. */
  public void decodeValues(float[] dst, int dstOff) {
    int o = dstOff;
    for (KvSegment s : segments) {
      s.decodeValues(dst, o);
      o += s.rows() * layout.width();
    }
  }

  /** Bytes of stored K and V over all segments. */
  public long storedBytes() {
    long b = 0;
    for (KvSegment s : segments) {
      b += s.storedBytes();
    }
    return b;
  }

  /**
   * Keeps only the given entries (ascending indices into this layer), each in its current
   * precision, in order. Token indices and positions travel with the entries.
   */
  public void retain(int[] entries) {
    int prev = -1;
    for (int e : entries) {
      if (e <= prev || e >= length) {
        throw new IllegalArgumentException(
            "entries to retain must be ascending within [0, "
                + length
                + "), found "
                + e
                + " after "
                + prev);
      }
      prev = e;
    }
    List<KvSegment> next = new ArrayList<>();
    int base = 0;
    int p = 0;
    for (KvSegment s : segments) {
      int start = p;
      while (p < entries.length && entries[p] < base + s.rows()) {
        p++;
      }
      if (p > start) {
        int[] local = new int[p - start];
        for (int i = 0; i < local.length; i++) {
          local[i] = entries[start + i] - base;
        }
        next.add(local.length == s.rows() ? s : s.select(local));
      }
      base += s.rows();
    }
    segments.clear();
    segments.addAll(next);
    length = entries.length;
  }

  /**
   * Re-encodes entries {@code [from, to)} with {@code codec} into one segment (for example fp16 for
   * unimportant tokens, or one ZipCache int4 group); the entries before and after keep their
   * segments. Entries already quantised are dequantised first.
   */
  public void recode(int from, int to, KvCodec codec) {
    checkRange(from, to);
    if (from == to) {
      return;
    }
    Range r = decodeRange(from, to);
    replace(from, to, codec.encode(layout, r.k, r.v, to - from, r.tokenIndex, r.position));
  }

  /**
   * Re-encodes entries {@code [from, to)} as one mixed-precision group: {@code important[i]} says
   * whether entry {@code from + i} is stored at {@code encoder.bitsHigh()} or {@code
   * encoder.bitsLow()} (see {@link MixedPrecisionEncoder}). Entries keep their order, token indices
   * and positions; {@link #precisions()} reports each entry's precision.
   */
  public void recodeMixed(int from, int to, boolean[] important, MixedPrecisionEncoder encoder) {
    checkRange(from, to);
    if (important.length != to - from) {
      throw new IllegalArgumentException(
          "important mask has "
              + important.length
              + " entries, range ["
              + from
              + ", "
              + to
              + ") has "
              + (to - from));
    }
    if (from == to) {
      return;
    }
    Range r = decodeRange(from, to);
    replace(
        from, to, encoder.encode(layout, r.k, r.v, to - from, r.tokenIndex, r.position, important));
  }

  /**
   * {@link #recodeMixed} with one mask per KV head ({@link MixedPrecisionEncoder#encodePerHead}):
   * {@code important[g][i]} says whether KV head g of entry {@code from + i} is stored at {@code
   * encoder.bitsHigh()}. {@link #precisions()} reports each entry's widest precision over the
   * heads; {@link #chunks()} gives the group's chunks per KV head.
   */
  public void recodeMixedPerHead(
      int from, int to, boolean[][] important, MixedPrecisionEncoder encoder) {
    checkRange(from, to);
    if (important.length != layout.numKvHeads()) {
      throw new IllegalArgumentException(
          "important has "
              + important.length
              + " masks, the layer has "
              + layout.numKvHeads()
              + " KV heads");
    }
    for (int g = 0; g < important.length; g++) {
      if (important[g].length != to - from) {
        throw new IllegalArgumentException(
            "important mask of KV head "
                + g
                + " has "
                + important[g].length
                + " entries, range ["
                + from
                + ", "
                + to
                + ") has "
                + (to - from));
      }
    }
    if (from == to) {
      return;
    }
    Range r = decodeRange(from, to);
    replace(
        from,
        to,
        encoder.encodePerHead(layout, r.k, r.v, to - from, r.tokenIndex, r.position, important));
  }

  /** How many chunks {@link #chunks} gives, without exporting them. */
  public int chunkCount() {
    int n = 0;
    for (KvSegment s : segments) {
      n += s.chunkCount();
    }
    return n;
  }

  /**
   * The layer in stored form, one {@link KvChunk} per segment (two for a mixed-precision segment;
   * per KV head for a {@link #recodeMixedPerHead} group), segment by segment. Row {@code i} of a
   * chunk is entry {@code chunk.entries()[i]}; every (entry, KV head) pair appears in exactly one
   * chunk (a chunk of {@link KvChunk#kvHead()} -1 holds every head).
   */
  public List<KvChunk> chunks() {
    List<KvChunk> out = new ArrayList<>();
    int base = 0;
    for (KvSegment s : segments) {
      out.addAll(s.export(base));
      base += s.rows();
    }
    return out;
  }

  private void checkRange(int from, int to) {
    if (from < 0 || to > length || from > to) {
      throw new IllegalArgumentException(
          "recode range [" + from + ", " + to + ") is not within [0, " + length + "]");
    }
  }

  /**
   * Dequantised K, V and bookkeeping of entries [from, to), decoding only the segments involved.
   */
  private Range decodeRange(int from, int to) {
    int w = layout.width();
    int n = to - from;
    Range out = new Range(n, w);
    int base = 0;
    for (KvSegment s : segments) {
      int sEnd = base + s.rows();
      int lo = Math.max(from, base);
      int hi = Math.min(to, sEnd);
      if (lo < hi) {
        float[] k = new float[s.rows() * w];
        float[] v = new float[s.rows() * w];
        s.decodeKeys(k, 0);
        s.decodeValues(v, 0);
        System.arraycopy(k, (lo - base) * w, out.k, (lo - from) * w, (hi - lo) * w);
        System.arraycopy(v, (lo - base) * w, out.v, (lo - from) * w, (hi - lo) * w);
        for (int e = lo; e < hi; e++) {
          out.tokenIndex[e - from] = s.tokenIndex(e - base);
          out.position[e - from] = s.position(e - base);
        }
      }
      base = sEnd;
    }
    return out;
  }

  /** Replaces entries [from, to) by {@code middle}, splitting the segments at the edges. */
  private void replace(int from, int to, KvSegment middle) {
    List<KvSegment> next = new ArrayList<>();
    int base = 0;
    boolean placed = false;
    for (KvSegment s : segments) {
      int sEnd = base + s.rows();
      int keepBefore = Math.max(0, Math.min(sEnd, from) - base);
      if (keepBefore > 0) {
        next.add(keepBefore == s.rows() ? s : s.select(range(0, keepBefore)));
      }
      if (!placed && sEnd > from) {
        next.add(middle);
        placed = true;
      }
      int afterStart = Math.max(base, to);
      if (afterStart < sEnd) {
        next.add(afterStart == base ? s : s.select(range(afterStart - base, s.rows())));
      }
      base = sEnd;
    }
    segments.clear();
    segments.addAll(next);
  }

  private static final class Range {
    final float[] k;
    final float[] v;
    final int[] tokenIndex;
    final int[] position;

    Range(int n, int w) {
      k = new float[n * w];
      v = new float[n * w];
      tokenIndex = new int[n];
      position = new int[n];
    }
  }

  private static int[] range(int from, int to) {
    int[] r = new int[to - from];
    for (int i = 0; i < r.length; i++) {
      r[i] = from + i;
    }
    return r;
  }

  @Override
  public String toString() {
    return "LayerKvCache(length=" + length + ", segments=" + segments.size() + ", " + layout + ")";
  }
}
