"""Golden values for dev.tokenpress.operators.prune.FastV (Chen et al., arXiv 2403.06764).

Reference semantics (fast_v_* code paths, inplace mode), at the start of decoder layer K:
  A     = attention probabilities of layer K-1, [heads, S, S], causal, softmax per head
  row   = A.mean(over heads)[-1]                    # last prompt token's row, over all S keys
  image = row[image rows]
  top   = topk(image, round((1-R) * N)) with the higher score first, lower row on ties
  keep_indexs = sorted(text rows + top image rows); position_ids = original positions of those
Rounding: floor(x + 0.5) (tokenpress' rule; Python's round() would round 6.5 to 6).
Every case has a gap >= 1e-4 at the cut.

Sequence of case "plain": 5 system rows, 12 image rows, 6 text rows (S = 23), 4 heads.
Case "after_repack": the same but the visual span had 16 tokens of which a pre-LLM drop kept
12 (visual indices below) with re-packed positions; FastV must keep those positions.
Only the last row's logits are needed: the last query sees every key (causal mask is a no-op).

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_fastv.py
      (numpy 1.24.2; the default python3 has no numpy)
Writes operators/src/test/resources/golden/fastv/fastv.json.
"""
import numpy as np

from golden_common import f32_list, f64_list, margin_ok, round_half_up, softmax, topk_rank_order, write

HEADS, PREFIX, NVIS, SUFFIX = 4, 5, 12, 6
S = PREFIX + NVIS + SUFFIX

# Layout "plain": original index = row, position = row.
plain = {
    "original_index": list(range(S)),
    "position_id": list(range(S)),
    "visual_index": [-1] * PREFIX + list(range(NVIS)) + [-1] * SUFFIX,
}
# Layout "after_repack": 16 visual tokens originally; kept visual indices below, positions re-packed.
kept_vis = [0, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15]
after_repack = {
    "original_index": list(range(PREFIX)) + [PREFIX + v for v in kept_vis]
                      + [PREFIX + 16 + j for j in range(SUFFIX)],
    "position_id": list(range(S)),
    "visual_index": [-1] * PREFIX + kept_vis + [-1] * SUFFIX,
}

# (name, layout name, K, budget key, budget value)
CASES = [
    ("plain_R0.5", "plain", 2, "drop_ratio", 0.5),      # keep 6
    ("plain_R0.75", "plain", 2, "drop_ratio", 0.75),    # keep 3
    ("plain_R0.3", "plain", 3, "drop_ratio", 0.3),      # 8.4 -> 8
    ("plain_keep5", "plain", 2, "keep", 5),
    ("plain_R0", "plain", 2, "drop_ratio", 0.0),        # keep all
    ("after_repack_R0.5", "after_repack", 2, "drop_ratio", 0.5),
]
LAYOUTS = {"plain": plain, "after_repack": after_repack}


def keep_count(key, value, n):
    if key == "keep":
        return min(value, n)
    if key == "keep_ratio":
        return max(0, min(n, round_half_up(value * n)))
    return max(0, min(n, round_half_up((1.0 - value) * n)))


seed = 11
while True:
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((HEADS, S)) * 2.0).astype(np.float32)  # last row, per head
    row = softmax(logits).mean(axis=0)                                   # [S]
    cases, ok = [], True
    for name, lname, K, key, value in CASES:
        lay = LAYOUTS[lname]
        vis_rows = [r for r in range(S) if lay["visual_index"][r] >= 0]
        k = keep_count(key, value, len(vis_rows))
        image = row[vis_rows]
        if not margin_ok(image, k, 1e-4):
            ok = False
            break
        top = [vis_rows[i] for i in topk_rank_order(image, k)]
        keep_rows = sorted([r for r in range(S) if lay["visual_index"][r] < 0] + top)
        cases.append({
            "name": name, "layout": lname, "layer": K, key: value,
            "kept_rows": keep_rows,
            "kept_position_id": [lay["position_id"][r] for r in keep_rows],
            "kept_original_index": [lay["original_index"][r] for r in keep_rows],
        })
    if ok:
        break
    seed += 1

write("fastv", "fastv.json", {
    "generator": "gen_golden_fastv.py, numpy " + np.__version__ + f", rng seed {seed}",
    "heads": HEADS, "seq_len": S,
    "last_row_logits": f32_list(logits),   # [HEADS, S] row-major
    "attention_row": f64_list(row),        # expected QueryRowAttention value, [1, S]
    "layouts": LAYOUTS,
    "cases": cases,
})
