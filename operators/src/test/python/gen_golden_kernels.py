"""Golden values for dev.tokenpress.operators.tensor.Kernels (softmax, head-mean softmax, top-k).

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_kernels.py
      (numpy 1.24.2; the default python3 has no numpy)
Writes operators/src/test/resources/golden/kernels/kernels.json.
"""
import numpy as np

from golden_common import f32_list, f64_list, softmax, topk_rank_order, write

rng = np.random.default_rng(20240601)

softmax_cases = []
for n, scale in [(1, 1.0), (7, 1.0), (7, 40.0), (577, 3.0), (2880, 8.0)]:
    x = (rng.standard_normal(n) * scale).astype(np.float32)
    softmax_cases.append({"name": f"n{n}_scale{scale}", "logits": f32_list(x),
                          "probs": f64_list(softmax(x))})
# Masked (-inf) entries must give exactly 0. JSON has no -inf: the test maps null to -Infinity.
x = (rng.standard_normal(9) * 2).astype(np.float32)
masked = x.astype(np.float64).copy()
masked[[2, 5, 8]] = -np.inf
softmax_cases.append({"name": "masked", "logits": [None if np.isinf(v) else float(np.float32(v)) for v in masked],
                      "probs": f64_list(softmax(masked))})
# Large logits: exp would overflow without max subtraction.
x = np.array([1000.0, 999.0, 998.5, -1000.0], dtype=np.float32)
softmax_cases.append({"name": "large", "logits": f32_list(x), "probs": f64_list(softmax(x))})

heads, length = 3, 17
logits = (rng.standard_normal((heads, length)) * 2.5).astype(np.float32)
head_mean = {"heads": heads, "len": length, "logits": f32_list(logits),
             "mean": f64_list(softmax(logits).mean(axis=0))}

topk_cases = []
# Hand-made ties: equal scores resolve to the lower index; -0.0 equals 0.0.
tie = np.array([0.5, 0.25, 0.5, 1.0, 0.25, 0.5, -0.0, 0.0, -1.0], dtype=np.float32)
ks = [0, 1, 2, 3, 4, 6, 9, 12]
topk_cases.append({"name": "ties", "scores": f32_list(tie), "k": ks,
                   "expected": [topk_rank_order(tie, min(k, len(tie))) for k in ks]})
# Random with many duplicates (values on a coarse grid) and awkward sizes.
for n in [1, 7, 576, 2880]:
    s = (rng.integers(-20, 20, n) / 4.0).astype(np.float32)
    ks = sorted({0, 1, min(5, n), n // 3, n})
    topk_cases.append({"name": f"grid_n{n}", "scores": f32_list(s), "k": [int(k) for k in ks],
                       "expected": [topk_rank_order(s, k) for k in ks]})

write("kernels", "kernels.json", {
    "generator": "gen_golden_kernels.py, numpy " + np.__version__,
    "softmax": softmax_cases,
    "head_mean_softmax": head_mean,
    "topk": topk_cases,
})
