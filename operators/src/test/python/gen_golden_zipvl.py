"""Golden values for ZipVL (dev.tokenpress.operators.prune.ZipVl and the runtime's sparse prefill).

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_zipvl.py
      (numpy 1.24; the default python3 has no numpy)
Writes operators/src/test/resources/golden/zipvl/zipvl.json and
       runtime/src/test/resources/golden/zipvl/sparse_attention.json.

An independent numpy reading of ZipVL v1 (arXiv 2410.08584, Alg. 1) and of the ZipCache KV scheme,
written from the paper and the notes in shared/reference/operators/mustdrop-zipvl.md §2, with the
tokenpress rules for what the paper leaves open:

  probes: the last R rows plus m = min(random, n - R) of the E = n - R earlier rows, drawn by a
          partial Fisher-Yates shuffle of [0, E): for i < m, j = i + mix64(seed + (i+1)*0x9E37..15)
          mod (E - i) (unsigned 64-bit; mix64 = SplitMix64's finaliser), swap(i, j); first m, sorted.
  a_j   = sum over probes i and query heads h of softmax_j(q_i,h . k_j,g(h) / sqrt(d) + causal)
  Eq. 6 = smallest p with sum of the p largest a_j >= tau * sum_j a_j   (p = n for tau = 1)
  Eq. 7 = a_j / (n - j)          (j = row index, n - j rows can see row j)
  T     = rows 0 and n-1, then the highest Eq.7 scores (lower row on ties) up to max(p, 2) rows
  sparse attention, "important_keys": every query row i attends over the keys j in T with
          token(j) <= token(i);  "zero": only rows of T attend (over T), the others output 0
  mixed KV (ZipCache): rows of T at 4 bits, the others at 2; keys per channel per subset (min/step
          over the subset's rows), values per token after dividing by s_c = sqrt(max_t |V[t,c]|)
          over all rows of the group; round half to even; float32 arithmetic.
  decode re-encoding of a window of m generated entries with the step's query q:
          a_j = sum_h softmax_j over the window only (q_h . k_j / sqrt(d)); p by Eq. 6; the top p
          rows (no Eq. 7: one query sees every key) at 4 bits, the others at 2, one mixed group.
  heads = per_kv_head (ZipCache selects per KV head): every step above on a_g, the sum over the
          query heads h of KV head g = h // (heads / kv_heads) only; each KV head's channels are then
          quantised as a group of their own (keys per channel per subset, values per token over the
          head's d channels after s_c); sparse prefill attends over the union of the heads' sets.
"""
import numpy as np

from golden_common import f32_list, f64_list, softmax, write

F32 = np.float32
M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z):
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def probes(n, recent, random, seed):
    r = min(recent, n)
    e = n - r
    m = min(random, e)
    pool = list(range(e))
    for i in range(m):
        u = mix64((seed & M64) + (i + 1) * GOLDEN)
        j = i + u % (e - i)
        pool[i], pool[j] = pool[j], pool[i]
    return sorted(pool[:m]) + list(range(e, n))


def attention_probs(q, k, order, rows, heads, kv_heads, d):
    """[len(rows), heads, n] causal softmax by token order, float64."""
    n = k.shape[0]
    g = heads // kv_heads
    out = np.zeros((len(rows), heads, n))
    for a, i in enumerate(rows):
        for h in range(heads):
            qh = q[i, h * d:(h + 1) * d].astype(np.float64)
            kh = k[:, (h // g) * d:(h // g + 1) * d].astype(np.float64)
            s = kh @ qh / np.sqrt(d)
            s = np.where(order <= order[i], s, -np.inf)
            out[a, h] = softmax(s)
    return out


def eq6(a, tau):
    if tau >= 1:
        return len(a)
    s = np.sort(a)[::-1]
    c = np.cumsum(s)
    target = tau * a.sum()
    p = int(np.argmax(c >= target)) + 1
    # no near-tie at the threshold: float32 softmax in Java must give the same p
    assert abs(c[p - 1] - target) > 1e-4 and (p == 1 or abs(c[p - 2] - target) > 1e-4), (tau, c[p - 2:p], target)
    return p


def select(scores, p):
    n = len(scores)
    want = min(n, max(p, 2))
    chosen = {0, n - 1}
    order = sorted(range(n), key=lambda j: (-scores[j], j))
    for j in order:
        if len(chosen) >= want:
            break
        chosen.add(j)
    # no near-tie at the cut
    ranked = [j for j in order if j not in (0, n - 1)]
    taken = want - 2
    if 0 < taken < len(ranked):
        assert scores[ranked[taken - 1]] - scores[ranked[taken]] > 1e-6
    return sorted(chosen)


def quant_keys(k, bits):
    qmax = F32(2 ** bits - 1)
    mn = k.min(axis=0)
    step = ((k.max(axis=0) - mn) / qmax).astype(F32)
    safe = np.where(step == 0, F32(1), step).astype(F32)
    codes = np.where(step == 0, F32(0), np.clip(np.rint((k - mn) / safe), 0, qmax)).astype(F32)
    return (codes * step + mn).astype(F32)


def quant_values(v, bits, s):
    qmax = F32(2 ** bits - 1)
    safe_s = np.where(s == 0, F32(1), s).astype(F32)
    u = np.where(s == 0, F32(0), v / safe_s).astype(F32)
    mn = u.min(axis=1, keepdims=True)
    step = ((u.max(axis=1, keepdims=True) - mn) / qmax).astype(F32)
    safe = np.where(step == 0, F32(1), step).astype(F32)
    codes = np.where(step == 0, F32(0), np.clip(np.rint((u - mn) / safe), 0, qmax)).astype(F32)
    return ((codes * step + mn) * s).astype(F32)


def mixed(k, v, mask, hi=4, lo=2):
    s = np.sqrt(np.abs(v).max(axis=0)).astype(F32)
    kd = np.zeros_like(k)
    vd = np.zeros_like(v)
    for sel, bits in ((mask, hi), (~mask, lo)):
        if sel.any():
            kd[sel] = quant_keys(k[sel], bits)
            vd[sel] = quant_values(v[sel], bits, s)
    return kd, vd


def sparse_outputs(q, k, v, order, t_rows, others, heads, kv_heads, d):
    n = q.shape[0]
    g = heads // kv_heads
    t = np.array(t_rows)
    out = np.zeros((n, heads * d))
    for i in range(n):
        if not others and i not in t_rows:
            continue
        for h in range(heads):
            kk = k[t, (h // g) * d:(h // g + 1) * d].astype(np.float64)
            vv = v[t, (h // g) * d:(h // g + 1) * d].astype(np.float64)
            s = kk @ q[i, h * d:(h + 1) * d].astype(np.float64) / np.sqrt(d)
            s = np.where(order[t] <= order[i], s, -np.inf)
            out[i, h * d:(h + 1) * d] = softmax(s) @ vv
    return out


def main():
    rng = np.random.default_rng(20261204)
    n, heads, kv_heads, d = 24, 4, 2, 8
    recent, random, seed = 5, 6, -4811230198475093011
    q = (rng.standard_normal((n, heads * d)) * 1.2).astype(F32)
    k = (rng.standard_normal((n, kv_heads * d)) * 1.2).astype(F32)
    v = rng.standard_normal((n, kv_heads * d)).astype(F32)
    order = np.arange(n) + 3  # token indices (rows 0..n-1 came after 3 dropped tokens)

    pr = probes(n, recent, random, seed)
    probs = attention_probs(q, k, order, pr, heads, kv_heads, d)
    a = probs.sum(axis=(0, 1))
    norm = a / (n - np.arange(n))
    cases = []
    for tau in (0.9, 0.96, 1.0):
        p = eq6(a, tau)
        t_rows = select(norm, p)
        mask = np.zeros(n, bool)
        mask[t_rows] = True
        kd, vd = mixed(k, v, mask)
        cases.append({"tau": tau, "p": p, "important": t_rows, "k_deq": f32_list(kd), "v_deq": f32_list(vd)})

    # per KV head: the same probes' attention, summed per GQA group
    grp = heads // kv_heads
    per_head = []
    per_head_a = []
    for tau in (0.9, 0.96):
        kd = np.zeros_like(k)
        vd = np.zeros_like(v)
        sets, ps, union = [], [], set()
        for g in range(kv_heads):
            ag = probs[:, g * grp:(g + 1) * grp].sum(axis=(0, 1))
            pg = eq6(ag, tau)
            tg = select(ag / (n - np.arange(n)), pg)
            mg = np.zeros(n, bool)
            mg[tg] = True
            cols = slice(g * d, (g + 1) * d)
            kd[:, cols], vd[:, cols] = mixed(k[:, cols], v[:, cols], mg)
            sets.append(tg)
            ps.append(pg)
            union.update(tg)
            if tau == 0.9:
                per_head_a.append(f64_list(ag))
        per_head.append({"tau": tau, "p": ps, "important": sets, "union": sorted(union),
                         "k_deq": f32_list(kd), "v_deq": f32_list(vd)})

    # decode: 6 generated entries, one query
    m = 6
    kw = (rng.standard_normal((m, kv_heads * d)) * 1.2).astype(F32)
    vw = rng.standard_normal((m, kv_heads * d)).astype(F32)
    qd = (rng.standard_normal(heads * d) * 1.2).astype(F32)
    worder = np.arange(n + 3, n + 3 + m)
    g = heads // kv_heads
    aw = np.zeros(m)
    for h in range(heads):
        s = kw[:, (h // g) * d:(h // g + 1) * d].astype(np.float64) @ qd[h * d:(h + 1) * d].astype(np.float64)
        aw += softmax(s / np.sqrt(d))
    tau_d = 0.9
    pw = eq6(aw, tau_d)
    rank = sorted(range(m), key=lambda j: (-aw[j], j))
    assert pw == m or aw[rank[pw - 1]] - aw[rank[pw]] > 1e-6
    wmask = np.zeros(m, bool)
    wmask[rank[:pw]] = True
    kwd, vwd = mixed(kw, vw, wmask)
    # per KV head
    kwh = np.zeros_like(kw)
    vwh = np.zeros_like(vw)
    head_p, head_imp = [], []
    for gi in range(kv_heads):
        ag = np.zeros(m)
        for h in range(gi * g, (gi + 1) * g):
            s = kw[:, gi * d:(gi + 1) * d].astype(np.float64) @ qd[h * d:(h + 1) * d].astype(np.float64)
            ag += softmax(s / np.sqrt(d))
        pg = eq6(ag, tau_d)
        rk = sorted(range(m), key=lambda j: (-ag[j], j))
        assert pg == m or ag[rk[pg - 1]] - ag[rk[pg]] > 1e-6
        mg = np.zeros(m, bool)
        mg[rk[:pg]] = True
        cols = slice(gi * d, (gi + 1) * d)
        kwh[:, cols], vwh[:, cols] = mixed(kw[:, cols], vw[:, cols], mg)
        head_p.append(pg)
        head_imp.append([int(j) for j in np.nonzero(mg)[0]])

    write("zipvl", "zipvl.json", {
        "n": n, "heads": heads, "kv_heads": kv_heads, "head_dim": d,
        "probes_recent": recent, "probes_random": random, "probe_seed": seed,
        "probes_small": probes(7, 5, 6, seed), "probes_other_seed": probes(n, recent, random, seed + 1),
        "q": f32_list(q), "k": f32_list(k), "v": f32_list(v), "order": [int(x) for x in order],
        "probes": pr, "a": f64_list(a), "normalised": f64_list(norm), "cases": cases,
        "per_head_a": per_head_a, "per_head": per_head,
        "decode": {"tau": tau_d, "q": f32_list(qd), "k": f32_list(kw), "v": f32_list(vw),
                   "order": [int(x) for x in worder], "scores": f64_list(aw), "p": pw,
                   "important": [int(j) for j in np.nonzero(wmask)[0]],
                   "k_deq": f32_list(kwd), "v_deq": f32_list(vwd),
                   "per_head": {"p": head_p, "important": head_imp, "k_deq": f32_list(kwh), "v_deq": f32_list(vwh)}},
    })

    t_rows = cases[0]["important"]
    sparse = {"n": n, "heads": heads, "kv_heads": kv_heads, "head_dim": d, "q": f32_list(q), "k": f32_list(k),
              "v": f32_list(v), "order": [int(x) for x in order], "rows": t_rows,
              "important_keys": f64_list(sparse_outputs(q, k, v, order, t_rows, True, heads, kv_heads, d)),
              "zero": f64_list(sparse_outputs(q, k, v, order, t_rows, False, heads, kv_heads, d))}
    import json
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "runtime", "src", "test",
                        "resources", "golden", "zipvl")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "sparse_attention.json"), "w") as f:
        json.dump(sparse, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
