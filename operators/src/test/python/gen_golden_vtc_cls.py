"""Golden values for dev.tokenpress.operators.prune.VtcCls (VTC-CLS, THU-MIG/VTC-CLS @e41ac9b).

Reference semantics (clip_encoder.py::cls_token_only, llava_arch.py::encode_images):
  attentions[l]  = softmax over all ViT tokens (CLS + patches) of the CLS row, per head
  cls_attn_l     = attentions[l].mean(over heads)[0, 1:]            # drop the CLS column
  score          = sum(cls_attn_l for l in attentions[start_layer:-1])   # layers start..L-2
  kept           = topk(score, token_num), then sorted ascending (spatial order)
Tie-break (not specified by torch.topk): higher score first, lower index on ties; every case
below has a gap >= 1e-4 at the cut, so float32/float64 differences cannot flip the set.

Model: ViT with L = 4 layers, 3 heads, a 4x4 patch grid + CLS = 17 tokens.
The CLS-row logits of all L layers are given; layers outside start..L-2 must not count.

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_vtc_cls.py
      (numpy 1.24.2; the default python3 has no numpy)
Writes operators/src/test/resources/golden/vtc_cls/vtc_cls.json.
"""
import numpy as np

from golden_common import f32_list, f64_list, margin_ok, round_half_up, softmax, topk_rank_order, write

L, H, ROWS, COLS = 4, 3, 4, 4
P = ROWS * COLS
T = P + 1

# (name, start_layer, budget key, budget value)
CASES = [
    ("start1_keep5", 1, "keep", 5),
    ("start1_keep8", 1, "keep", 8),
    ("start0_keep3", 0, "keep", 3),
    ("start2_keep4", 2, "keep", 4),
    ("start1_keep_ratio0.3", 1, "keep_ratio", 0.3),   # 0.3 * 16 = 4.8 -> 5
    ("start1_keep16_all", 1, "keep", 16),
    ("start1_keep40_more_than_n", 1, "keep", 40),
]


def keep_count(key, value, n):
    if key == "keep":
        return min(value, n)
    if key == "keep_ratio":
        return max(0, min(n, round_half_up(value * n)))
    return max(0, min(n, round_half_up((1.0 - value) * n)))


seed = 7
while True:
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((L, H, T)) * 2.0).astype(np.float32)   # CLS-row logits
    attentions = [softmax(logits[l]) for l in range(L)]                   # [H, T] per layer
    cls_attn = np.stack([a.mean(axis=0)[1:] for a in attentions])         # [L, P]
    cases = []
    ok = True
    for name, start, key, value in CASES:
        score = np.sum(np.stack([a.mean(axis=0)[1:] for a in attentions[start:-1]]), axis=0)
        k = keep_count(key, value, P)
        if not margin_ok(score, k, 1e-4):
            ok = False
            break
        kept = sorted(topk_rank_order(score, k))
        cases.append({"name": name, "layers": f"{start}..L-2", key: value,
                      "scores": f64_list(score), "kept": kept})
    if ok:
        break
    seed += 1

write("vtc_cls", "vtc_cls.json", {
    "generator": "gen_golden_vtc_cls.py, numpy " + np.__version__ + f", rng seed {seed}",
    "vit_layers": L, "heads": H, "patch_rows": ROWS, "patch_cols": COLS,
    "cls_logits": f32_list(logits),          # [L, H, T] row-major, CLS row only
    "cls_attention": f64_list(cls_attn),     # [L, P]: expected ClsAttention(l) values
    "cases": cases,
})
