package dev.tokenpress.operators.kv;

import java.util.Arrays;
import java.util.List;

/**
 * A sealed group of KV rows in the ZipCache integer format ({@link ZipCacheQuantizer}): packed
 * key codes with per-channel scale and zero, packed value codes with per-token scale and zero
 * plus the value channel scales. Kernels read it in place: {@link #keyScores} and
 * {@link #accumulateValues} dequantise each element as they go, with exactly the float
 * operations of {@link #decodeKeys}/{@link #decodeValues}, so attention over this segment equals
 * attention over its dequantised floats.
 */
final class QuantizedKvSegment extends KvSegment {
    private final int bits;
    private final int mask;
    private final int rowBytes;
    private final byte[] kCodes;
    private final float[] kScale; // per channel
    private final float[] kZero; // per channel
    private final byte[] vCodes;
    private final float[] vScale; // per token
    private final float[] vZero; // per token
    private final float[] vChannelScale; // per channel

    private QuantizedKvSegment(KvLayout layout, int rows, int bits, byte[] kCodes, float[] kScale, float[] kZero,
                               byte[] vCodes, float[] vScale, float[] vZero, float[] vChannelScale,
                               int[] tokenIndex, int[] position) {
        super(layout, rows);
        this.bits = bits;
        this.mask = (1 << bits) - 1;
        this.rowBytes = ZipCacheQuantizer.rowBytes(layout.width(), bits);
        this.kCodes = kCodes;
        this.kScale = kScale;
        this.kZero = kZero;
        this.vCodes = vCodes;
        this.vScale = vScale;
        this.vZero = vZero;
        this.vChannelScale = vChannelScale;
        this.rows = rows;
        for (int r = 0; r < rows; r++) {
            setBookkeeping(r, tokenIndex[r], position[r]);
        }
    }

    /**
     * Quantises {@code rows} rows (from offset 0). {@code channelScale} is the value channel
     * scale to use, or null to compute it over these rows.
     */
    static QuantizedKvSegment encode(KvLayout layout, int bits, float[] k, float[] v, int rows, int[] tokenIndex,
                                     int[] position, float[] channelScale) {
        ZipCacheQuantizer.checkBits(bits);
        int w = layout.width();
        checkInputs(layout, k, v, rows, tokenIndex, position);
        ZipCacheQuantizer.checkFinite("key", k, rows, w);
        ZipCacheQuantizer.checkFinite("value", v, rows, w);
        int[] codes = new int[rows * w];
        float[] kScale = new float[w];
        float[] kZero = new float[w];
        ZipCacheQuantizer.quantizeKeys(k, rows, w, bits, codes, kScale, kZero);
        byte[] kPacked = ZipCacheQuantizer.pack(codes, rows, w, bits);
        float[] s = channelScale != null ? channelScale.clone() : ZipCacheQuantizer.channelScales(v, rows, w);
        float[] vScale = new float[rows];
        float[] vZero = new float[rows];
        ZipCacheQuantizer.quantizeValues(v, rows, w, bits, s, codes, vScale, vZero);
        byte[] vPacked = ZipCacheQuantizer.pack(codes, rows, w, bits);
        return new QuantizedKvSegment(layout, rows, bits, kPacked, kScale, kZero, vPacked, vScale, vZero, s,
                tokenIndex, position);
    }

    static void checkInputs(KvLayout layout, float[] k, float[] v, int rows, int[] tokenIndex, int[] position) {
        if (rows < 0) {
            throw new IllegalArgumentException("rows must be >= 0, found " + rows);
        }
        long n = (long) rows * layout.width();
        if (k.length < n || v.length < n) {
            throw new IllegalArgumentException(rows + " rows of " + layout + " need " + n + " floats, k has "
                    + k.length + " and v has " + v.length);
        }
        if (tokenIndex.length < rows || position.length < rows) {
            throw new IllegalArgumentException(rows + " rows need as many token indices and positions, found "
                    + tokenIndex.length + " and " + position.length);
        }
    }

    int bits() {
        return bits;
    }

    @Override
    public KvPrecision precision() {
        return KvPrecision.ofBits(bits);
    }

    /** {@code dot(q[qOff..qOff+headDim), dequantised key of row r, head kvHead)}. */
    float keyDot(int r, int kvHead, float[] q, int qOff) {
        int hd = layout.headDim();
        int c = kvHead * hd;
        int i = c % rowBytes;
        int shift = (c / rowBytes) * bits;
        int ro = r * rowBytes;
        float acc = 0f;
        for (int d = 0; d < hd; d++, c++) {
            int code = ((kCodes[ro + i] & 0xff) >>> shift) & mask;
            acc += q[qOff + d] * (code * kScale[c] + kZero[c]);
            if (++i == rowBytes) {
                i = 0;
                shift += bits;
            }
        }
        return acc;
    }

    /** {@code out[outOff + d] += p * dequantised value of row r, head kvHead, element d}. */
    void addValue(int r, int kvHead, float p, float[] out, int outOff) {
        int hd = layout.headDim();
        int c = kvHead * hd;
        int i = c % rowBytes;
        int shift = (c / rowBytes) * bits;
        int ro = r * rowBytes;
        float st = vScale[r];
        float zr = vZero[r];
        for (int d = 0; d < hd; d++, c++) {
            int code = ((vCodes[ro + i] & 0xff) >>> shift) & mask;
            out[outOff + d] += p * ((code * st + zr) * vChannelScale[c]);
            if (++i == rowBytes) {
                i = 0;
                shift += bits;
            }
        }
    }

    /** Writes the {@code width} dequantised keys of row r. */
    void decodeKeyRow(int r, float[] dst, int dstOff) {
        int w = layout.width();
        for (int c = 0; c < w; c++) {
            int code = ZipCacheQuantizer.unpack(kCodes, r, c, rowBytes, bits);
            dst[dstOff + c] = code * kScale[c] + kZero[c];
        }
    }

    /** Writes the {@code width} dequantised values of row r. */
    void decodeValueRow(int r, float[] dst, int dstOff) {
        int w = layout.width();
        float st = vScale[r];
        float zr = vZero[r];
        for (int c = 0; c < w; c++) {
            int code = ZipCacheQuantizer.unpack(vCodes, r, c, rowBytes, bits);
            dst[dstOff + c] = (code * st + zr) * vChannelScale[c];
        }
    }

    @Override
    public void keyScores(int kvHead, float[] q, int qOff, float scale, float[] out, int outOff) {
        keyScores(kvHead, q, qOff, scale, out, outOff, null);
    }

    /**
     * {@link #keyScores} writing row {@code r}'s score at {@code out[outOff + at[r]]} ({@code at}
     * null: at {@code r}), with the float operations of {@link #keyDot}. The loop runs over the
     * head's channels in runs of one byte plane (constant shift), so the inner loop has no branch.
     */
    void keyScores(int kvHead, float[] q, int qOff, float scale, float[] out, int outOff, int[] at) {
        int hd = layout.headDim();
        int c0 = kvHead * hd;
        int end = c0 + hd;
        for (int r = 0; r < rows; r++) {
            int ro = r * rowBytes;
            float acc = 0f;
            int c = c0;
            int d = qOff;
            while (c < end) {
                int plane = c / rowBytes;
                int i = c - plane * rowBytes;
                int n = Math.min(end - c, rowBytes - i);
                int sh = plane * bits;
                int b = ro + i;
                for (int t = 0; t < n; t++) {
                    int code = ((kCodes[b + t] & 0xff) >>> sh) & mask;
                    acc += q[d + t] * (code * kScale[c + t] + kZero[c + t]);
                }
                c += n;
                d += n;
            }
            out[outOff + (at == null ? r : at[r])] = acc * scale;
        }
    }

    @Override
    public void accumulateValues(int kvHead, float[] w, int wOff, float[] out, int outOff) {
        accumulateValues(kvHead, w, wOff, out, outOff, null);
    }

    /**
     * {@link #accumulateValues} taking row {@code r}'s weight from {@code w[wOff + at[r]]}
     * ({@code at} null: {@code r}), with the float operations of {@link #addValue}, rows in order.
     */
    void accumulateValues(int kvHead, float[] w, int wOff, float[] out, int outOff, int[] at) {
        int hd = layout.headDim();
        int c0 = kvHead * hd;
        int end = c0 + hd;
        for (int r = 0; r < rows; r++) {
            float p = w[wOff + (at == null ? r : at[r])];
            int ro = r * rowBytes;
            float st = vScale[r];
            float zr = vZero[r];
            int c = c0;
            int d = outOff;
            while (c < end) {
                int plane = c / rowBytes;
                int i = c - plane * rowBytes;
                int n = Math.min(end - c, rowBytes - i);
                int sh = plane * bits;
                int b = ro + i;
                for (int t = 0; t < n; t++) {
                    int code = ((vCodes[b + t] & 0xff) >>> sh) & mask;
                    out[d + t] += p * ((code * st + zr) * vChannelScale[c + t]);
                }
                c += n;
                d += n;
            }
        }
    }

    @Override
    public void decodeKeys(float[] dst, int dstOff) {
        int w = layout.width();
        for (int r = 0; r < rows; r++) {
            decodeKeyRow(r, dst, dstOff + r * w);
        }
    }

    @Override
    public void decodeValues(float[] dst, int dstOff) {
        int w = layout.width();
        for (int r = 0; r < rows; r++) {
            decodeValueRow(r, dst, dstOff + r * w);
        }
    }

    /** Packed codes of K and V plus all scale/zero metadata as float32. */
    @Override
    public long storedBytes() {
        int w = layout.width();
        return 2L * rows * rowBytes + (long) Float.BYTES * (3L * w + 2L * rows);
    }

    /**
     * The kept rows with their codes and metadata unchanged (no re-quantisation): each kept
     * row dequantises to the same floats as before. Key channel scale/zero still describe the
     * group the rows were quantised in.
     */
    @Override
    public QuantizedKvSegment select(int[] rowsToKeep) {
        checkRows(rowsToKeep);
        int n = rowsToKeep.length;
        byte[] kc = new byte[n * rowBytes];
        byte[] vc = new byte[n * rowBytes];
        float[] vs = new float[n];
        float[] vz = new float[n];
        int[] ti = new int[n];
        int[] ps = new int[n];
        for (int i = 0; i < n; i++) {
            int r = rowsToKeep[i];
            System.arraycopy(kCodes, r * rowBytes, kc, i * rowBytes, rowBytes);
            System.arraycopy(vCodes, r * rowBytes, vc, i * rowBytes, rowBytes);
            vs[i] = vScale[r];
            vz[i] = vZero[r];
            ti[i] = tokenIndex[r];
            ps[i] = position[r];
        }
        return new QuantizedKvSegment(layout, n, bits, kc, kScale.clone(), kZero.clone(), vc, vs, vz,
                vChannelScale.clone(), ti, ps);
    }

    /** This segment as one chunk whose rows are the layer entries {@code entries}. */
    KvChunk chunk(int[] entries) {
        int[] shape = {rows, layout.numKvHeads(), layout.headDim()};
        String dtype = KvCodecs.dtype(precision());
        KvTensor k = new KvTensor(dtype, KvCodecs.LAYOUT_KEY, shape, bits, rows, kScale.clone(), kZero.clone(),
                new float[0], kCodes.clone());
        KvTensor v = new KvTensor(dtype, KvCodecs.LAYOUT_VALUE, shape, bits, layout.width(), vScale.clone(),
                vZero.clone(), vChannelScale.clone(), vCodes.clone());
        return new KvChunk(entries, Arrays.copyOf(tokenIndex, rows), Arrays.copyOf(position, rows),
                precision(), k, v);
    }

    @Override
    public List<KvChunk> export(int firstEntry) {
        int[] entries = new int[rows];
        for (int r = 0; r < rows; r++) {
            entries[r] = firstEntry + r;
        }
        return List.of(chunk(entries));
    }

    @Override
    public String toString() {
        return "QuantizedKvSegment(int" + bits + ", rows=" + rows + ", " + layout + ")";
    }
}
