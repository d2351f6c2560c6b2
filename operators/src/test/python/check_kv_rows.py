"""Independent numpy dequantiser for the kv_cache rows a job wrote (used by the jobs module's
ZipVlParquetTest; the default python3 has no numpy, run with /usr/bin/python3).

    /usr/bin/python3 check_kv_rows.py ROWS.jsonl OUT.json

ROWS.jsonl: one kv_cache row per line as read by DuckDB (not Spark): id, layer, chunk, entries,
kv_head (null or absent: the chunk holds every KV head, shape [rows, H, D]; g: only KV head g,
shape [rows, 1, D]), and k / v objects with data_hex, shape, dtype, layout, bits, scales, zeros,
channel_scales.
Each tensor is decoded twice and the two must agree bit for bit:
  1. this file's own reading of the format, written from the ZipCache scheme: packed codes split
     the last dimension into 8/bits equal parts (byte i of a row holds channels i, i+P, i+2P, ...
     in successive bit fields from the low end); keys x = code * step[c] + min[c]; values
     x = (code * step[t] + min[t]) * s[c]; all float32;
  2. the PyArrow/numpy recipe of KvCodecs' javadoc, verbatim (kv_to_numpy); each layer is also
     assembled by the javadoc's loop (recipe_layer) and must equal this file's assembly.
OUT.json: {"<id>|<layer>": {"k": [...], "v": [...], "rows": T}} with the layer's chunks placed at
their entries and KV heads ([T, H, D] C order, float32 values as Python floats; every (entry,
head) pair must come from exactly one chunk), plus "chunks": the number of rows read.
"""
import json
import sys

import numpy as np

F32 = np.float32


def own_decode(t):
    shape = [int(x) for x in t["shape"]]
    rows = shape[0]
    w = int(np.prod(shape[1:]))
    data = bytes.fromhex(t["data_hex"])
    if t["dtype"] == "float32":
        return np.frombuffer(data, dtype="<f4").reshape(rows, w).astype(F32)
    if t["dtype"] == "float16":
        return np.frombuffer(data, dtype="<f2").reshape(rows, w).astype(F32)
    bits = int(t["bits"])
    per = 8 // bits
    p = (w + per - 1) // per
    raw = np.frombuffer(data, dtype=np.uint8).reshape(rows, p)
    codes = np.zeros((rows, per * p), dtype=np.uint8)
    for part in range(per):
        codes[:, part * p:(part + 1) * p] = (raw >> (bits * part)) & (2 ** bits - 1)
    c = codes[:, :w].astype(F32)
    step = np.array(t["scales"], dtype=F32)
    mn = np.array(t["zeros"], dtype=F32)
    if t["layout"] == "zipcache_key_per_channel":
        assert step.shape == (w,) and mn.shape == (w,)
        return (c * step[None, :] + mn[None, :]).astype(F32)
    assert t["layout"] == "zipcache_value_per_token", t["layout"]
    s = np.array(t["channel_scales"], dtype=F32)
    assert step.shape == (rows,) and s.shape == (w,)
    return ((c * step[:, None] + mn[:, None]) * s[None, :]).astype(F32)


def kv_to_numpy(t):
    """t: one k or v struct plus its quantisation metadata, as Python values (to_pylist)."""
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


def recipe_layer(rows):
    """The layer-assembly loop of KvCodecs' javadoc, verbatim (rows: one layer's dicts)."""
    t = 1 + max(max(r["entries"]) for r in rows)
    h = max(r["k"]["shape"][1] if r.get("kv_head") is None else r["kv_head"] + 1 for r in rows)
    k = np.empty((t, h, rows[0]["k"]["shape"][2]), np.float32)
    for r in rows:
        x = kv_to_numpy(r["k"])                   # a mixed group's INT4 and INT2 chunks interleave
        if r.get("kv_head") is None:
            k[r["entries"]] = x                   # every KV head: [rows, H, D]
        else:
            k[r["entries"], r["kv_head"]] = x[:, 0]   # KV head g only: [rows, 1, D]
    return k


def main(src, dst):
    layers = {}
    recipe_rows = {}
    n = 0
    with open(src) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            n += 1
            out = []
            for name in ("k", "v"):
                t = r[name]
                a = own_decode(t)
                b = kv_to_numpy(dict(t, data=bytes.fromhex(t["data_hex"]))).reshape(a.shape)
                assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), (r["id"], r["layer"], r["chunk"], name)
                out.append(a)
            head = r.get("kv_head")
            shape = [int(x) for x in r["k"]["shape"]]
            assert head is None or shape[1] == 1, ("a one-head chunk must be [rows, 1, D]", r["chunk"], shape)
            layers.setdefault((r["id"], r["layer"]), []).append((r["entries"], head, shape, out[0], out[1]))
            recipe_rows.setdefault((r["id"], r["layer"]), []).append(
                dict(r, k=dict(r["k"], data=bytes.fromhex(r["k"]["data_hex"]))))
    res = {"chunks": n}
    for (rid, layer), chunks in layers.items():
        d = chunks[0][2][2]
        full = {c[2][1] for c in chunks if c[1] is None}
        assert len(full) <= 1, (rid, layer, "chunks disagree on kv_heads", full)
        h = full.pop() if full else 1 + max(c[1] for c in chunks)
        total = 1 + max(max(e) for e, _, _, _, _ in chunks if len(e))
        k = np.zeros((total, h, d), dtype=F32)
        v = np.zeros((total, h, d), dtype=F32)
        hits = np.zeros((total, h), dtype=np.int64)
        for e, head, shape, kc, vc in chunks:
            assert shape[2] == d, (rid, layer, shape)
            heads = slice(None) if head is None else slice(head, head + 1)
            k[e, heads, :] = kc.reshape(len(e), -1, d)
            v[e, heads, :] = vc.reshape(len(e), -1, d)
            rows = np.asarray(e, dtype=np.int64)
            if head is None:
                np.add.at(hits, rows, 1)
            else:
                np.add.at(hits[:, head], rows, 1)
        assert (hits == 1).all(), (rid, layer, "(entry, kv head) pairs not covered exactly once",
                                   np.argwhere(hits != 1)[:5].tolist())
        recipe = recipe_layer(recipe_rows[(rid, layer)])
        assert np.array_equal(recipe.view(np.uint32), k.view(np.uint32)), (rid, layer, "javadoc assembly differs")
        res["%s|%d" % (rid, layer)] = {"rows": total, "k": [float(x) for x in k.ravel()],
                                        "v": [float(x) for x in v.ravel()]}
    with open(dst, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
