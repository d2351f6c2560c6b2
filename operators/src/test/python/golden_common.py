"""Shared helpers for the golden generators in this directory.

Independent of the Java code: plain numpy (float64 arithmetic on float32 inputs).
Run every generator with the system interpreter, which has numpy 1.24:

    cd operators/src/test/python && /usr/bin/python3 gen_golden_kernels.py
"""
import json
import os

import numpy as np

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "resources", "golden")


def f32_list(a):
    """Exact decimal text of float32 values (Python float repr round-trips the float32)."""
    return [float(np.float32(x)) for x in np.asarray(a, dtype=np.float32).ravel()]


def f64_list(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def softmax(x):
    """Stable softmax along the last axis in float64; -inf entries give 0."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=-1, keepdims=True)


def topk_rank_order(scores, k):
    """Indices of the k largest scores: higher score first, lower index on ties."""
    scores = np.asarray(scores, dtype=np.float64)
    idx = np.arange(len(scores))
    order = np.lexsort((idx, -scores))  # last key is primary
    return [int(i) for i in order[:k]]


def round_half_up(x):
    return int(np.floor(np.float64(x) + 0.5))


def margin_ok(scores, k, min_gap):
    """True when the k-th and (k+1)-th scores differ by at least min_gap (no near-tie at the cut)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if k <= 0 or k >= len(s):
        return True
    return s[k - 1] - s[k] >= min_gap


def write(sub, name, obj):
    d = os.path.join(GOLDEN_DIR, sub)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(path))
