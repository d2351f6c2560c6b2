"""Goldens for TensorCodec float16/bfloat16 encoding and affine dequantisation.

Run with /usr/bin/python3 (numpy 1.24):
    /usr/bin/python3 gen_golden_fp16.py  # -> ../resources/golden/codec.json
float16 comes from numpy's astype (IEEE round-to-nearest-even); bfloat16 is computed from the
float32 bits with round-to-nearest-even, as torch does.
"""
import json
import os

import numpy as np

rng = np.random.default_rng(1234)
specials = np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8,
                     1e-9, 0.1, 1 / 3, np.pi, np.inf, -np.inf, 1.0009765625, 1.00048828125, 1.00146484375],
                    dtype=np.float32)
values = np.concatenate([specials, rng.normal(0, 3, 200).astype(np.float32),
                         (rng.normal(0, 1e-5, 50)).astype(np.float32)])
half_bits = values.astype(np.float16).view(np.uint16)
f32_bits = values.view(np.uint32).astype(np.uint64)
bf16_bits = ((f32_bits + 0x7FFF + ((f32_bits >> 16) & 1)) >> 16).astype(np.uint16)

# Affine dequantisation: uint8 codes of 4 bits packed low nibble first, logical shape [2, 3, 8],
# keys grouped along T (group 2), values grouped along D (group 4).
H, T, D, G = 2, 3, 8, 2
codes = rng.integers(0, 16, size=(H, T, D)).astype(np.uint8)
flat = codes.reshape(-1)
packed = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)
k_scales = rng.normal(0, 1, (H, (T + G - 1) // G, D)).astype(np.float16)
k_zeros = rng.normal(0, 1, (H, (T + G - 1) // G, D)).astype(np.float16)
k_deq = np.empty((H, T, D), dtype=np.float32)
for h in range(H):
    for t in range(T):
        for d in range(D):
            k_deq[h, t, d] = np.float32(codes[h, t, d]) * np.float32(k_scales[h, t // G, d]) + np.float32(k_zeros[h, t // G, d])
VG = 4
v_scales = rng.normal(0, 1, (H, T, D // VG)).astype(np.float16)
v_deq = np.empty((H, T, D), dtype=np.float32)
for h in range(H):
    for t in range(T):
        for d in range(D):
            v_deq[h, t, d] = np.float32(codes[h, t, d]) * np.float32(v_scales[h, t, d // VG])

out = {
    "numpy": np.__version__,
    "float32_bits": [int(b) for b in values.view(np.uint32)],
    "float16_bits": [int(b) for b in half_bits],
    "bfloat16_bits": [int(b) for b in bf16_bits],
    "quant": {
        "shape": [H, T, D], "bits": 4,
        "packed": [int(b) for b in packed],
        "k_group": G, "k_scales": [int(b) for b in k_scales.view(np.uint16).reshape(-1)],
        "k_scales_shape": list(k_scales.shape),
        "k_zeros": [int(b) for b in k_zeros.view(np.uint16).reshape(-1)],
        "k_deq_bits": [int(b) for b in k_deq.view(np.uint32).reshape(-1)],
        "v_group": VG, "v_scales": [int(b) for b in v_scales.view(np.uint16).reshape(-1)],
        "v_scales_shape": list(v_scales.shape),
        "v_deq_bits": [int(b) for b in v_deq.view(np.uint32).reshape(-1)],
    },
}
path = os.path.join(os.path.dirname(__file__), "..", "resources", "golden", "codec.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path)
