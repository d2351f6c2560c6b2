"""Golden values for dev.tokenpress.operators.prune.MustDrop (arXiv 2411.10803; liuting20/MustDrop @909afa5).

An independent numpy port of the authors' code paths, written from the code, not from the Java:
  stage A  local_merge.py::conditional_pooling + merge_wavg   (window merge after ViT block 0)
           clip_encoder.py::custom_forward (idx==23)          (key set: topk of head-mean CLS attention)
  stage B  modelling_sparse_llama.py::dual_attention_filter + the key_set / merged_indices update
  stage C  modelling_sparse_llama.py: final_indices composed backwards, per-layer gather loop,
           decode position = the layer's own cache length (LlamaDynamicvitSdpaAttention)
Arithmetic in float64 on float32 inputs.

Documented deviations (the Java does the same; see the MustDrop javadoc):
  * grids not divisible by the window (the code asserts): windows tile the top-left block, the
    remaining rows/columns are never merged and go with the unmerged patches in raster order;
  * ties (torch.topk order unspecified): lower window / patch index first;
  * a one-element key set (the code crashes at squeeze()) is a set of one;
  * the code's hard-coded 32 LM layers -> the case's layer count.
Cases that compare against thresholds keep a margin of >= 1e-6 (relative) unless they are exact by
construction (dyadic values), so float32 vs float64 cannot flip them.

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_mustdrop.py
      (numpy 1.24.2; the default python3 has no numpy)
Writes operators/src/test/resources/golden/mustdrop/mustdrop.json.
"""
import math

import numpy as np

from golden_common import f32_list, f64_list, softmax, write

EPS = 1e-8


# ---------------------------------------------------------------- stage A: window merge
def cosine(a, b):
    """F.cosine_similarity(a, b) for 1-d vectors: a.b / (max(|a|,eps) * max(|b|,eps))."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(a @ b) / (max(np.linalg.norm(a), EPS) * max(np.linalg.norm(b), EPS))


def conditional_pooling(x, rows, cols, ws, threshold, has_cls, fix_r=None):
    """x: [(cls) + rows*cols, D] float32. Returns (out [.., D] float32, merged windows, sims, provenance)."""
    c = 1 if has_cls else 0
    feat = x[c:].astype(np.float64)
    d = feat.shape[1]
    gh, gw = rows // ws, cols // ws
    grid = feat.reshape(rows, cols, d)[: gh * ws, : gw * ws]          # crop to full windows
    # 'b c (gh ps_h) (gw ps_w) -> b gh gw c ps_h ps_w', flattened window -> [gh, gw, ws*ws, D]
    win = grid.reshape(gh, ws, gw, ws, d).transpose(0, 2, 1, 3, 4).reshape(gh, gw, ws * ws, d)
    n = ws * ws
    sims = np.zeros((gh, gw))
    for i in range(gh):
        for j in range(gw):
            s = np.array([[cosine(win[i, j, a], win[i, j, b]) for b in range(n)] for a in range(n)])
            s = s * (1 - np.eye(n))                                     # sims * sims_mask
            sims[i, j] = s.sum() / (n * (n - 1))
    sim_map = sims.reshape(-1)
    if fix_r is None:
        r = int(np.sum(sim_map >= threshold))
    else:
        r = fix_r
    order = [int(k) for k in np.lexsort((np.arange(len(sim_map)), -sim_map))][:r]   # topk, ties: lower index
    # patch ids per window: tensor.unfold(1, ws, ws).unfold(2, ws, ws) over arange(rows*cols)
    ids = np.arange(rows * cols).reshape(rows, cols)[: gh * ws, : gw * ws]
    windowed = ids.reshape(gh, ws, gw, ws).transpose(0, 2, 1, 3).reshape(gh * gw, n)
    gathered = windowed[order]                                          # [r, n]
    merged_set = set(int(p) for p in gathered.reshape(-1))
    unm = sorted(p for p in range(rows * cols) if p not in merged_set)
    # merge_wavg: x*size summed per window (dst + scatter_reduce of the src), divided by the summed size
    dst = [feat[g].sum(axis=0) / n for g in gathered]
    out = ([x[0].astype(np.float64)] if has_cls else []) + dst + [feat[p] for p in unm]
    prov = [(sorted(int(p) for p in g), [1.0 / n] * n) for g in gathered] + [([p], [1.0]) for p in unm]
    return np.array(out, dtype=np.float32), order, sim_map, prov


def merge_case(name, x, rows, cols, ws, threshold, has_cls, retained=None):
    fix_r = None
    if retained is not None:
        gh, gw = rows // ws, cols // ws
        fix_r = max(0, min(gh * gw, (rows * cols + 1 - retained) // (ws * ws - 1)))
    out, order, sims, prov = conditional_pooling(x, rows, cols, ws, threshold, has_cls, fix_r)
    if retained is None:   # margin: no window within 1e-6 of the threshold unless exact by construction
        gap = np.min(np.abs(sims - threshold)) if len(sims) else 1
        assert gap >= 1e-6 or name.startswith("exact"), (name, gap)
    case = {"name": name, "rows": rows, "cols": cols, "dim": x.shape[1], "window": ws, "threshold": threshold,
            "has_cls": has_cls, "hidden": f32_list(x), "expected_hidden": f32_list(out),
            "merged_windows": order, "similarity": f64_list(sims),
            "sources": [p for p, _ in prov], "weights": [w for _, w in prov]}
    if retained is not None:
        case["retained_tokens"] = retained
    return case


def near(base, rng, count, noise):
    return base[None, :] + noise * rng.standard_normal((count, base.shape[0]))


def build_merge_cases():
    rng = np.random.default_rng(11)
    cases = []
    d = 8
    # 6x6, window 3: windows 0 and 3 similar, 1 and 2 random; with CLS
    x = rng.standard_normal((37, d))
    for w, base in ((0, rng.standard_normal(d)), (3, rng.standard_normal(d))):
        r0, c0 = (w // 2) * 3, (w % 2) * 3
        v = near(base, rng, 9, 0.1)
        for k in range(9):
            x[1 + (r0 + k // 3) * 6 + c0 + k % 3] = v[k]
    cases.append(merge_case("grid6_two_windows", x.astype(np.float32), 6, 6, 3, 0.8, True))
    # 5x5: one full window (merged), 16 remainder patches; no CLS
    x = rng.standard_normal((25, d))
    v = near(rng.standard_normal(d), rng, 9, 0.05)
    for k in range(9):
        x[(k // 3) * 5 + k % 3] = v[k]
    cases.append(merge_case("grid5_remainder", x.astype(np.float32), 5, 5, 3, 0.8, False))
    # 7x7: 4 full windows, windows 1 and 2 similar, 13 remainder patches; with CLS
    x = rng.standard_normal((50, d))
    for w in (1, 2):
        r0, c0 = (w // 2) * 3, (w % 2) * 3
        v = near(rng.standard_normal(d), rng, 9, 0.1 if w == 1 else 0.2)
        for k in range(9):
            x[1 + (r0 + k // 3) * 7 + c0 + k % 3] = v[k]
    cases.append(merge_case("grid7_remainder", x.astype(np.float32), 7, 7, 3, 0.8, True))
    # all merged: every patch near one vector
    x = np.concatenate([rng.standard_normal((1, d)), near(rng.standard_normal(d), rng, 36, 0.05)])
    cases.append(merge_case("grid6_all_merged", x.astype(np.float32), 6, 6, 3, 0.8, True))
    # nothing merged: random patches
    x = rng.standard_normal((37, d))
    cases.append(merge_case("grid6_nothing_merged", x.astype(np.float32), 6, 6, 3, 0.8, True))
    # ties: windows 1 and 2 hold identical patches (same order) -> identical similarity; window 3 lower
    x = rng.standard_normal((37, d))
    v = near(rng.standard_normal(d), rng, 9, 0.1)
    u = near(rng.standard_normal(d), rng, 9, 0.3)
    for w, vals in ((1, v), (2, v), (3, u)):
        r0, c0 = (w // 2) * 3, (w % 2) * 3
        for k in range(9):
            x[1 + (r0 + k // 3) * 6 + c0 + k % 3] = vals[k]
    cases.append(merge_case("grid6_tie", x.astype(np.float32), 6, 6, 3, 0.8, True))
    # exact threshold edges with unit axis vectors: window 0 = 9 x e0 (sim exactly 1), window 1 = 8 x e0 + e1
    # (sim exactly 56/72), windows 2, 3 alternate e2/e3 (low); a zero patch in window 3 (cos 0 by eps)
    e = np.eye(d)
    x = np.zeros((36, d))
    for k in range(9):
        x[(k // 3) * 6 + k % 3] = e[0]
        x[(k // 3) * 6 + 3 + k % 3] = e[1] if k == 4 else e[0]
        x[(3 + k // 3) * 6 + k % 3] = e[2 + k % 2]
        x[(3 + k // 3) * 6 + 3 + k % 3] = e[2 + k % 2] if k != 0 else np.zeros(d)
    x = x.astype(np.float32)
    cases.append(merge_case("exact_thr_1", x, 6, 6, 3, 1.0, False))                     # only window 0
    cases.append(merge_case("exact_thr_56_72", x, 6, 6, 3, 2 * 28.0 / 72, False))      # windows 0 and 1
    cases.append(merge_case("exact_thr_above", x, 6, 6, 3, 1.0000001, False))          # none
    # retained_tokens variant: 6x6, keep 20 -> r = (37-20)//8 = 2 (the threshold is ignored)
    x = rng.standard_normal((37, d))
    cases.append(merge_case("grid6_retained20", x.astype(np.float32), 6, 6, 3, 0.8, True, retained=20))
    # window 2 on a 5x4 grid (non-square: 2x2 windows of side 2, one remainder row)
    x = rng.standard_normal((20, d))
    v = near(rng.standard_normal(d), rng, 4, 0.05)
    for k in range(4):
        x[(k // 2) * 4 + 2 + k % 2] = v[k]
    cases.append(merge_case("grid5x4_window2", x.astype(np.float32), 5, 4, 2, 0.8, False))
    return cases


# ---------------------------------------------------------------- stage A: key set
def key_set(cls_logits, share):
    """cls_logits [H, 1+n]: CLS-row logits of the last block. topk(ceil(share*n)) of the head-mean."""
    attn = softmax(cls_logits).mean(axis=0)[1:]
    n = attn.shape[0]
    k = math.ceil(share * n)
    order = np.lexsort((np.arange(n), -attn))[:k]
    return attn, sorted(int(i) for i in order)


def build_key_cases():
    rng = np.random.default_rng(5)
    cases = []
    for name, h, n, share, tie in (("n25_share0.08", 3, 25, 0.08, False),     # ceil(2.0) = 2
                                   ("n12_single_key", 2, 12, 0.08, False),    # ceil(0.96) = 1: the code crashes
                                   ("n30_tie_at_cut", 2, 30, 0.1, True),      # 3 keys, columns 4 and 9 tie
                                   ("n10_share0", 2, 10, 0.0, False),
                                   ("n10_share1", 2, 10, 1.0, False)):
        while True:
            logits = (rng.standard_normal((h, 1 + n)) * 2).astype(np.float32)
            if tie:
                top = np.argsort(-softmax(logits).mean(axis=0)[1:])
                a, b = 1 + int(top[2]), 1 + int(top[3])
                logits[:, b] = logits[:, a]      # rank-4 column copies rank 3 -> exact tie across the cut
            attn, keys = key_set(logits, share)
            k = len(keys)
            s = np.sort(attn)[::-1]
            if tie or k == 0 or k >= n or s[k - 1] - s[k] >= 1e-5:
                break
        cases.append({"name": name, "heads": h, "n": n, "key_share": share, "cls_logits": f32_list(logits),
                      "cls_attention": f64_list(attn), "keys": keys})
    return cases


# ---------------------------------------------------------------- stage B: dual-attention filter
def dual_attention_filter(attn, v_start, img_seq, gthr, ithr):
    """attn [H, L, L] probabilities -> kept indices into the vision block (the code's function)."""
    total = attn.shape[1]
    text_seq = total - img_seq - v_start
    a = attn[:, v_start + img_seq:, v_start:v_start + img_seq].mean(axis=0)
    a_sum = a.sum(axis=0)
    cand = (a_sum < a_sum.sum() * gthr) & (a.max(axis=0) < ithr)
    return np.arange(img_seq)[~cand], text_seq


def filter_from_a(a, keys, gthr, ithr):
    """The same on an already head-averaged [T, V] block, plus the key union and key re-indexing."""
    a = a.astype(np.float64)
    a_sum = a.sum(axis=0)
    cand = (a_sum < a_sum.sum() * gthr) & (a.max(axis=0) < ithr)
    vis = np.arange(a.shape[1])[~cand]
    vis = np.unique(np.concatenate([vis, np.array(keys, dtype=np.int64)]))
    new_keys = [int(i) for i in np.nonzero(np.isin(vis, keys))[0]]     # no squeeze(): 1 key stays a list
    return [int(v) for v in vis], new_keys


def build_filter_cases():
    rng = np.random.default_rng(3)
    cases = []
    h, sys_len, vis, text = 2, 3, 10, 4
    seq = sys_len + vis + text
    logits = (rng.standard_normal((h, text, seq)) * 1.5).astype(np.float32)
    for i in range(text):   # causal: text row i sits at sys+vis+i and sees keys <= itself
        logits[:, i, sys_len + vis + i + 1:] = -np.inf
    full = np.zeros((h, seq, seq))
    full[:, sys_len + vis:, :] = softmax(logits)
    a = full[:, sys_len + vis:, sys_len:sys_len + vis].mean(axis=0)     # [T, V]
    a32 = a.astype(np.float32)
    share = a32.astype(np.float64).sum(axis=0) / a32.astype(np.float64).sum()
    mx = a32.astype(np.float64).max(axis=0)
    ss = np.sort(share)
    ms = np.sort(mx)
    g_mid = float((ss[4] + ss[5]) / 2)        # between the 5th and 6th smallest shares
    a_mid = float((ms[6] + ms[7]) / 2)
    settings = [("neutral_code_defaults", 1.0, 0.0, [2]),
                ("gamma_only", g_mid, 1.0, [2]),
                ("alpha_only", 1.0, a_mid, []),
                ("both", g_mid, a_mid, [0, 7]),
                ("drop_all_but_single_key", 10.0, 10.0, [6]),
                ("drop_all_no_keys", 10.0, 10.0, [])]
    for name, gthr, ithr, keys in settings:
        kept_code, text_seq = dual_attention_filter(full.astype(np.float64), sys_len, vis, gthr, ithr)
        assert text_seq == text
        kept, new_keys = filter_from_a(a32, keys, gthr, ithr)
        assert set(kept) == set(int(k) for k in kept_code) | set(keys)
        cases.append({"name": name, "global_thr": gthr, "individual_thr": ithr, "keys": keys, "kept": kept,
                      "key_positions": new_keys,
                      "rows": [int(r) for r in np.concatenate([np.arange(sys_len), sys_len + np.array(kept, dtype=int),
                                                               np.arange(sys_len + vis, seq)])]})
    # exact edges on dyadic values: g = [0.75, 0.5, 0.375, 0.375], sum 2, max = [0.5, 0.25, 0.25, 0.25]
    exact = np.array([[0.25, 0.25, 0.25, 0.25], [0.5, 0.25, 0.125, 0.125]], dtype=np.float32)
    exact_cases = []
    for name, gthr, ithr in (("g_equal_bound_kept", 0.1875, 0.5), ("g_below_bound_dropped", 0.19, 0.5),
                             ("m_equal_alpha_kept", 0.19, 0.25)):
        kept, new_keys = filter_from_a(exact, [], gthr, ithr)
        exact_cases.append({"name": name, "global_thr": gthr, "individual_thr": ithr, "kept": kept})
    logits_json = [None if math.isinf(v) else v for v in f32_list(logits)]      # null = -inf (masked)
    return {"heads": h, "sys": sys_len, "visual": vis, "text": text, "logits": logits_json,
            "attention": f32_list(a32), "cases": cases,
            "exact": {"text": 2, "visual": 4, "attention": f32_list(exact), "cases": exact_cases}}


# ---------------------------------------------------------------- stage C: KV plan (the code's loop)
def kv_plan(num_layers, pruning_layers, l0, stage_rows, stage_c=True):
    lengths = [l0] + [len(r) for r in stage_rows]
    final_indices = [np.array(r) for r in stage_rows]
    for i in range(len(final_indices) - 1, 0, -1):
        final_indices[i - 1] = final_indices[i - 1][final_indices[i]]
    originals = [np.arange(l0)]                                # original row of each entry of each stage seq
    for r in stage_rows:
        originals.append(originals[-1][np.array(r)])
    keep, tokens = [], []
    # which stage sequence each layer ran on (layer p_s runs on stage s's input)
    ran_on = []
    s = 0
    for l in range(num_layers):
        ran_on.append(s)
        if s < len(pruning_layers) and l == pruning_layers[s]:
            s += 1
    if not stage_c:
        for l in range(num_layers):
            keep.append(list(range(lengths[ran_on[l]])))
            tokens.append([int(t) for t in originals[ran_on[l]]])
        return keep, tokens
    for i in range(pruning_layers[0]):                          # not pruned (0 .. p0-1)
        keep.append(list(range(l0)))
        tokens.append(list(range(l0)))
    stage = 0
    for i in range(pruning_layers[0], pruning_layers[-1] + 1):  # gathered with final_indices[stage]
        keep.append([int(t) for t in final_indices[stage]])
        tokens.append([int(t) for t in originals[stage][final_indices[stage]]])
        if i == pruning_layers[stage]:
            stage += 1
    for i in range(pruning_layers[-1] + 1, num_layers):         # already final (the code: range(.., 32))
        keep.append(list(range(lengths[-1])))
        tokens.append([int(t) for t in originals[-1]])
    return keep, tokens


def build_kv_cases():
    rng = np.random.default_rng(9)
    cases = []
    for name, num_layers, pls, l0 in (("l8_three_stages", 8, [1, 3, 5], 20), ("l4_scaled", 4, [0, 1, 2], 12),
                                      ("l6_one_stage", 6, [2], 10)):
        rows, n = [], l0
        for _ in pls:
            k = int(rng.integers(max(1, n // 2), n))
            r = sorted(int(v) for v in rng.choice(n, size=k, replace=False))
            rows.append(r)
            n = k
        for stage_c in (True, False):
            keep, tokens = kv_plan(num_layers, pls, l0, rows, stage_c)
            final_len = len(rows[-1])
            pos = [[len(keep[l]) + t for t in range(3)] for l in range(num_layers)]
            cases.append({"name": name + ("" if stage_c else "_stage_c_off"), "layers": num_layers,
                          "pruning_layers": pls, "initial_length": l0, "stage_rows": rows, "stage_c": stage_c,
                          "keep": keep, "tokens": tokens, "final_length": final_len,
                          "decode_positions_own": pos})
    return cases


# ---------------------------------------------------------------- all LM stages chained (code's forward loop)
def build_pipeline_case():
    """Three pruning points on an 8-layer LM: filter + key union + key re-indexing + merged_indices at each,
    then the KV plan and the layer-averaged count (num_token_pool)."""
    seed = 21
    while True:
        rng = np.random.default_rng(seed)
        h, sys_len, vis0, text, layers, pls = 2, 2, 14, 3, 8, [1, 3, 5]
        gthr, ithr = 0.05, 0.12
        keys = [3, 10]
        vis = vis0
        stages, num_token, ok = [], [], True
        seq_rows, l0 = [], sys_len + vis0 + text
        for l in range(layers):
            if l in pls:
                seq = sys_len + vis + text
                logits = (rng.standard_normal((h, text, seq)) * 1.5).astype(np.float32)
                for i in range(text):
                    logits[:, i, sys_len + vis + i + 1:] = -np.inf
                a = softmax(logits).mean(axis=0)[:, sys_len:sys_len + vis].astype(np.float32)
                a64 = a.astype(np.float64)
                share = a64.sum(axis=0) / a64.sum()
                if np.min(np.abs(share - gthr)) < 1e-6 or np.min(np.abs(a64.max(axis=0) - ithr)) < 1e-6:
                    ok = False
                kept, new_keys = filter_from_a(a, keys, gthr, ithr)
                rows = [int(r) for r in np.concatenate([np.arange(sys_len), sys_len + np.array(kept, dtype=int),
                                                        np.arange(sys_len + vis, seq)])]
                stages.append({"layer": l, "visual": vis, "keys": keys, "attention": f32_list(a), "kept": kept,
                               "key_positions": new_keys, "rows": rows})
                seq_rows.append(rows)
                vis, keys = len(kept), new_keys
            num_token.append(vis)
        if ok and vis < vis0:
            break
        seed += 1
    keep, tokens = kv_plan(layers, pls, l0, seq_rows)
    return {"heads": h, "sys": sys_len, "text": text, "layers": layers, "pruning_layers": pls,
            "global_thr": gthr, "individual_thr": ithr, "initial_visual": vis0, "stages": stages,
            "keep": keep, "tokens": tokens, "mean_visual_tokens": sum(num_token) / layers}


write("mustdrop", "mustdrop.json", {
    "generator": "gen_golden_mustdrop.py, numpy " + np.__version__,
    "merge": build_merge_cases(),
    "keys": build_key_cases(),
    "filter": build_filter_cases(),
    "kv": build_kv_cases(),
    "pipeline": build_pipeline_case(),
})
