"""Golden values for dev.tokenpress.operators.merge.Vmtc (VMTC, arXiv 2411.15453, reconstructed).

The paper's method section is not available; this script implements the reconstruction the Java
javadoc specifies (primary tokens by importance, seeded k-means++ and Lloyd k-means, weighted
merge), written independently from that text, not from the Java code:

  T  = budget(N); K_p = min(primary, T) or roundHalfUp(primary_share * T); C = T - K_p
  primary = top-K_p importance (higher first, lower index on ties)
  points  = non-primary indices ascending ("rest") or all indices ("all")
  cosine: x = f / |f| (zero stays zero); euclidean: x = f
  uniforms u_j = SplittableRandom(combine(record_seed, seed)).nextDouble(), j < C
  k-means++: c0 = floor(u0 * m); D2 = 2 - 2 cos clamped at 0 (cosine) or |x - c|^2; chosen
             points have D2 = 0; next = first i with running sum of D2 > u_j * sum(D2); if
             sum(D2) == 0: lowest point not yet chosen
  Lloyd: assign (argmax cos / argmin distance, lower cluster on ties), fix empties, then up to
         max_iterations x: centroids (cosine: normalised member sum; mean; empty or zero-sum
         keeps the old centroid), assign, stop if labels unchanged or max shift <= tolerance
  reassign empties: for each empty cluster ascending, the point with the lowest best-similarity
         among points in clusters of >= 2 members (lower index on ties) moves there
  merge: sum(w x) / sum(w) over non-primary members, w = importance or size, uniform if
         sum(w) == 0; clusters renumbered by smallest member; output order raster or
         primary_first

Bit-exact agreement: every dot product, norm and sum is a sequential Python float (IEEE double)
loop in index order, the same operations the Java code performs, so assignments and k-means++
picks are compared exactly even at exact ties (duplicate tokens). SplittableRandom and
Seeds.combine are re-implemented below from their published definitions (SplitMix64 with the
golden gamma; nextDouble = (nextLong >>> 11) * 2^-53); the test also checks the uniforms.

Run:  cd operators/src/test/python && /usr/bin/python3 gen_golden_vmtc.py
      (numpy 1.24.2; the default python3 has no numpy)
Writes operators/src/test/resources/golden/vmtc/vmtc.json.
"""
import math

import numpy as np

from golden_common import f32_list, round_half_up, write

M64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def combine(a, b):
    """Seeds.combine(a, b) = mix64(a ^ mix64(b + golden gamma)), on unsigned 64-bit values."""
    return mix64((a & M64) ^ mix64(((b & M64) + GOLDEN_GAMMA) & M64))


class SplitMix64:
    """java.util.SplittableRandom(seed): seed += gamma; nextLong = mix64(seed)."""

    def __init__(self, seed):
        self.s = seed & M64

    def next_long(self):
        self.s = (self.s + GOLDEN_GAMMA) & M64
        return mix64(self.s)

    def next_double(self):
        return (self.next_long() >> 11) * (2.0 ** -53)


def dot(a, b):
    s = 0.0
    for p, q in zip(a, b):
        s += p * q
    return s


def sqdist(a, b):
    s = 0.0
    for p, q in zip(a, b):
        d = p - q
        s += d * d
    return s


def similarity(a, b, metric):
    return dot(a, b) if metric == "cosine" else -sqdist(a, b)


def seed_distance(a, b, metric):
    if metric == "cosine":
        return max(0.0, 2.0 - 2.0 * dot(a, b))
    return sqdist(a, b)


def kmeans_pp(x, k, u, metric):
    m = len(x)
    centres = [min(m - 1, int(math.floor(u[0] * m)))]
    chosen = [False] * m
    chosen[centres[0]] = True
    dist = [0.0 if chosen[i] else seed_distance(x[i], x[centres[0]], metric) for i in range(m)]
    for j in range(1, k):
        total = 0.0
        for d in dist:
            total += d
        if total > 0:
            target = u[j] * total
            cum = 0.0
            nxt = None
            for i in range(m):
                cum += dist[i]
                if dist[i] > 0 and cum > target:
                    nxt = i
                    break
            if nxt is None:
                nxt = max(i for i in range(m) if dist[i] > 0)
        else:
            nxt = min(i for i in range(m) if not chosen[i])
        centres.append(nxt)
        chosen[nxt] = True
        for i in range(m):
            dist[i] = 0.0 if chosen[i] else min(dist[i], seed_distance(x[i], x[nxt], metric))
    return centres


def assign(x, cent, metric, empty):
    m, k = len(x), len(cent)
    labels, best = [], []
    for i in range(m):
        sims = [similarity(x[i], cent[c], metric) for c in range(k)]
        arg = 0
        for c in range(1, k):
            if sims[c] > sims[arg]:
                arg = c
        labels.append(arg)
        best.append(sims[arg])
    if empty == "reassign":
        for c in range(k):
            if labels.count(c) > 0:
                continue
            cands = [i for i in range(m) if labels.count(labels[i]) >= 2]
            pick = min(cands, key=lambda i: (best[i], i))
            labels[pick] = c
    return labels


def centroids(x, labels, old, metric):
    k, dim = len(old), len(old[0])
    new = []
    for c in range(k):
        members = [i for i in range(len(x)) if labels[i] == c]
        if not members:
            new.append(list(old[c]))
            continue
        s = [0.0] * dim
        for i in members:
            for d in range(dim):
                s[d] += x[i][d]
        if metric == "cosine":
            norm = math.sqrt(dot(s, s))
            new.append([v / norm for v in s] if norm > 0 else list(old[c]))
        else:
            new.append([v / len(members) for v in s])
    return new


def lloyd(x, centres, metric, empty, max_iter, tol):
    cent = [list(x[c]) for c in centres]
    labels = assign(x, cent, metric, empty)
    it = 0
    while it < max_iter:
        new = centroids(x, labels, cent, metric)
        shift = max(math.sqrt(sqdist(new[c], cent[c])) for c in range(len(cent)))
        cent = new
        nl = assign(x, cent, metric, empty)
        it += 1
        changed = nl != labels
        labels = nl
        if not changed or shift <= tol:
            break
    return labels, it


def topk(scores, k):
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]


def budget(opts, n):
    if "keep" in opts:
        return min(opts["keep"], n)
    if "keep_ratio" in opts:
        return max(0, min(n, round_half_up(opts["keep_ratio"] * n)))
    return max(0, min(n, round_half_up((1.0 - opts["drop_ratio"]) * n)))


def vmtc(opts, tokens, features, importance, sizes, record_seed):
    n, dim = tokens.shape
    metric = opts.get("metric", "cosine")
    empty = opts.get("empty_clusters", "reassign")
    t = budget(opts, n)
    kp = min(opts["primary"], t) if "primary" in opts else max(0, min(t, round_half_up(opts.get("primary_share", 0.5) * t)))
    c = t - kp
    imp = [float(v) for v in importance]
    primary = set(topk(imp, kp))
    points = list(range(n)) if opts.get("cluster_over", "rest") == "all" else [i for i in range(n) if i not in primary]
    x = []
    for i in points:
        f = [float(v) for v in features[i]]
        if metric == "cosine":
            norm = math.sqrt(dot(f, f))
            f = [v / norm if norm > 0 else 0.0 for v in f]
        x.append(f)
    rng = SplitMix64(combine(record_seed, opts.get("seed", 0)))
    u = [rng.next_double() for _ in range(c)]
    centres, iterations = [], 0
    labels = [-1] * len(points)
    if c > 0:
        centres = kmeans_pp(x, c, u, metric)
        labels, iterations = lloyd(x, centres, metric, empty, opts.get("max_iterations", 100), opts.get("tolerance", 0.0))
    members = {}
    for p, i in enumerate(points):
        if labels[p] >= 0 and i not in primary:
            members.setdefault(labels[p], []).append(i)
    groups = sorted(members.values(), key=lambda ms: ms[0])   # canonical cluster ids
    cluster = [-2] * n
    for cid, ms in enumerate(groups):
        for i in ms:
            cluster[i] = cid
    for i in primary:
        cluster[i] = -1
    outs = [(i, [i]) for i in sorted(primary)] + [(ms[0], ms) for ms in groups]
    if opts.get("order", "raster") == "raster":
        outs.sort(key=lambda o: o[0])
    size = [1.0] * n if sizes is None else [float(s) for s in sizes]
    out_tokens, offsets, sources, weights, out_sizes, out_primary = [], [0], [], [], [], []
    output_of = [-1] * n
    for r, (anchor, ms) in enumerate(outs):
        is_p = anchor in primary and ms == [anchor]
        if is_p:
            row, ws = [float(v) for v in tokens[anchor]], [1.0]
        else:
            w = [imp[i] if opts.get("merge_weight", "importance") == "importance" else size[i] for i in ms]
            wsum = 0.0
            for v in w:
                wsum += v
            if not wsum > 0:
                w = [1.0] * len(ms)
                wsum = float(len(ms))
            acc = [0.0] * dim
            for wi, i in zip(w, ms):
                for d in range(dim):
                    acc[d] += wi * float(tokens[i][d])
            row = [a / wsum for a in acc]
            ws = [wi / wsum for wi in w]
        s = 0.0
        for i in ms:
            s += size[i]
            output_of[i] = r
        out_tokens.extend(row)
        sources.extend(ms)
        weights.extend(ws)
        offsets.append(len(sources))
        out_sizes.append(s)
        out_primary.append(is_p)
    return {
        "points": points, "uniforms": u, "init_centres": centres, "iterations": iterations,
        "primary_count": kp, "requested_clusters": c,
        "out_tokens": f32_list(out_tokens), "offsets": offsets, "sources": sources,
        "weights": f32_list(weights), "out_sizes": f32_list(out_sizes), "out_primary": out_primary,
        "clusters": cluster, "output_of": output_of,
    }


rng = np.random.default_rng(20261204)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def attn(n):
    """Importance values that look like CLS attention: positive, float32."""
    return (rng.dirichlet(np.ones(n)) ).astype(np.float32)


cases = []


def case(name, opts, tokens, importance, record_seed, features=None, sizes=None):
    tokens = np.asarray(tokens, dtype=np.float32)
    importance = np.asarray(importance, dtype=np.float32)
    feats = tokens if features is None else np.asarray(features, dtype=np.float32)
    expected = vmtc(opts, tokens, feats, importance, sizes, record_seed)
    cases.append({
        "name": name, "options": opts, "n": int(tokens.shape[0]), "dim": int(tokens.shape[1]),
        "tokens": f32_list(tokens), "feature_dim": None if features is None else int(feats.shape[1]),
        "features": None if features is None else f32_list(feats),
        "importance": f32_list(importance), "sizes": None if sizes is None else f32_list(sizes),
        "record_seed": record_seed, "expected": expected,
    })


def with_duplicates(base, pattern, scale=None):
    """Rows base[pattern[i]], optionally scaled by a positive factor (same direction, other length)."""
    rows = np.stack([base[p] for p in pattern])
    if scale is not None:
        rows = rows * np.asarray(scale, dtype=np.float32)[:, None]
    return rows.astype(np.float32)


# 9 clustered points into 4 clusters (not divisible), default options.
case("basic_cosine_n13_keep8", {"keep": 8}, randn(13, 5), attn(13), 11)
# Several seeds on the same input: the k-means++ picks follow the record seed.
x13 = randn(13, 5)
a13 = attn(13)
for s in (-7, 0, 123456789012345):
    case(f"seed_{s}", {"keep": 6, "primary": 2, "seed": 5}, x13, a13, s)
# Exact duplicates and positive multiples (equal cosine), tied importance, one duplicate group
# with zero importance (uniform merge fallback).
base = randn(4, 5)
pattern = [0, 1, 0, 2, 3, 1, 0, 2, 3, 3, 1, 2]
dup = with_duplicates(base, pattern, [1, 1, 2, 1, 1, 3, 1, 1, 1, 0.5, 1, 1])
imp_dup = np.array([.2, .1, .2, 0, .05, .1, .2, 0, .05, .05, .1, 0], dtype=np.float32)
case("duplicates_ties", {"keep": 6, "primary": 2}, dup, imp_dup, 3)
case("duplicates_euclidean", {"keep": 6, "primary": 2, "metric": "euclidean"}, dup, imp_dup, 3)
# k = number of non-primary tokens: every cluster a singleton even with duplicates (reassign).
case("nothing_merged_k_equals_rest", {"keep": 11}, with_duplicates(base, [0, 1, 2, 0, 3, 1, 0, 2, 2, 3, 1]),
     attn(11), 9)
# ... and with empty clusters dropped: duplicates collapse, fewer tokens.
case("k_equals_rest_drop_empty", {"keep": 11, "empty_clusters": "drop"},
     with_duplicates(base, [0, 1, 2, 0, 3, 1, 0, 2, 2, 3, 1]), attn(11), 9)
# More clusters than distinct directions: k-means++ falls back to the lowest unchosen point.
case("more_clusters_than_distinct", {"keep": 8, "primary": 1}, with_duplicates(base[:3], [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]),
     attn(10), 21)
case("more_clusters_than_distinct_drop", {"keep": 8, "primary": 1, "empty_clusters": "drop"},
     with_duplicates(base[:3], [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]), attn(10), 21)
# k = 1: every non-primary token merged into one.
case("all_merged_k1", {"keep": 4, "primary": 3}, randn(10, 5), attn(10), 4)
# No primary token at all, k = 1: everything merged.
case("no_primary_k1", {"keep": 1, "primary": 0}, randn(7, 3), attn(7), 4)
# Zero importance everywhere: primaries are the lowest indices, merges are uniform means.
case("zero_importance", {"keep": 5, "primary_share": 0.4}, randn(9, 5), np.zeros(9), 8)
# All primary: C = 0, the rest is dropped.
case("all_primary_drop_rest", {"keep": 5, "primary_share": 1.0}, randn(8, 5), attn(8), 1)
# Euclidean, size-weighted, primary first, sizes from earlier merges.
case("euclidean_size_primary_first",
     {"keep_ratio": 0.5, "primary": 2, "metric": "euclidean", "merge_weight": "size", "order": "primary_first"},
     randn(14, 5), attn(14), 17, sizes=rng.integers(1, 5, 14).astype(np.float32))
# k-means over all tokens: primary members shape clusters but are not merged.
case("cluster_over_all", {"keep": 6, "cluster_over": "all"}, randn(12, 4), attn(12), 2)
# Clustering on other features than the merged rows; a zero feature row (cosine: stays zero).
feats = randn(12, 3)
feats[5] = 0
case("separate_features_zero_row", {"drop_ratio": 0.5, "primary": 2}, randn(12, 6), attn(12), 12, features=feats)
# Enough points for several Lloyd iterations (blobs with overlap).
blobs = (np.repeat(randn(5, 4), 9, axis=0)[:43] + 0.9 * randn(43, 4)).astype(np.float32)
a43 = attn(43)
case("lloyd_cosine_n43", {"keep": 11, "primary": 2}, blobs, a43, 31)
case("lloyd_euclidean_n43", {"keep": 11, "primary": 2, "metric": "euclidean"}, blobs, a43, 31)
# Iteration control on the same input as lloyd_cosine_n43: fewer iterations than the default needs.
case("max_iterations_0", {"keep": 11, "primary": 2, "max_iterations": 0}, blobs, a43, 31)
case("max_iterations_2", {"keep": 11, "primary": 2, "max_iterations": 2}, blobs, a43, 31)
case("tolerance_0.2", {"keep": 11, "primary": 2, "tolerance": 0.2}, blobs, a43, 31)
# An exact assignment tie: point 2 = (1, 0) is equally close to (0.6, 0.8) and (0.6, -0.8); when
# those two are the initial centres it joins the first one (lower cluster), which decides the merge.
tie = np.array([[0.6, 0.8], [0.6, -0.8], [1, 0], [-1, 0]], dtype=np.float32)
tie_imp = np.array([0.2, 0.2, 0.1, 0.5], dtype=np.float32)
tie_seed = next(s for s in range(1000)
                if vmtc({"keep": 3, "primary": 1}, tie, tie, tie_imp, None, s)["init_centres"] == [0, 1])
case("exact_tie_between_centroids", {"keep": 3, "primary": 1}, tie, tie_imp, tie_seed)
tie_seed_rev = next(s for s in range(1000)
                    if vmtc({"keep": 3, "primary": 1}, tie, tie, tie_imp, None, s)["init_centres"] == [1, 0])
case("exact_tie_between_centroids_reversed", {"keep": 3, "primary": 1}, tie, tie_imp, tie_seed_rev)
# An exact tie when an empty cluster is refilled: three copies of A, k = 4 > 3 distinct rows;
# Euclidean means of copies are exact, so the copies tie at every step and the lowest index moves.
case("reassign_tie_euclidean", {"keep": 4, "primary": 0, "metric": "euclidean"},
     with_duplicates(base[:3], [0, 1, 0, 2, 0]), attn(5), 5)
# One token.
case("single_token", {"keep": 1, "primary": 0}, randn(1, 5), attn(1), 0)

# importance(): sum over layers of the head mean / max of CLS attention [layers, heads, n].
L_, H_, N_ = 2, 3, 7
cls = np.stack([np.stack([rng.dirichlet(np.ones(N_)) for _ in range(H_)]) for _ in range(L_)]).astype(np.float32)
importance_golden = {
    "layers": L_, "heads": H_, "n": N_, "cls_attention": f32_list(cls),
    "mean": [float(v) for v in cls.astype(np.float64).mean(axis=1).sum(axis=0)],
    "max": [float(v) for v in cls.astype(np.float64).max(axis=1).sum(axis=0)],
}

write("vmtc", "vmtc.json", {
    "generator": "gen_golden_vmtc.py, numpy " + np.__version__ + ", rng seed 20261204",
    "cases": cases,
    "importance": importance_golden,
})
