"""Golden values for dev.tokenpress.operators.contrast.Damro (DAMRO, coder-gx/DAMRO @03008ac).

Written from the reference code's semantics (notes: damro-var-vmtc.md section 1), in torch:
  LLaVA (modeling_llava.py): hooks on layers[vision_feature_layer].self_attn.{q_proj,k_proj}
      attn = softmax(q @ k.T * C**-0.5) over the full width C (no head split); row 0 (CLS),
      keys 1..N; torch.topk(attn, k) -> indices in descending-score order.
  InstructBLIP (modeling_instructblip.py): heads split, per-head softmax with scale d**-0.5,
      mean over heads; row 0, keys 1..N; topk.  (The reference then indexes image_embeds, which
      still holds CLS, with these 0-based patch indices; tokenpress indexes patches, i.e. fixes it.)
  sample_method/sample.py::_sample:
      cut = log(beta) + logits.max(); s = (1+alpha)*l - alpha*l_cd; s[l < cut] = -inf
Every outlier case has a score gap >= 1e-4 at the cut so float32 rounding cannot flip it, and no
ties inside the top k (so the order is defined).

Model: 3 heads of width 4 (C = 12), a 4x4 patch grid + CLS = 17 tokens.

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_damro.py
Writes operators/src/test/resources/golden/damro/damro.json.
"""
import numpy as np
import torch

from golden_common import f32_list, f64_list, margin_ok, write

H, DH, ROWS, COLS = 3, 4, 4, 4
C = H * DH
P = ROWS * COLS
T = P + 1
KS = [1, 4, 7]


def llava_topk(q, k, kk):
    # q, k: [T, C] (the q_proj / k_proj outputs, heads concatenated)
    attn = torch.softmax(q @ k.T * C ** -0.5, dim=-1)
    cls = attn[0, 1:]
    return cls, torch.topk(cls, kk).indices.tolist()


def instructblip_topk(q, k, kk):
    qh = q.reshape(T, H, DH).permute(1, 0, 2)   # [H, T, DH]
    kh = k.reshape(T, H, DH).permute(1, 0, 2)
    attn = torch.softmax(qh @ kh.transpose(1, 2) * DH ** -0.5, dim=-1).mean(dim=0)
    cls = attn[0, 1:]
    return cls, torch.topk(cls, kk).indices.tolist()


def distinct_top(scores, kk):
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1][:kk + 1]
    return np.all(np.diff(s) <= -1e-4) and margin_ok(scores, kk, 1e-4)


seed = 3
while True:
    rng = np.random.default_rng(seed)
    q32 = (rng.standard_normal((T, C)) * 1.5).astype(np.float32)
    k32 = (rng.standard_normal((T, C)) * 1.5).astype(np.float32)
    q = torch.tensor(q32, dtype=torch.float64)
    k = torch.tensor(k32, dtype=torch.float64)
    cases = []
    ok = True
    for kk in KS:
        s1, top1 = llava_topk(q, k, kk)
        s2, top2 = instructblip_topk(q, k, kk)
        if not (distinct_top(s1.numpy(), kk) and distinct_top(s2.numpy(), kk)):
            ok = False
            break
        cases.append({"k": kk, "concat_logits": top1, "head_mean_prob": top2})
    if ok and any(c["concat_logits"] != c["head_mean_prob"] for c in cases):
        break
    seed += 1

# head-resolved CLS logits q_h(CLS).k_h(j)/sqrt(d): what the runtime's VitClsLogits signal holds
qh = q.reshape(T, H, DH).permute(1, 0, 2)
kh = k.reshape(T, H, DH).permute(1, 0, 2)
cls_logits = (qh[:, 0:1, :] @ kh.transpose(1, 2))[:, 0, :] * DH ** -0.5   # [H, T]
_, full = llava_topk(q, k, P)
head_mean, _ = instructblip_topk(q, k, 1)

# contrastive combination with the plausibility cut
V = 40
crng = np.random.default_rng(11)
contrast = []
for alpha, beta in [(2.0, 0.1), (0.5, 0.1), (1.0, 0.5), (0.0, 0.1), (2.0, 1.0)]:
    l = torch.tensor((crng.standard_normal(V) * 3).astype(np.float32), dtype=torch.float64)
    lcd = torch.tensor((crng.standard_normal(V) * 3).astype(np.float32), dtype=torch.float64)
    # make the cut matter: a token just under the cut with a very low branch logit
    i = int(torch.argmin(l))
    lcd[i] = -50.0
    cut = np.log(beta) + l.max()
    s = (1 + alpha) * l - alpha * lcd
    s = s.masked_fill(l < cut, -float("inf"))
    uncut = (1 + alpha) * l - alpha * lcd
    contrast.append({
        "alpha": alpha, "beta": beta,
        "logits": f32_list(l.numpy()), "branch_logits": f32_list(lcd.numpy()),
        "expected": [None if np.isinf(x) else float(x) for x in s.numpy()],
        "greedy": int(torch.argmax(s)),
        "greedy_without_cut": int(torch.argmax(uncut)),
    })

write("damro", "damro.json", {
    "generator": "gen_golden_damro.py, torch " + torch.__version__ + ", numpy " + np.__version__
                 + f", rng seed {seed}",
    "heads": H, "head_dim": DH, "patch_rows": ROWS, "patch_cols": COLS,
    "q": f32_list(q32), "k": f32_list(k32),            # [T, C] row-major, heads concatenated
    "cls_logits": f64_list(cls_logits.numpy()),         # [H, T]
    "concat_order": full,                                # all patches, LLaVA ranking
    "head_mean_prob": f64_list(head_mean.numpy()),      # [P]
    "outliers": cases,
    "contrast": contrast,
})
print("seed", seed, cases)
