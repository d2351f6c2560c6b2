"""Golden values for dev.tokenpress.operators.merge.ToMe (Bolya et al., ICLR 2023, arXiv 2210.09461).

An independent float64 numpy statement of one layer of ToMe as the paper and the authors' code
(facebookresearch/ToMe, read for understanding, not copied) define it: bipartite soft matching and
the size-weighted merge.
Per layer: metric = keys averaged over heads, L2-normalised; A = rows 0,2,4,.., B = rows 1,3,..;
CLS (row 0) never merged; r = min(r, (T - protected) // 2); the r A rows with the best match are
merged into their B rows, size-weighted; output = unmerged A (sorted when there is a CLS token),
then B. Ties (unspecified by the authors) go to the lower index: the lowest B row for a match, the
lower A row in the edge order (numpy: argmax and a stable sort). Inputs are random float32 with
near ties rejected (every compared gap >= 1e-4) except exact ties built from duplicated rows.

Each case gives x [T, D], initial sizes, per-head key projections W [H, D, C] (keys of a layer =
x @ W_h of that layer's input) and r per layer; expected: the output rows as groups of input rows
(sorted), their sizes, and the merged x (float64 means of float32 inputs).

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_tome.py
      (numpy 1.24.2 from Debian's python3-numpy)
Writes operators/src/test/resources/golden/tome/tome.json.
"""
import math

import numpy as np

from golden_common import f32_list, f64_list, write


def metric_of(x, w):
    """Keys averaged over heads: mean_h x @ W_h, [T, C] (float64)."""
    return np.mean(np.stack([x @ w[h] for h in range(w.shape[0])]), axis=0)


def match_numpy(metric, r, cls):
    t = metric.shape[0]
    protected = 1 if cls else 0
    r = min(r, (t - protected) // 2)
    if r <= 0:
        return None
    m = metric / np.linalg.norm(metric, axis=-1, keepdims=True)
    a, b = m[0::2], m[1::2]
    scores = a @ b.T
    if cls:
        scores[0, :] = -math.inf
    node_max = scores.max(axis=-1)
    node_idx = scores.argmax(axis=-1)  # first maximum: lowest B row on ties
    edge = np.argsort(-node_max, kind="stable")  # descending, lower A row on ties
    unm, src = edge[r:], edge[:r]
    if cls:
        unm = np.sort(unm)
    dst = node_idx[src]
    return r, unm, src, dst, scores, node_max


def merge_numpy(x, size, groups_in, plan):
    """Applies one layer's plan to x, size and the input-row groups; returns the new triple."""
    r, unm, src, dst, _, _ = plan
    a_rows = np.arange(0, x.shape[0], 2)
    b_rows = np.arange(1, x.shape[0], 2)
    out_x, out_s, out_g = [], [], []
    for i in unm:
        row = a_rows[i]
        out_x.append(x[row]); out_s.append(size[row]); out_g.append(groups_in[row])
    for j, row in enumerate(b_rows):
        members = [row] + [a_rows[i] for i, d in zip(src, dst) if d == j]
        s = sum(size[k] for k in members)
        out_x.append(sum(size[k] * x[k] for k in members) / s)
        out_s.append(s)
        out_g.append(sorted(g for k in members for g in groups_in[k]))
    return np.array(out_x), np.array(out_s), out_g


def gaps_ok(plan, min_gap=1e-4):
    """No near tie: best vs second-best match of every A row, and edge order around the r cut."""
    if plan is None:
        return True
    r, _, _, _, scores, node_max = plan
    for i in range(scores.shape[0]):
        row = np.sort(scores[i][np.isfinite(scores[i])])[::-1]
        if len(row) > 1 and 0 < row[0] - row[1] < min_gap:
            return False
    finite = np.sort(node_max[np.isfinite(node_max)])[::-1]
    diffs = finite[:-1] - finite[1:]
    return not np.any((diffs > 0) & (diffs < min_gap))


def run_case(name, t, d, heads, c, r_list, cls, seed, sizes=None, duplicate=None):
    rng = np.random.default_rng(seed)
    while True:
        x = rng.standard_normal((t, d)).astype(np.float32)
        if duplicate:
            for dst_row, src_row in duplicate:
                x[dst_row] = x[src_row]
        w = (rng.standard_normal((len(r_list), heads, d, c)) / math.sqrt(d)).astype(np.float32)
        size = np.ones(t) if sizes is None else np.array(sizes, dtype=np.float64)
        cur = x.astype(np.float64)
        groups = [[i] for i in range(t)]
        ok = True
        for layer, r in enumerate(r_list):
            metric = metric_of(cur, w[layer].astype(np.float64))
            plan = match_numpy(metric, r, cls)
            if not duplicate and not gaps_ok(plan):
                ok = False
                break
            if plan is not None:
                cur, size, groups = merge_numpy(cur, size, groups, plan)
        if ok:
            break
        seed += 1000
        rng = np.random.default_rng(seed)
    return {
        "name": name, "cls": cls, "heads": heads, "key_dim": c, "dim": d, "tokens": t, "r": r_list,
        "x": f32_list(x), "sizes_in": f64_list(np.ones(t) if sizes is None else sizes),
        "w": f32_list(w),
        "groups": [[int(g) for g in grp] for grp in groups],
        "sizes": f64_list(size),
        "x_out": f64_list(cur),
    }


cases = [
    run_case("odd_tokens", 9, 6, 2, 4, [3], True, 1),
    run_case("r_max_even_tokens", 10, 6, 2, 4, [4], True, 2),
    run_case("r_zero", 9, 6, 2, 4, [0], True, 3),
    run_case("ties", 9, 6, 2, 4, [2], True, 4, duplicate=[(3, 1), (5, 1), (7, 1), (2, 4)]),
    run_case("sizes_in", 11, 6, 2, 4, [2], True, 5, sizes=[1, 2, 1, 3, 1, 1, 2, 1, 1, 1, 4]),
    run_case("three_layers", 13, 8, 3, 4, [3, 2, 2], True, 6),
    run_case("no_cls_all_merged", 8, 6, 2, 4, [4], False, 7),
]
write("tome", "tome.json", {"cases": cases})
print("wrote", len(cases), "cases")
