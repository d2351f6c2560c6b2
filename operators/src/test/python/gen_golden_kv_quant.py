"""Golden values for the ZipCache KV quantisers in dev.tokenpress.operators.kv
(ZipCacheCodec, MixedPrecisionEncoder, KvCodecs.dequantize).

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_kv_quant.py
      (numpy 1.24.2; the default python3 has no numpy)
Writes operators/src/test/resources/golden/kv/kv_quant.json and kv_quant_per_head.json.

An independent numpy port of ZipCache's quantisers (ThisisBillhe/ZipCache,
zipcache/models/CompressUtils/compress_function.py: true_channel_wise_quantize for keys,
true_channel_separate_mixedprec_tokenwise_compress for values, transfer_8bit_to_{4,2}bit_batchwise
for packing), done in float32 arithmetic, with the tokenpress rules for what ZipCache leaves
undefined. A KV group is [n tokens, W = kv_heads * head_dim channels], token-major.

  qmax = 2**bits - 1
  keys, per channel c over the group's tokens:
      mn_c = min_t K[t,c]; step_c = (max_t K[t,c] - mn_c) / qmax
      code = 0 if step_c == 0 else clip(rint((K - mn_c) / step_c), 0, qmax)
      deq  = code * step_c + mn_c
  values: s_c = sqrt(max_t |V[t,c]|)  (over the whole group, shared by mixed subsets)
      U = V / s_c, or 0 where s_c == 0 (an all-zero channel then dequantises to 0)
      per token t over all channels: mn_t = min_c U[t,c]; step_t = (max_c U[t,c] - mn_t) / qmax
      code = 0 if step_t == 0 else clip(rint((U - mn_t) / step_t), 0, qmax)
      deq  = (code * step_t + mn_t) * s_c
  rint is round-half-to-even (torch.round, np.rint, Java Math.rint).
  packing, k = 8 // bits codes per byte, P = ceil(W / k) bytes per row: channel c = j*P + i goes
      to byte i of the row, bits [j*bits, (j+1)*bits); codes of the padding channels W..k*P-1 are 0.
      (ZipCache's "split the last dimension into halves/quarters", extended to W % k != 0.)
  mixed precision (ZipCache mixed_channelwiseQ + channel_separate_mixed_tokenwiseQ): important
      rows (ascending) at bits_high, the others (ascending) at bits_low, each subset its own key
      channel statistics; value channel scales over all rows.
  per KV head (ZipCache selects per KV head; kv_quant_per_head.json): every head g has its own
      important mask and is quantised on its own as above, on its channels [g*D, (g+1)*D) only:
      key statistics per channel per subset of that head, value per-token statistics over that
      head's D channels, s_c per channel over all rows. A head whose mask is all true (all false)
      is one subset at bits_high (bits_low). Stored as one chunk per (head, subset), shape
      [rows, 1, D]. (ZipCache's own per-head gather flattens heads into one value "token" row;
      tokenpress keeps a value row to one token of one head, and so does this reference.)
"""
import numpy as np

from golden_common import f32_list, write

F32 = np.float32


def check32(*arrays):
    for a in arrays:
        assert a.dtype == np.float32, a.dtype


def quant_keys(k, bits):
    k = np.asarray(k, dtype=F32)
    qmax = F32(2 ** bits - 1)
    mn = k.min(axis=0)
    mx = k.max(axis=0)
    step = (mx - mn) / qmax
    safe = np.where(step == 0, F32(1), step).astype(F32)
    codes = np.rint((k - mn) / safe)
    codes = np.clip(codes, F32(0), qmax)
    codes = np.where(step == 0, F32(0), codes).astype(F32)
    deq = codes * step + mn
    check32(mn, step, codes, deq)
    return codes.astype(np.uint8), step, mn, deq


def channel_scales(v):
    v = np.asarray(v, dtype=F32)
    s = np.sqrt(np.abs(v).max(axis=0))
    check32(s)
    return s


def quant_values(v, bits, s):
    v = np.asarray(v, dtype=F32)
    qmax = F32(2 ** bits - 1)
    u = np.where(s == 0, F32(0), v / np.where(s == 0, F32(1), s)).astype(F32)
    mn = u.min(axis=1)
    mx = u.max(axis=1)
    step = (mx - mn) / qmax
    safe = np.where(step == 0, F32(1), step).astype(F32)
    codes = np.rint((u - mn[:, None]) / safe[:, None])
    codes = np.clip(codes, F32(0), qmax)
    codes = np.where(step[:, None] == 0, F32(0), codes).astype(F32)
    deq = (codes * step[:, None] + mn[:, None]) * s
    check32(u, mn, step, codes, deq)
    return codes.astype(np.uint8), step, mn, deq


def pack(codes, bits):
    n, w = codes.shape
    k = 8 // bits
    p = -(-w // k)
    padded = np.zeros((n, p * k), dtype=np.uint8)
    padded[:, :w] = codes
    out = np.zeros((n, p), dtype=np.uint8)
    for j in range(k):
        out |= (padded[:, j * p:(j + 1) * p] << (j * bits)).astype(np.uint8)
    return out


def unpack(data, n, w, bits):
    """What a PyArrow user does (the snippet in KvCodecs' javadoc)."""
    k = 8 // bits
    p = -(-w // k)
    u = np.frombuffer(data, dtype=np.uint8).reshape(n, p)
    mask = (1 << bits) - 1
    return np.concatenate([(u >> (j * bits)) & mask for j in range(k)], axis=1)[:, :w]


def kv_to_numpy(t):
    """The reader recipe documented in KvCodecs' javadoc, verbatim: one k or v struct plus its
    quantisation metadata (a dict of Python values, as PyArrow's to_pylist gives) -> float32."""
    shape = tuple(t["shape"])
    rows, w = shape[0], int(np.prod(shape[1:]))
    if t["dtype"] in ("float32", "float16"):
        return np.frombuffer(t["data"], "<f4" if t["dtype"] == "float32" else "<f2").astype(np.float32).reshape(shape)
    bits = t["bits"]
    k = 8 // bits
    p = -(-w // k)
    u = np.frombuffer(t["data"], np.uint8).reshape(rows, p)
    codes = np.concatenate([(u >> (j * bits)) & ((1 << bits) - 1) for j in range(k)], axis=1)[:, :w]
    codes = codes.astype(np.float32)
    scales = np.asarray(t["scales"], np.float32)
    zeros = np.asarray(t["zeros"], np.float32)
    if t["layout"] == "zipcache_key_per_channel":
        x = codes * scales + zeros
    else:
        x = (codes * scales[:, None] + zeros[:, None]) * np.asarray(t["channel_scales"], np.float32)
    return x.reshape(shape)


def encode(k, v, bits, s=None):
    s = channel_scales(v) if s is None else s
    kc, kstep, kmn, kdeq = quant_keys(k, bits)
    vc, vstep, vmn, vdeq = quant_values(v, bits, s)
    kp, vp = pack(kc, bits), pack(vc, bits)
    n, w = kc.shape
    assert np.array_equal(unpack(kp.tobytes(), n, w, bits), kc)
    assert np.array_equal(unpack(vp.tobytes(), n, w, bits), vc)
    dtype = {8: "uint8", 4: "uint4x2", 2: "uint2x4"}[bits]
    kt = {"shape": [n, w], "dtype": dtype, "bits": bits, "data": kp.tobytes(), "layout": "zipcache_key_per_channel",
          "scales": f32_list(kstep), "zeros": f32_list(kmn)}
    vt = {"shape": [n, w], "dtype": dtype, "bits": bits, "data": vp.tobytes(), "layout": "zipcache_value_per_token",
          "scales": f32_list(vstep), "zeros": f32_list(vmn), "channel_scales": f32_list(s)}
    assert np.array_equal(kv_to_numpy(kt).view(np.uint32), kdeq.view(np.uint32))
    assert np.array_equal(kv_to_numpy(vt).view(np.uint32), vdeq.view(np.uint32))
    return {
        "bits": bits,
        "k_codes": [int(x) for x in kc.ravel()], "k_bytes": [int(x) for x in kp.ravel()],
        "k_scales": f32_list(kstep), "k_zeros": f32_list(kmn), "k_deq": f32_list(kdeq),
        "v_codes": [int(x) for x in vc.ravel()], "v_bytes": [int(x) for x in vp.ravel()],
        "v_scales": f32_list(vstep), "v_zeros": f32_list(vmn), "v_channel_scales": f32_list(s),
        "v_deq": f32_list(vdeq),
    }


def case(name, heads, head_dim, k, v, bits_list):
    k = np.asarray(k, dtype=F32).reshape(-1, heads * head_dim)
    v = np.asarray(v, dtype=F32).reshape(-1, heads * head_dim)
    return {"name": name, "rows": int(k.shape[0]), "kv_heads": heads, "head_dim": head_dim,
            "k": f32_list(k), "v": f32_list(v),
            "encodings": [encode(k, v, b) for b in bits_list]}


rng = np.random.default_rng(20250107)
cases = []
# 7 tokens x 2 kv heads x 4 head dim, values with per-channel outliers (the reason for s_c).
k = (rng.standard_normal((7, 8)) * 1.5).astype(F32)
v = (rng.standard_normal((7, 8)) * np.array([1, 1, 8, 1, 1, 0.1, 1, 3])).astype(F32)
cases.append(case("t7_h2_d4", 2, 4, k, v, [8, 4, 2]))
# Packing tails: 13 channels (13 % 2 = 1, 13 % 4 = 1), 5 tokens and 1 token.
k = rng.standard_normal((5, 13)).astype(F32)
v = (rng.standard_normal((5, 13)) * 2).astype(F32)
cases.append(case("t5_h1_d13", 1, 13, k, v, [8, 4, 2]))
k = rng.standard_normal((1, 13)).astype(F32)
v = rng.standard_normal((1, 13)).astype(F32)
cases.append(case("t1_h1_d13", 1, 13, k, v, [8, 4, 2]))
# 6 channels: 2-bit packs 4 per byte, P = 2, padding channels 6 and 7.
k = rng.standard_normal((3, 6)).astype(F32)
v = rng.standard_normal((3, 6)).astype(F32)
cases.append(case("t3_h3_d2", 3, 2, k, v, [4, 2]))
# All-equal inputs: every range is zero, keys come back exactly.
cases.append(case("all_equal", 2, 4, np.full((4, 8), 0.3), np.full((4, 8), -1.7), [8, 4, 2]))
# An all-zero value channel (s_c = 0) and an all-zero token.
v = rng.standard_normal((4, 8)).astype(F32)
v[:, 3] = 0
v[2, :] = 0
cases.append(case("zero_channel", 2, 4, rng.standard_normal((4, 8)), v, [4, 2]))
# Ties: 2-bit key channel 0 spans [0, 3] so step = 1 and 0.5 / 2.5 are exact halves:
# half-to-even gives codes 0 / 2 where half-up would give 1 / 3.
k = np.zeros((5, 4), dtype=F32)
k[:, 0] = [0, 3, 0.5, 2.5, 1.5]
k[:, 1] = [1, 2, 3, 4, 5]
k[:, 2] = [-1, 1, 0, 0.25, -0.25]
k[:, 3] = [7, 7, 7, 7, 7]
v = np.tile(np.array([1, 4, 9, 16], dtype=F32), (5, 1)) * np.array([1, 0.5, 0.25, 2, 1], dtype=F32)[:, None]
cases.append(case("ties", 1, 4, k, v, [2]))
tie = cases[-1]["encodings"][0]
assert tie["k_codes"][0::4] == [0, 3, 0, 2, 2], tie["k_codes"][0::4]

# Mixed precision: 7 tokens x 2 x 4, important rows 0, 3, 5 at 4 bits, the rest at 2 bits.
k = (rng.standard_normal((7, 8)) * 2).astype(F32)
v = (rng.standard_normal((7, 8)) * np.array([1, 4, 1, 1, 0.5, 1, 1, 2])).astype(F32)
mask = np.array([True, False, False, True, False, True, False])
s = channel_scales(v)
hi = encode(k[mask], v[mask], 4, s)
lo = encode(k[~mask], v[~mask], 2, s)
k_deq = np.zeros_like(k)
v_deq = np.zeros_like(v)
k_deq[mask] = np.asarray(hi["k_deq"], dtype=F32).reshape(-1, 8)
k_deq[~mask] = np.asarray(lo["k_deq"], dtype=F32).reshape(-1, 8)
v_deq[mask] = np.asarray(hi["v_deq"], dtype=F32).reshape(-1, 8)
v_deq[~mask] = np.asarray(lo["v_deq"], dtype=F32).reshape(-1, 8)
mixed = {"rows": 7, "kv_heads": 2, "head_dim": 4, "bits_high": 4, "bits_low": 2,
         "important": [bool(x) for x in mask], "k": f32_list(k), "v": f32_list(v),
         "high_rows": [int(i) for i in np.flatnonzero(mask)],
         "low_rows": [int(i) for i in np.flatnonzero(~mask)],
         "high": hi, "low": lo, "k_deq": f32_list(k_deq), "v_deq": f32_list(v_deq)}

write("kv", "kv_quant.json", {
    "generator": "gen_golden_kv_quant.py, numpy " + np.__version__,
    "cases": cases,
    "mixed": mixed,
})


def encode_per_head(k, v, heads, head_dim, masks, bits_high, bits_low):
    """Each KV head g on its own channels with its own mask; returns its chunks and the layer deq."""
    rows = k.shape[0]
    k_deq = np.full_like(k, np.nan)
    v_deq = np.full_like(v, np.nan)
    out = []
    for g in range(heads):
        ch = slice(g * head_dim, (g + 1) * head_dim)
        kg, vg = k[:, ch], v[:, ch]
        m = np.asarray(masks[g], dtype=bool)
        s = channel_scales(vg)
        chunks = []
        for sel, bits in ((m, bits_high), (~m, bits_low)):
            if not sel.any():
                continue
            e = encode(kg[sel], vg[sel], bits, s)
            k_deq[sel, ch] = np.asarray(e["k_deq"], dtype=F32).reshape(-1, head_dim)
            v_deq[sel, ch] = np.asarray(e["v_deq"], dtype=F32).reshape(-1, head_dim)
            e["rows"] = [int(i) for i in np.flatnonzero(sel)]
            chunks.append(e)
        out.append({"important": [bool(x) for x in m], "chunks": chunks})
    assert not np.isnan(k_deq).any() and not np.isnan(v_deq).any()
    return out, k_deq, v_deq


# Per KV head: 7 tokens x 4 heads x 5 head dim (odd: packing tails in every head); heads 0 and 2
# with different mixed masks, head 1 all important, head 3 all unimportant.
H, D, T = 4, 5, 7
k = (rng.standard_normal((T, H * D)) * 1.5).astype(F32)
v = (rng.standard_normal((T, H * D)) * np.repeat(np.array([1, 6, 0.3, 2]), D)).astype(F32)
v[:, 7] *= 10  # an outlier channel in head 1
masks = [[True, False, False, True, False, True, False],
         [True] * T,
         [False, True, True, False, False, False, True],
         [False] * T]
per_heads, k_deq, v_deq = encode_per_head(k, v, H, D, masks, 4, 2)
write("kv", "kv_quant_per_head.json", {
    "generator": "gen_golden_kv_quant.py, numpy " + np.__version__,
    "rows": T, "kv_heads": H, "head_dim": D, "bits_high": 4, "bits_low": 2,
    "k": f32_list(k), "v": f32_list(v), "heads": per_heads,
    "k_deq": f32_list(k_deq), "v_deq": f32_list(v_deq),
})
