package dev.tokenpress.operators.kv;

import java.util.Arrays;

/**
 * A run of consecutive entries of one layer's KV cache, all stored with one {@link KvCodec}.
 * Each entry keeps the original token index and position id of the token it came from.
 *
 * <p>Kernels never see the stored bytes: they ask a segment for key scores and value sums of one
 * KV head, so a quantized codec dequantizes on the fly in {@link #keyScores} and
 * {@link #accumulateValues} (ZipCache group metadata stays inside its segment).
 *
 * <p>Not thread-safe; a segment belongs to one sequence.
 */
public abstract class KvSegment {
    protected final KvLayout layout;
    protected int rows;
    protected int[] tokenIndex;
    protected int[] position;

    protected KvSegment(KvLayout layout, int capacity) {
        this.layout = layout;
        this.tokenIndex = new int[Math.max(capacity, 1)];
        this.position = new int[Math.max(capacity, 1)];
    }

    public abstract KvPrecision precision();

    /**
     * Key scores of {@code heads} consecutive query heads that share KV head {@code kvHead} (a GQA
     * group): {@code out[outOff + h*stride + r] = scale * dot(q[qOff + h*headDim ..], key(r, kvHead))}
     * for {@code h < heads} and every row r of this segment. Grouping lets a codec dequantize each
     * key row once for the whole group.
     */
    public abstract void keyScores(int kvHead, float[] q, int qOff, int heads, float scale, float[] out, int outOff,
                                   int stride);

    /**
     * Weighted value sums of a GQA group:
     * {@code out[outOff + h*headDim + d] += sum_r w[wOff + h*wStride + r] * value(r, kvHead)[d]}.
     */
    public abstract void accumulateValues(int kvHead, float[] w, int wOff, int heads, int wStride, float[] out,
                                          int outOff);

    /** Writes the dequantized keys, {@code rows * width} floats, row-major. */
    public abstract void decodeKeys(float[] dst, int dstOff);

    /** Writes the dequantized values, {@code rows * width} floats, row-major. */
    public abstract void decodeValues(float[] dst, int dstOff);

    /** Bytes of stored K and V (excluding token index and position bookkeeping). */
    public abstract long storedBytes();

    /** A new segment of the same codec holding the given rows (ascending, in range). */
    public abstract KvSegment select(int[] rowsToKeep);

    /** Whether {@link #append} is supported (group-quantized codecs are sealed once encoded). */
    public boolean appendable() {
        return false;
    }

    /** Appends one entry; only for {@link #appendable()} segments. */
    public void append(float[] k, int kOff, float[] v, int vOff, int tokenIdx, int pos) {
        throw new UnsupportedOperationException(precision() + " segment is sealed; append into a new segment");
    }

    public final KvLayout layout() {
        return layout;
    }

    public final int rows() {
        return rows;
    }

    public final int tokenIndex(int row) {
        return tokenIndex[row];
    }

    public final int position(int row) {
        return position[row];
    }

    /** Ensures room for {@code needed} rows of bookkeeping; subclasses grow their payload too. */
    protected void growBookkeeping(int needed) {
        if (needed > tokenIndex.length) {
            int cap = Math.max(needed, tokenIndex.length * 2);
            tokenIndex = Arrays.copyOf(tokenIndex, cap);
            position = Arrays.copyOf(position, cap);
        }
    }

    protected final void setBookkeeping(int row, int tokenIdx, int pos) {
        tokenIndex[row] = tokenIdx;
        position[row] = pos;
    }

    protected final void checkRows(int[] rowsToKeep) {
        int prev = -1;
        for (int r : rowsToKeep) {
            if (r <= prev || r >= rows) {
                throw new IllegalArgumentException("rows to keep must be ascending within [0, " + rows
                        + "), found " + r + " after " + prev);
            }
            prev = r;
        }
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "(rows=" + rows + ", " + layout + ")";
    }
}
