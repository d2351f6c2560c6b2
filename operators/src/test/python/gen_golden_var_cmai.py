"""Golden values for the attention-steering operators VAR and CMAI
(dev.tokenpress.operators.attention.Var / Cmai), written from the reference notes, not the Java.

VAR (Kang et al., arXiv 2503.03321; seilk/VisAttnSink logic.py), at one layer:
  phi(x)   = max_{d in D_sink} |h[x,d]| / sqrt(mean_d h[x,d]^2 + 1e-6)      (no RMSNorm weight)
  sinks    = {x : phi(x) > tau}  (text and visual);  visual sinks = sinks within the image
  if no visual sink: layer untouched
  for each query row after the image (prefill) / the new row (decode), each head:
     vis = sum_{j in image} A,  nonsink = sum_{j in image \\ sinks} A
     selected iff vis >= min_mass and nonsink / vis >= rho
     selected: A_j *= keep for j in sinks;  omega = (1-keep) * sum_{sinks} A (before scaling)
               A_j += omega * A_j / nonsink for j in image \\ sinks
  output of a row = A' . V (per head, grouped-query values)

CMAI (reconstruction of arXiv 2411.15453, addendum-2026-12.md), focus layer f, inhibited layer l:
  A = head-mean attention of the text rows after the image at f (softmax, causal)
  F = A_tt . A_ti  (A_tt: those rows' attention to the same rows; A_ti: their attention to the image)
  relative rule: inhibit (i,v) iff F[i,v] < thr * max_v F[i,v]
  quantile rule: inhibit the floor(thr*n) lowest of the row (order: higher score, lower index kept first)
  bias[i, v] = beta on inhibited pairs, 0 elsewhere
  decode: the new row's head-mean probabilities a at f; its own A_ti row = a[image];
          F_new = sum over t in (text rows after the image + the new row) of a[t] * A_ti[t]

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_var_cmai.py
Writes operators/src/test/resources/golden/attention/{var,cmai}.json.
"""
import numpy as np

from golden_common import f32_list, f64_list, softmax, write

rng = np.random.default_rng(20261204)
PREFIX, NVIS, SUFFIX = 3, 8, 5
S = PREFIX + NVIS + SUFFIX
HEADS, KV_HEADS, HEAD_DIM, D = 4, 2, 4, 64
VIS = list(range(PREFIX, PREFIX + NVIS))
TEXT_AFTER = list(range(PREFIX + NVIS, S))


def causal_probs(logits, query_rows, keys):
    """softmax over keys with keys after the query masked; logits [rows, heads, keys]."""
    x = np.array(logits, dtype=np.float64)
    for i, q in enumerate(query_rows):
        for j in range(keys):
            if j > q:
                x[i, :, j] = -np.inf
    return softmax(x)


# ------------------------------------------------------------------ VAR
SINK_DIMS = [3, 11]
TAU = 2.5
hidden = rng.normal(0, 1, size=(S, D)).astype(np.float32)
for row, dim, val in [(0, 3, 40.0), (4, 11, -35.0), (7, 3, 30.0), (9, 11, 2.0)]:
    hidden[row, dim] = val
h = hidden.astype(np.float64)
phi = np.max(np.abs(h[:, SINK_DIMS]), axis=1) / np.sqrt(np.mean(h * h, axis=1) + 1e-6)
sinks = [x for x in range(S) if phi[x] > TAU]
assert all(abs(phi[x] - TAU) > 1e-3 for x in range(S))
visual_sinks = [x for x in sinks if x in VIS]

logits = rng.normal(0, 1, size=(len(TEXT_AFTER), HEADS, S)).astype(np.float32)
logits[:, 0, VIS] += 2.5     # head 0 image-centric
logits[:, 1, 0] += 5.0       # head 1 dumps on BOS
logits[:, 2, VIS] += 1.0
logits[:, 2, 4] += 4.0       # head 2 dumps on a visual sink
probs = causal_probs(logits, TEXT_AFTER, S).astype(np.float32)


def var_rewrite(p, keys_sink, keys_vis, rho, min_mass, keep):
    p = np.array(p, dtype=np.float64)
    sel = np.zeros(p.shape[:2], dtype=bool)
    for i in range(p.shape[0]):
        for hh in range(p.shape[1]):
            a = p[i, hh]
            vis = a[keys_vis].sum()
            nonsink = a[[j for j in keys_vis if j not in keys_sink]].sum()
            if vis > 0 and vis >= min_mass and nonsink >= rho * vis and nonsink > 0:
                sel[i, hh] = True
                omega = (1 - keep) * a[keys_sink].sum()
                new = a.copy()
                for j in keys_sink:
                    new[j] = keep * a[j]
                for j in keys_vis:
                    if j not in keys_sink:
                        new[j] = a[j] + omega * a[j] / nonsink
                p[i, hh] = new
    return p, sel


values = rng.normal(0, 1, size=(S, KV_HEADS * HEAD_DIM)).astype(np.float32)


def weighted_values(p, v):
    rows = p.shape[0]
    out = np.zeros((rows, HEADS * HEAD_DIM))
    group = HEADS // KV_HEADS
    for i in range(rows):
        for hh in range(HEADS):
            g = hh // group
            out[i, hh * HEAD_DIM:(hh + 1) * HEAD_DIM] = p[i, hh] @ v[:, g * HEAD_DIM:(g + 1) * HEAD_DIM].astype(np.float64)
    return out


# decode row: keys 0..S (the new token S is never a sink)
dlogits = rng.normal(0, 1, size=(1, HEADS, S + 1)).astype(np.float32)
dlogits[:, 0, VIS] += 2.0
dlogits[:, 3, 7] += 3.0
dlogits[:, 3, VIS] += 1.5
dprobs = causal_probs(dlogits, [S], S + 1).astype(np.float32)

var_cases = []
for keep in (0.6, 0.4, 1.0):
    p2, sel = var_rewrite(probs, sinks, VIS, 0.5, 0.2, keep)
    d2, dsel = var_rewrite(dprobs, sinks, VIS, 0.5, 0.2, keep)
    assert np.allclose(p2.sum(-1), 1.0) and np.allclose(d2.sum(-1), 1.0)
    var_cases.append({
        "sink_keep": keep,
        "selected": [int(x) for x in sel.ravel()],
        "probs_out": f64_list(p2),
        "output": f64_list(weighted_values(p2, values)),
        "decode_selected": [int(x) for x in dsel.ravel()],
        "decode_probs_out": f64_list(d2),
    })

write("attention", "var.json", {
    "prefix": PREFIX, "visual": NVIS, "suffix": SUFFIX, "heads": HEADS, "kv_heads": KV_HEADS,
    "head_dim": HEAD_DIM, "hidden_size": D, "sink_dims": SINK_DIMS, "tau": TAU, "rho": 0.5,
    "min_visual_mass": 0.2,
    "hidden": f32_list(hidden), "phi": f64_list(phi), "sinks": sinks, "visual_sinks": visual_sinks,
    "query_rows": TEXT_AFTER, "probs": f32_list(probs), "values": f32_list(values),
    "decode_probs": f32_list(dprobs), "cases": var_cases,
})

# ------------------------------------------------------------------ CMAI
clogits = rng.normal(0, 1.5, size=(len(TEXT_AFTER), HEADS, S)).astype(np.float32)
cprobs = causal_probs(clogits, TEXT_AFTER, S)
mean = cprobs.mean(axis=1).astype(np.float32)          # [5, S] head-mean (the signal)
A = mean.astype(np.float64)
A_tt = A[:, TEXT_AFTER]
A_ti = A[:, VIS]
F = A_tt @ A_ti


def inhibit(f, rule, thr):
    n = len(f)
    if thr == 0:
        return [False] * n
    if rule == "relative":
        m = max(f)
        return [bool(x < thr * m) for x in f]
    k = int(np.floor(thr * n))
    order = np.lexsort((np.arange(n), -np.asarray(f)))
    keep = set(int(i) for i in order[:n - k])
    return [i not in keep for i in range(n)]


# decode: new token S at the focus layer, head-mean over S+1 keys
dcl = rng.normal(0, 1.5, size=(1, HEADS, S + 1)).astype(np.float32)
dmean = causal_probs(dcl, [S], S + 1).astype(np.float32)  # [1, heads, S+1]
a = dmean[0].astype(np.float64).mean(axis=0)
own = a[VIS]
F_new = sum(a[t] * A_ti[i] for i, t in enumerate(TEXT_AFTER)) + a[S] * own

BETA = -10000.0
cmai_cases = []
for rule, thr in (("relative", 0.5), ("quantile", 0.25), ("relative", 0.0)):
    bias = np.zeros((S, S))
    for i, r in enumerate(TEXT_AFTER):
        off = inhibit(F[i], rule, thr)
        for k, v in enumerate(VIS):
            if off[k]:
                bias[r, v] = BETA
    doff = inhibit(F_new, rule, thr)
    dbias = np.zeros(S + 1)
    for k, v in enumerate(VIS):
        if doff[k]:
            dbias[v] = BETA
    cmai_cases.append({"rule": rule, "threshold": thr, "bias": f64_list(bias), "decode_bias": f64_list(dbias)})

write("attention", "cmai.json", {
    "prefix": PREFIX, "visual": NVIS, "suffix": SUFFIX, "heads": HEADS, "bias_value": BETA,
    "query_rows": TEXT_AFTER, "head_mean": f32_list(mean), "focus": f64_list(F),
    "decode_probs": f32_list(dmean), "decode_focus": f64_list(F_new), "cases": cmai_cases,
})
