package dev.tokenpress.operators.kv;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The KV cache of one layer of one sequence: an ordered list of {@link KvSegment}s, each with its
 * own precision, holding for every entry the original token index and position id.
 *
 * <p>Lengths are per layer (a token dropped after layer K is absent from the later layers).
 * New entries go into an open segment of the append codec; {@link #recode} re-encodes a range
 * with another codec (mixed precision), {@link #retain} keeps a subset (eviction, merging).
 *
 * <p>Not thread-safe.
 */
public final class LayerKvCache {
    private static final int INITIAL_CAPACITY = 64;

    private final KvLayout layout;
    private final KvCodec appendCodec;
    private final List<KvSegment> segments = new ArrayList<>();
    private int length;

    public LayerKvCache(KvLayout layout, KvCodec appendCodec) {
        this.layout = layout;
        this.appendCodec = appendCodec;
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
    public void appendRows(float[] k, int kOff, float[] v, int vOff, int rows, int[] tokenIndex,
                           int[] position, int idxOff) {
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
                out[i++] = s.precision();
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
                throw new IllegalArgumentException("entries to retain must be ascending within [0, " + length
                        + "), found " + e + " after " + prev);
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
     * Re-encodes entries {@code [from, to)} with {@code codec} into one segment (for example fp16
     * for unimportant tokens); the entries before and after keep their segments.
     */
    public void recode(int from, int to, KvCodec codec) {
        if (from < 0 || to > length || from > to) {
            throw new IllegalArgumentException("recode range [" + from + ", " + to + ") is not within [0, " + length + "]");
        }
        if (from == to) {
            return;
        }
        int w = layout.width();
        float[] all = keys();
        float[] allV = values();
        int[] idx = tokenIndices();
        int[] pos = positions();
        int n = to - from;
        float[] k = new float[n * w];
        float[] v = new float[n * w];
        System.arraycopy(all, from * w, k, 0, n * w);
        System.arraycopy(allV, from * w, v, 0, n * w);
        KvSegment middle = codec.encode(layout, k, v, n,
                java.util.Arrays.copyOfRange(idx, from, to), java.util.Arrays.copyOfRange(pos, from, to));

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
