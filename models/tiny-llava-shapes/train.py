#!/usr/bin/python3
"""Train the tiny LLaVA-architecture VLM on ShapesVQA (CPU with PyTorch >= 1.13, or a CUDA GPU with
`--device cuda`) and export it in the Hugging Face LLaVA checkpoint layout.

Recipes (`--recipe`): `vanilla` (the default, the standard LLaVA recipe: stages 1-3, never trained
with dropped visual tokens -- the evaluation model) and `droptrained` (stages 1-5: stages 4-5 train
with randomly dropped visual tokens, the earlier bundled model kept as a variant).

Stages (all resumable; state lives in --work):
  1  vision tower alone on per-patch + CLS attribute targets (auxiliary heads, not exported)
  2  projector + language model, vision tower frozen; the 6 QA turns of an image are packed in
     one sequence sharing the image prefix (each turn attends to the prefix and to itself only,
     and its positions restart where a single-question prompt's would, so training sees exactly
     the inference-time input of every turn)
  3  joint fine-tune (vision tower at a low LR, with its auxiliary loss)
  4  robustness fine-tune: as stage 3, but on a share of the steps the image keeps only a random,
     spatially ordered subset of its visual tokens (positions re-packed, exactly what a pruning
     operator hands the language model), and the yes/no answers of `exists` turns weigh more
  5  short mixed-subset fine-tune: as stage 4, but half of the dropping steps keep an object-first
     subset (every object patch, then random background) instead of a uniform one, so that the
     model reads subsets concentrated on objects (what saliency-based pruning keeps) as well as
     uniform ones (what random pruning keeps); without it the model over-fits stage 4's uniform
     subsets and misreads object-concentrated ones (count and size)
then: evaluate on the test split -> training_report.json, export -> --out.

  /usr/bin/python3 train.py --data /work/data/shapesvqa --work /work/train/run --out . --seed 1234
Rerunning the same command continues from the last checkpoint in --work.

`--budget-minutes M` trains to a time budget instead of fixed step counts: each stage runs its first
`--probe-steps` steps, measures its median step time, and fixes its total to its share
(`--stage-shares`) of the budget; the totals are stored in the checkpoint, so a resumed run keeps them.
"""
import argparse
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllava as tl  # noqa: E402

KINDS = ["exists", "color", "count", "position", "caption"]
EXACT_KINDS = ["exists", "color", "count", "position"]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Split:
    def __init__(self, data_dir, split, meta, limit=None):
        self.dir = os.path.join(data_dir, split)
        scenes = read_jsonl(os.path.join(self.dir, "scenes.jsonl"))
        if limit:
            scenes = scenes[:limit]
        self.scenes = scenes
        self.index = {s["image_id"]: i for i, s in enumerate(scenes)}
        self.questions = [[] for _ in scenes]
        for q in read_jsonl(os.path.join(self.dir, "questions.jsonl")):
            i = self.index.get(q["image_id"])
            if i is not None:
                self.questions[i].append(q)
        self.meta = meta

    def __len__(self):
        return len(self.scenes)

    def all_text(self):
        for s, qs in zip(self.scenes, self.questions):
            yield s.get("caption", "")
            for q in qs:
                yield q["question"]
                yield q["answer"]


def _read_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _pool_map(fn, items, workers):
    """fn over items in order, in `workers` processes when workers > 1 (chunked)."""
    if workers <= 1 or len(items) < 64:
        return [fn(x) for x in items]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(fn, items, chunksize=max(16, len(items) // (workers * 8)))


def load_images(split, cache_path, workers=1):
    if cache_path and os.path.exists(cache_path):
        arr = np.load(cache_path)
        if len(arr) == len(split):
            return arr
    arr = np.zeros((len(split), 128, 128, 3), np.uint8)
    paths = [os.path.join(split.dir, s["image"]) for s in split.scenes]
    for i, rgb in enumerate(_pool_map(_read_rgb, paths, workers)):
        arr[i] = rgb
    if cache_path:
        np.save(cache_path + ".tmp.npy", arr)
        os.replace(cache_path + ".tmp.npy", cache_path)
    return arr


def _scene_targets(job):
    """Targets of one scene (see patch_targets); runs in a worker process."""
    path, s, shapes, colors, sizes, grid, patch = job
    local = np.zeros((grid * grid, 5), np.int8)
    cls_multi = np.zeros((len(colors) * len(shapes),), np.float32)
    cls_cnt = np.zeros((1 + len(shapes),), np.int8)
    with Image.open(path) as im:
        m = np.asarray(im.convert("L"))
    objs = s["objects"]
    counts = np.zeros((len(objs) + 1, grid, grid), np.int32)
    mm = m.reshape(grid, patch, grid, patch)
    sil = np.packbits((mm > 0).transpose(0, 2, 1, 3).reshape(grid * grid, patch * patch), axis=-1)
    g4 = (m > 0).reshape(grid * 2, 4, grid * 2, 4).mean((1, 3)) > 0.5      # 32x32 at 4-px cells
    g4 = np.pad(g4, 2)
    win = np.lib.stride_tricks.sliding_window_view(g4, (6, 6))[::2, ::2]   # [16,16,6,6]
    nbr = np.packbits(win.reshape(grid * grid, 36), axis=-1)
    for k in range(1, len(objs) + 1):
        counts[k] = (mm == k).sum((1, 3))
    best = counts[1:].argmax(0) + 1 if objs else np.zeros((grid, grid), int)
    bestc = counts[1:].max(0) if objs else np.zeros((grid, grid), int)
    lab = np.where(bestc >= 3, best, 0).reshape(-1)
    for k, o in enumerate(objs, 1):
        sel = lab == k
        local[sel, 0] = shapes.index(o["shape"]) + 1
        local[sel, 1] = colors.index(o["color"]) + 1
        local[sel, 2] = sizes.index(o["size"]) + 1
        local[sel, 3] = o["row"] * 3 + o["col"] + 1
        pr = min(grid - 1, int(o["cy"] // patch))
        pc = min(grid - 1, int(o["cx"] // patch))
        local[pr * grid + pc, 4] = 1
        cls_multi[colors.index(o["color"]) * len(shapes) + shapes.index(o["shape"])] = 1
        cls_cnt[1 + shapes.index(o["shape"])] += 1
    cls_cnt[0] = len(objs)
    return local, cls_multi, cls_cnt, sil, nbr


def patch_targets(split, cache_path, grid=16, patch=8, workers=1):
    """Per-patch targets [N,256,10] int64: local (shape,colour,size,cell,centre) of the object
    covering the patch (0 = background) + scene-global (total count, count per shape);
    CLS targets: multi-hot [N,24] and counts [N,5]."""
    if cache_path and os.path.exists(cache_path):
        z = np.load(cache_path)
        if len(z["local"]) == len(split):
            return z["local"], z["cls_multi"], z["cls_cnt"], z["sil"], z["nbr"]
    meta = split.meta
    shapes, colors, sizes = meta["shapes"], list(meta["colors"]), meta["sizes"]
    jobs = [(os.path.join(split.dir, s["mask"]), s, shapes, colors, sizes, grid, patch) for s in split.scenes]
    parts = list(zip(*_pool_map(_scene_targets, jobs, workers)))
    local, cls_multi, cls_cnt, sil, nbr = (np.stack(p) for p in parts)
    if cache_path:
        np.savez(cache_path + ".tmp.npz", local=local, cls_multi=cls_multi, cls_cnt=cls_cnt, sil=sil, nbr=nbr)
        os.replace(cache_path + ".tmp.npz", cache_path)
    return local, cls_multi, cls_cnt, sil, nbr


def build_vocab(data_dir, meta):
    words = set(tl.TEMPLATE_WORDS)
    extra = list(meta["shapes"]) + list(meta["colors"]) + list(meta["sizes"]) + list(meta["positions"])
    extra += ["yes", "no", "zero", "one", "two", "three", "four"]
    for t in extra:
        words.update(tl.PRE_TOKEN_RE.findall(t.lower()))
    for split in ("train", "val", "test"):
        d = os.path.join(data_dir, split)
        for name in ("questions.jsonl", "scenes.jsonl"):
            for r in read_jsonl(os.path.join(d, name)):
                for key in ("question", "answer", "caption"):
                    if key in r:
                        words.update(tl.PRE_TOKEN_RE.findall(r[key].lower()))
    return tl.WordTokenizer(sorted(words))


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def vision_aux_loss(model, px, local, cls_multi, cls_cnt, sil, nbr, precomputed=None, want_stats=True):
    feat, cls = precomputed if precomputed is not None else model.vision_features(px, want_cls=True)
    heads = model.aux_heads
    out = heads.patch(feat)                             # [B,256,sum]
    sizes = heads.N_PATCH_LOCAL + heads.N_PATCH_GLOBAL
    parts = torch.split(out, sizes, -1)
    obj = (local[..., 0] > 0).float()
    w = 1.0 + 3.0 * obj                                 # object patches count 4x
    loss = 0.0
    stats = {}
    for j in range(5):
        ce = F.cross_entropy(parts[j].reshape(-1, sizes[j]), local[..., j].reshape(-1), reduction="none")
        wt = (w * (4.0 if j == 4 else 3.0 if j == 0 else 1.0)).reshape(-1)
        loss = loss + (ce * wt).sum() / wt.sum()
        if j < 4 and want_stats:
            pred = parts[j].argmax(-1)
            stats[f"p{j}"] = ((pred == local[..., j]).float() * obj).sum().item() / max(1.0, obj.sum().item())
    for j in range(5):
        tgt = cls_cnt[:, j:j + 1].expand(-1, feat.shape[1])
        loss = loss + 0.3 * F.cross_entropy(parts[5 + j].reshape(-1, 5), tgt.reshape(-1))
    sl = heads.sil(feat)
    loss = loss + 2.0 * F.binary_cross_entropy_with_logits(sl, sil)
    nb = heads.nbr(feat)
    loss = loss + 3.0 * F.binary_cross_entropy_with_logits(nb, nbr)
    co = heads.cls(cls)
    loss = loss + F.binary_cross_entropy_with_logits(co[:, :24], cls_multi) * 2.0
    for j in range(5):
        loss = loss + 0.3 * F.cross_entropy(co[:, 24 + 5 * j:29 + 5 * j], cls_cnt[:, j])
    if want_stats:
        stats["sil"] = ((sl > 0).float() == sil).float().mean().item()
        stats["nbr"] = ((nb > 0).float() == nbr).float().mean().item()
        stats["cnt"] = (parts[5].argmax(-1) == cls_cnt[:, :1]).float().mean().item()
    return loss, stats


# ---------------------------------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------------------------------
N_VIS = 256
PREFIX = [tl.BOS, tl.USER]  # then ':' then <image>


class Encoder:
    def __init__(self, tok):
        self.tok = tok
        self.colon = tok.stoi[":"]
        self.prefix = [tl.BOS, tl.USER, self.colon]        # tokens before the image
        self.n_prefix = len(self.prefix) + N_VIS            # 259: first text position after the image
        self.cache = {}

    def q_ids(self, question):
        k = ("q", question)
        if k not in self.cache:
            self.cache[k] = self.tok.encode(question, add_bos=False) + [tl.ASSISTANT, self.colon]
        return self.cache[k]

    def a_ids(self, answer):
        k = ("a", answer)
        if k not in self.cache:
            self.cache[k] = self.tok.encode(answer, add_bos=False) + [tl.EOS]
        return self.cache[k]

    def prompt(self, question):
        return tl.PROMPT_FORMAT.format(question=question)

    def prompt_ids(self, question):
        ids = self.tok.encode(self.prompt(question), add_bos=True)
        assert ids == self.prefix + [tl.IMAGE] + self.q_ids(question), (ids, question)
        return ids


def pack_batch(enc, qlists, rng, kind_weight=None):
    """qlists: list (per image) of question dicts. Returns text ids after the image, labels,
    turn ids, positions and label weights (all [B,Ttext]) for the packed, turn-isolated layout.
    kind_weight: optional {kind: weight} for the answer tokens of that question kind (default 1)."""
    rows = []
    for qs in qlists:
        order = list(range(len(qs)))
        rng.shuffle(order)
        ids, lab, tid, pos, wts = [], [], [], [], []
        for t, j in enumerate(order):
            q, a = enc.q_ids(qs[j]["question"]), enc.a_ids(qs[j]["answer"])
            seq = q + a
            ids += seq
            # label at position i = next token; only for tokens predicting the answer
            lab += [-100] * (len(q) - 1) + a + [-100]
            w = (kind_weight or {}).get(qs[j]["kind"], 1.0)
            wts += [w] * len(seq)
            tid += [t + 1] * len(seq)
            pos += list(range(enc.n_prefix, enc.n_prefix + len(seq)))
        rows.append((ids, lab, tid, pos, wts))
    T = max(len(r[0]) for r in rows)
    B = len(rows)
    ids = np.full((B, T), tl.PAD, np.int64)
    lab = np.full((B, T), -100, np.int64)
    tid = np.full((B, T), 99, np.int64)
    pos = np.zeros((B, T), np.int64)
    lw = np.ones((B, T), np.float32)
    for b, (i_, l_, t_, p_, w_) in enumerate(rows):
        n = len(i_)
        ids[b, :n], lab[b, :n], tid[b, :n], pos[b, :n], lw[b, :n] = i_, l_, t_, p_, w_
        if n < T:
            pos[b, n:] = np.arange(enc.n_prefix, enc.n_prefix + T - n)
    # torch.tensor copies onto the default device (the training device, see main)
    return tuple(torch.tensor(a) for a in (ids, lab, tid, pos, lw))


def random_keep(rng, batch, n_vis, min_keep):
    """Stage-4 token dropping: one kept count for the batch, uniform in [min_keep, n_vis), and per
    image a uniformly random subset of that size in spatial (raster) order -- the layout every
    pruning operator hands the language model (VTC-CLS and RandomDrop both restore raster order)."""
    k = int(rng.integers(min_keep, n_vis))
    idx = np.stack([np.sort(rng.choice(n_vis, size=k, replace=False)) for _ in range(batch)])
    return torch.from_numpy(idx)


def salient_keep(rng, obj, k):
    """Stage-5 object-first subset: obj [B,256] bool (patch covered by an object); per image keep
    all object patches (a random subset of them if there are more than k), then random background
    patches up to k, in raster order."""
    B, n = obj.shape
    score = obj.astype(np.float64) + 0.9 * rng.random((B, n))
    idx = np.sort(np.argsort(-score, axis=1, kind="stable")[:, :k], axis=1)
    return torch.from_numpy(idx)


def lm_packed_loss(model, enc, vis_emb, ids, lab, tid, pos, lw=None, keep_idx=None):
    """keep_idx: optional [B,k] visual-token indices kept (sorted); positions are re-packed so the
    text starts right after the k kept tokens, as in the runtime with a re-packing operator."""
    if keep_idx is not None:
        vis_emb = torch.gather(vis_emb, 1, keep_idx[..., None].expand(-1, -1, vis_emb.shape[-1]))
        pos = pos - (N_VIS - keep_idx.shape[1])
    B, Tt = ids.shape
    P = len(enc.prefix) + vis_emb.shape[1]
    pre = model.embed(torch.tensor(enc.prefix)).unsqueeze(0).expand(B, -1, -1)
    emb = torch.cat([pre, vis_emb, model.embed(ids)], 1)
    T = P + Tt
    tid_full = torch.cat([torch.zeros(B, P, dtype=torch.long), tid], 1)
    pos_full = torch.cat([torch.arange(P).unsqueeze(0).expand(B, P), pos], 1)
    ar = torch.arange(T)
    causal = ar[None, :] <= ar[:, None]                                   # [T,T]
    same = (tid_full[:, None, :] == 0) | (tid_full[:, None, :] == tid_full[:, :, None])
    allowed = causal[None] & same
    mask = torch.zeros(B, 1, T, T).masked_fill_(~allowed[:, None], float("-inf"))
    h, _ = model.lm_forward(emb, pos_full, mask)
    h = h[:, P:]
    sel = lab != -100
    logits = model.logits(h[sel]).float()
    acc = (logits.argmax(-1) == lab[sel]).float().mean()
    if lw is None:
        return F.cross_entropy(logits, lab[sel]), acc
    w = lw[sel]
    return (F.cross_entropy(logits, lab[sel], reduction="none") * w).sum() / w.sum(), acc


# ---------------------------------------------------------------------------------------------
# Greedy generation with a shared image prefix (training module, KV cache)
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def generate(model, enc, vis_emb, items, max_new=48):
    """vis_emb [Bi,256,d]; items: list of (image_index, question). Returns list of
    (generated ids, first-step logits)."""
    Bi = vis_emb.shape[0]
    P = enc.n_prefix
    pre = model.embed(torch.tensor(enc.prefix)).unsqueeze(0).expand(Bi, -1, -1)
    emb = torch.cat([pre, vis_emb], 1)
    pos = torch.arange(P).unsqueeze(0).expand(Bi, P)
    mask = torch.full((P, P), float("-inf")).triu(1)[None, None]
    _, past = model.lm_forward(emb, pos, mask)
    results = [None] * len(items)
    groups = {}
    for n, (ii, q) in enumerate(items):
        groups.setdefault(len(enc.q_ids(q)), []).append(n)
    for L, members in sorted(groups.items()):
        idx = torch.tensor([items[n][0] for n in members])
        ids = torch.tensor([enc.q_ids(items[n][1]) for n in members])
        B = len(members)
        pst = [(k.index_select(0, idx), v.index_select(0, idx)) for k, v in past]
        qpos = torch.arange(P, P + L).unsqueeze(0).expand(B, L)
        m = torch.zeros(L, P + L)
        m[:, P:] = torch.full((L, L), float("-inf")).triu(1)
        h, pst = model.lm_forward(model.embed(ids), qpos, m[None, None], pst)
        lg = model.logits(h[:, -1])
        first = lg.clone()
        out = [[] for _ in range(B)]
        done = torch.zeros(B, dtype=torch.bool)
        cur = P + L
        for step in range(max_new):
            nxt = lg.argmax(-1)
            nl, dl = nxt.tolist(), done.tolist()
            for b in range(B):
                if not dl[b]:
                    out[b].append(nl[b])
            done |= nxt == tl.EOS
            if bool(done.all()) or step == max_new - 1:
                break
            h, pst = model.lm_forward(model.embed(nxt[:, None]), torch.full((B, 1), cur), None, pst)
            lg = model.logits(h[:, -1])
            cur += 1
        for b, n in enumerate(members):
            results[n] = (out[b], first[b])
    return results


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
CAP_RE = re.compile(r"^a (\w+) (\w+) (\w+) at the (.+)$")


def parse_caption(text):
    objs = []
    norm = tl.normalize_answer(text)
    for chunk in re.split(r" , | \.|^\.", norm):
        chunk = chunk.strip(" .,")
        m = CAP_RE.match(chunk)
        if m:
            objs.append(tuple(m.groups()))
    return objs


def evaluate(model, enc, split, images, n_images=None, blank=True, batch=25):
    model.eval()
    n_images = n_images or len(split)
    tok = enc.tok
    corr = {k: 0 for k in EXACT_KINDS}
    tot = {k: 0 for k in EXACT_KINDS}
    bcorr = {k: 0 for k in EXACT_KINDS}
    tp = npred = ngt = halluc = 0
    blank_emb = None
    if blank:
        grey = torch.full((1, 128, 128, 3), 128, dtype=torch.uint8, device=next(model.parameters()).device)
        with torch.no_grad():
            f, _ = model.vision_features(tl.normalize_pixels_torch(grey))
            blank_emb = model.multi_modal_projector(f)
    samples = []
    for s0 in range(0, n_images, batch):
        ii = list(range(s0, min(n_images, s0 + batch)))
        with torch.no_grad():
            u8 = torch.from_numpy(images[ii]).to(next(model.parameters()).device)
            f, _ = model.vision_features(tl.normalize_pixels_torch(u8))
            vis = model.multi_modal_projector(f)
        items, qrefs = [], []
        for bi, i in enumerate(ii):
            for q in split.questions[i]:
                items.append((bi, q["question"]))
                qrefs.append((i, q))
        res = generate(model, enc, vis, items)
        for (i, q), (ids, _) in zip(qrefs, res):
            pred = tok.decode(ids)
            if len(samples) < 12:
                samples.append((q["question"], q["answer"], pred))
            if q["kind"] in corr:
                tot[q["kind"]] += 1
                corr[q["kind"]] += tl.normalize_answer(pred) == tl.normalize_answer(q["answer"])
            elif q["kind"] == "caption":
                gt = [(o["size"], o["color"], o["shape"], o["position"]) for o in split.scenes[i]["objects"]]
                pr = parse_caption(pred)
                gl = list(gt)
                for o in pr:
                    if o in gl:
                        gl.remove(o)
                        tp += 1
                present = {(o["color"], o["shape"]) for o in split.scenes[i]["objects"]}
                halluc += sum((o[1], o[2]) not in present for o in pr)
                npred += len(pr)
                ngt += len(gt)
        if blank:
            bsel = [n for n, (_, q) in enumerate(qrefs) if q["kind"] in bcorr]
            bres = generate(model, enc, blank_emb, [(0, items[n][1]) for n in bsel])
            for n, (ids, _) in zip(bsel, bres):
                q = qrefs[n][1]
                bcorr[q["kind"]] += tl.normalize_answer(tok.decode(ids)) == tl.normalize_answer(q["answer"])
    acc = {k: corr[k] / max(1, tot[k]) for k in EXACT_KINDS}
    acc["overall"] = sum(acc[k] for k in EXACT_KINDS) / 4
    prec = tp / max(1, npred)
    rec = tp / max(1, ngt)
    rep = {"test_accuracy": acc,
           "caption_object_f1": 2 * prec * rec / max(1e-9, prec + rec),
           "caption_object_precision": prec, "caption_object_recall": rec,
           "chair_hallucination": halluc / max(1, npred),
           "n_images": n_images, "n_questions": sum(tot.values()) + n_images}
    if blank:
        bacc = {k: bcorr[k] / max(1, tot[k]) for k in EXACT_KINDS}
        rep["blank_image_accuracy"] = sum(bacc.values()) / 4
        rep["blank_image_accuracy_per_kind"] = bacc
    rep["samples"] = samples
    return rep


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------
def export(model, tok, enc, args, meta, test, out_dir, report=None):
    os.makedirs(out_dir, exist_ok=True)
    if hasattr(torch, "set_default_device"):
        torch.set_default_device("cpu")
    model.to("cpu")
    c = model.c
    cfg = tl.hf_config(c)
    W = tl.export_state(model)
    W = {k: v.detach().clone().float() for k, v in W.items()}
    tl.save_safetensors(os.path.join(out_dir, "model.safetensors"), W, {"format": "pt"})
    wj = lambda name, obj: json.dump(obj, open(os.path.join(out_dir, name), "w"), indent=1)
    wj("config.json", cfg)
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
        json.dump(tok.tokenizer_json(), f, indent=1, ensure_ascii=False)
    wj("tokenizer_config.json", tl.tokenizer_config(tok))
    wj("preprocessor_config.json", tl.preprocessor_config(c))
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                   "additional_special_tokens": ["<image>", "USER", "ASSISTANT"]}, f, indent=1)
    # reference outputs from the exported tensors (re-read from disk), independent path
    W2 = tl.load_safetensors(os.path.join(out_dir, "model.safetensors"))
    ref = tl.ReferenceLlava(W2, cfg)
    picks, used, per = [], set(), {k: 0 for k in KINDS}
    for i in range(len(test)):
        for q in test.questions[i]:
            if per[q["kind"]] < 7 and i not in used:
                picks.append((i, q))
                used.add(i)
                per[q["kind"]] += 1
                break
        if len(picks) >= 35:
            break
    img_dir = os.path.join(out_dir, "reference_images")
    if os.path.isdir(img_dir):
        shutil.rmtree(img_dir)
    os.makedirs(img_dir)
    model.eval()
    entries = []
    max_diff = 0.0
    for i, q in picks:
        s = test.scenes[i]
        src = os.path.join(test.dir, s["image"])
        shutil.copyfile(src, os.path.join(img_dir, os.path.basename(s["image"])))
        with Image.open(src) as im:
            rgb = np.asarray(im.convert("RGB"))
        px = tl.normalize_pixels_np(rgb)
        ids = enc.prompt_ids(q["question"])
        last, gen = ref.generate(ids, torch.from_numpy(px)[None], 48)
        # parity with the training module (KV-cache path)
        with torch.no_grad():
            f, _ = model.vision_features(torch.from_numpy(px)[None])
            vis = model.multi_modal_projector(f)
        (gen2, first2), = generate(model, enc, vis, [(0, q["question"])])
        max_diff = max(max_diff, float((first2 - last).abs().max()))
        assert gen2 == gen, ("parity: greedy ids differ", q, gen, gen2)
        entries.append({
            "id": q["id"], "kind": q["kind"],
            "image": s["image"], "reference_image": "reference_images/" + os.path.basename(s["image"]),
            "question": q["question"], "answer": q["answer"],
            "prompt": enc.prompt(q["question"]),
            "input_ids": ids,
            "pixel_sum": float(px.astype(np.float64).sum()),
            "pixel_sha256": tl.sha256_bytes(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()),
            "last_logits": [float(x) for x in last.tolist()],
            "greedy_ids": gen,
            "greedy_answer": tok.decode(gen),
        })
    assert max_diff < 1e-4, max_diff
    log(f"reference outputs: {len(entries)} questions, training-module vs reference max |dlogit| = {max_diff:.2e}")
    wj("reference_outputs.json", {
        "description": "Golden values: float32, eval mode, prefill of one question per sequence; "
                       "input_ids hold one <image> token that the runtime expands to 256 projected "
                       "patch embeddings; positions 0..N-1 over the expanded sequence.",
        "dataset": {"name": meta.get("name"), "version": meta.get("version"), "seed": meta.get("seed"),
                    "split": "test", "split_dir": "test"},
        "image_token_id": tl.IMAGE, "num_image_tokens": N_VIS, "eos_token_id": tl.EOS,
        "max_new_tokens": 48,
        "training_module_max_abs_logit_diff": max_diff,
        "entries": entries})
    return max_diff


# ---------------------------------------------------------------------------------------------
# Checkpointing
# ---------------------------------------------------------------------------------------------
def save_ckpt(path, state):
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def rng_state():
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng(st):
    if st is None:      # a portable checkpoint (see --train-only) carries no RNG state
        return
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])


def lr_at(step, total, base, warm):
    if step < warm:
        return base * (step + 1) / warm
    p = (step - warm) / max(1, total - warm)
    return base * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, p))))


def make_opt(model, stage, lr, vit_mult=0.5):
    if stage == 1:
        params = list(model.vision_tower.parameters()) + list(model.aux_heads.parameters())
        groups = [{"params": params, "lr": lr}]
    elif stage == 2:
        params = list(model.multi_modal_projector.parameters()) + list(model.language_model.parameters())
        groups = [{"params": params, "lr": lr}]
    else:
        groups = [{"params": list(model.multi_modal_projector.parameters()) +
                   list(model.language_model.parameters()), "lr": lr},
                  {"params": list(model.vision_tower.parameters()) + list(model.aux_heads.parameters()),
                   "lr": lr * vit_mult, "vit": True}]
    decay = []
    for g in groups:
        g["weight_decay"] = 0.01
        g["base_lr"] = g["lr"]
        decay.append(g)
    return torch.optim.AdamW(decay, betas=(0.9, 0.98), eps=1e-8)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="processes that decode images and targets")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when available)")
    ap.add_argument("--bf16", action="store_true",
                    help="bf16 autocast of the forward passes (weights, optimizer and losses stay fp32)")
    ap.add_argument("--recipe", choices=["vanilla", "droptrained"], default="vanilla",
                    help="vanilla: stages 1-3 (no dropped tokens); droptrained: stages 1-5")
    ap.add_argument("--smoke", action="store_true", help="a few steps on a handful of images (CI)")
    ap.add_argument("--s1-steps", type=int, default=600)
    ap.add_argument("--s1-batch", type=int, default=32)
    ap.add_argument("--s1-lr", type=float, default=2e-3)
    ap.add_argument("--s2-steps", type=int, default=150)
    ap.add_argument("--s2-batch", type=int, default=16)
    ap.add_argument("--s2-lr", type=float, default=2e-3)
    ap.add_argument("--s3-steps", type=int, default=None,
                    help="default 3000 for the vanilla recipe, 1050 for droptrained")
    ap.add_argument("--s3-lr", type=float, default=2e-3)
    ap.add_argument("--s3-vit-mult", type=float, default=0.5, help="stage-3 LR of the vision tower / LM LR")
    ap.add_argument("--s3-aux", type=float, default=1.0, help="stage-3 weight of the vision auxiliary loss")
    ap.add_argument("--s3-exists-weight", type=float, default=None,
                    help="stage-3 loss weight of the answer tokens of `exists` questions (default 2 for vanilla, 1 for droptrained)")
    ap.add_argument("--s4-steps", type=int, default=None,
                    help="robustness fine-tune steps (default: 0 for vanilla, 850 for droptrained)")
    ap.add_argument("--s4-lr", type=float, default=1.5e-3)
    ap.add_argument("--s4-drop-prob", type=float, default=0.5,
                    help="share of stage-4 steps whose images keep a random subset of visual tokens")
    ap.add_argument("--s4-min-keep", type=int, default=32, help="fewest visual tokens kept on a drop step")
    ap.add_argument("--s4-exists-weight", type=float, default=2.0,
                    help="stage-4 loss weight of the answer tokens of `exists` questions")
    ap.add_argument("--s5-steps", type=int, default=None,
                    help="mixed-subset fine-tune steps (default: 0 for vanilla, 130 for droptrained)")
    ap.add_argument("--s5-lr", type=float, default=5e-4)
    ap.add_argument("--s5-drop-prob", type=float, default=0.75)
    ap.add_argument("--s5-salient-share", type=float, default=0.5,
                    help="share of stage-5 dropping steps that keep an object-first subset")
    ap.add_argument("--budget-minutes", type=float, default=0,
                    help="train to a time budget: stage totals from measured step times (0 = fixed steps)")
    ap.add_argument("--stage-shares", default="0.2,0.1,0.7,0,0",
                    help="budget shares of stages 1..5 (with --budget-minutes)")
    ap.add_argument("--probe-steps", type=int, default=30,
                    help="steps per stage that are timed before a budgeted stage fixes its total")
    ap.add_argument("--ckpt-every", type=float, default=240.0, help="seconds between checkpoints")
    ap.add_argument("--eval-images", type=int, default=0, help="0 = whole test split")
    ap.add_argument("--export-now", action="store_true",
                    help="export the current checkpoint (any stage) to --out and exit (provisional)")
    ap.add_argument("--train-only", action="store_true",
                    help="stop after training (checkpoint saved, plus ckpt-portable.pt: weights and state "
                         "only, loadable on any device and torch/numpy version); rerun without it to "
                         "evaluate and export")
    ap.add_argument("--stop-after", type=float, default=0,
                    help="exit cleanly (checkpoint saved) after this many seconds; rerun to resume")
    args = ap.parse_args()
    if args.s3_steps is None:
        args.s3_steps = 3000 if args.recipe == "vanilla" else 1050
    if args.s3_exists_weight is None:
        args.s3_exists_weight = 2.0 if args.recipe == "vanilla" else 1.0
    if args.s4_steps is None:
        args.s4_steps = 850 if args.recipe == "droptrained" else 0
    if args.s5_steps is None:
        args.s5_steps = 130 if args.recipe == "droptrained" else 0
    shares = [float(x) for x in args.stage_shares.split(",")]
    if len(shares) != 5 or min(shares) < 0 or sum(shares) <= 0:
        ap.error(f"--stage-shares: five non-negative numbers, not all 0, expected; got {args.stage_shares!r}")
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                       else ("cpu" if args.device == "auto" else args.device))

    torch.set_num_threads(args.threads)
    if args.smoke:
        args.s1_steps, args.s2_steps, args.s3_steps = 4, 4, 2
        args.s4_steps, args.s5_steps = (2, 2) if args.recipe == "droptrained" else (0, 0)
        args.s1_batch, args.s2_batch = 4, 2
        args.eval_images = 4
        args.ckpt_every = 0
        args.probe_steps = min(args.probe_steps, 3)
    os.makedirs(args.work, exist_ok=True)
    run_start = time.time()
    meta = json.load(open(os.path.join(args.data, "dataset.json")))

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    tok = build_vocab(args.data, meta)
    enc = Encoder(tok)
    lim = 8 if args.smoke else None
    train = Split(args.data, "train", meta, lim)
    test = Split(args.data, "test", meta, 40 if args.smoke else None)
    log(f"vocab {len(tok)}; train {len(train)} images; test {len(test)}; device {dev}")

    cfg = dict(tl.DEFAULT_CFG)
    cfg["vocab_size"] = len(tok)
    model = tl.TinyLlava(cfg)
    n_params = sum(v.numel() for v in tl.export_state(model).values())
    log(f"exported parameters: {n_params}")

    ck = os.path.join(args.work, "ckpt.pt")
    state = {"stage": 1, "step": 0, "wall_seconds": 0.0, "steps": {}, "history": []}
    opt = None
    opt_state = None
    if os.path.exists(ck):
        st = _load(ck)
        assert st["vocab"] == tok.itos, "vocabulary changed since the checkpoint"
        model.load_state_dict(st["model"])
        state = st["state"]
        set_rng(st["rng"])
        if st.get("opt") is not None and state["stage"] in (1, 2, 3, 4, 5):
            opt_state = st["opt"]
        log(f"resumed: stage {state['stage']} step {state['step']} wall {state['wall_seconds']:.0f}s")
        for later, n_later in ((4, args.s4_steps), (5, args.s5_steps)):
            if state["stage"] == "eval" and n_later > state["steps"].get(f"stage{later}", 0) \
                    and not args.export_now:
                # a run that finished before this stage existed continues with it
                state["stage"], state["step"], opt_state = later, state["steps"].get(f"stage{later}", 0), None
                log(f"continuing with stage {later} from step {state['step']}")
    state.setdefault("totals", {})
    state.setdefault("sessions", [])
    session = {"device": _device_name(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "bf16": bool(args.bf16), "seconds": 0.0, "from": [state["stage"], state["step"]]}
    wall0 = state["wall_seconds"]

    def wall():
        return wall0 + time.time() - run_start

    def checkpoint():
        state["wall_seconds"] = wall()
        session["seconds"] = round(time.time() - run_start, 1)
        session["to"] = [state["stage"], state["step"]]
        if session["from"][0] != "eval" and session not in state["sessions"]:
            state["sessions"].append(session)     # a run that only evaluates trained nothing
        save_ckpt(ck, {"model": model.state_dict(), "opt": opt.state_dict() if opt else None,
                       "state": state, "rng": rng_state(), "vocab": tok.itos, "cfg": cfg})

    if args.export_now:
        export(model, tok, enc, args, meta, test, args.out)
        return

    totals = {1: args.s1_steps, 2: args.s2_steps, 3: args.s3_steps, 4: args.s4_steps, 5: args.s5_steps}
    if args.budget_minutes:
        for st_ in range(1, 6):
            if shares[st_ - 1] == 0 and st_ > 3:
                totals[st_] = 0
    training_left = state["stage"] in (1, 2, 3, 4, 5)
    cache = None if args.smoke else args.work
    if training_left:
        imgs = load_images(train, cache and os.path.join(cache, "train_images.npy"), args.workers)
        local, cls_multi, cls_cnt, sil, nbr = patch_targets(
            train, cache and os.path.join(cache, "train_targets3.npz"), workers=args.workers)
        log("train data loaded")
        # every training tensor lives on the training device; batches are gathered there
        imgs_t = torch.from_numpy(imgs).to(dev)
        sil_t = torch.from_numpy(np.unpackbits(sil, axis=-1)).to(dev)                   # [N,256,64] uint8
        nbr_t = torch.from_numpy(np.unpackbits(nbr, axis=-1)[..., :36].copy()).to(dev)  # [N,256,36]
        local_t = torch.from_numpy(local.astype(np.int64)).to(dev)
        cls_multi_t = torch.from_numpy(cls_multi).to(dev)
        cls_cnt_t = torch.from_numpy(cls_cnt.astype(np.int64)).to(dev)
        N = len(train)
    model.to(dev)
    if dev.type == "cuda" and hasattr(torch, "set_default_device"):
        torch.set_default_device(dev)   # the sequence builders create their tensors where the model is
    if opt_state is not None:
        opt = make_opt(model, state["stage"], 1.0)
        opt.load_state_dict(opt_state)

    def order(stage, epoch):
        return np.random.default_rng(args.seed * 1000 + stage * 100 + epoch).permutation(N)

    last_ck = time.time()
    batches = {1: args.s1_batch, 2: args.s2_batch, 3: args.s2_batch, 4: args.s2_batch, 5: args.s2_batch}
    lrs = {1: args.s1_lr, 2: args.s2_lr, 3: args.s3_lr, 4: args.s4_lr, 5: args.s5_lr}
    budget_s = args.budget_minutes * 60.0
    probe_times = []

    def stage_total(stage):
        """Fixed total, or with a budget the total fixed after the probe steps (None until then)."""
        if not budget_s:
            return totals[stage]
        return state["totals"].get(f"stage{stage}")

    def next_stage(stage):
        for later in range(stage + 1, 6):
            if later <= 3 or (stage_total(later) or 0) > 0 or (budget_s and shares[later - 1] > 0):
                return later
        return "eval"

    while state["stage"] in (1, 2, 3, 4, 5):
        stage, B = state["stage"], batches[state["stage"]]
        total = stage_total(stage)
        if total is not None and state["step"] >= total:
            state["steps"][f"stage{stage}"] = total
            state["stage"] = next_stage(stage)
            state["step"] = 0
            opt = None
            probe_times = []
            checkpoint()
            continue
        if opt is None:
            opt = make_opt(model, stage, lrs[stage], args.s3_vit_mult)
        model.train()
        for p in model.vision_tower.parameters():
            p.requires_grad_(stage != 2)
        step = state["step"]
        per_epoch = N // B if N >= B else 1
        ep, k = divmod(step, per_epoch)
        perm = order(stage, ep)
        idx = perm[(k * B) % N:(k * B) % N + B]
        if len(idx) < B:
            idx = np.concatenate([idx, perm[:B - len(idx)]])
        t0 = time.time()
        f = lr_at(step, total or 10 ** 9, 1.0, max(1, min(50, (total or 10 ** 9) // 10)))
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * f
        it = torch.from_numpy(idx).to(dev)
        px = tl.normalize_pixels_torch(imgs_t[it])
        log_step = step % 10 == 0 or step == (total or 0) - 1
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=args.bf16):
            if stage == 1:
                loss, stats = vision_aux_loss(model, px, local_t[it], cls_multi_t[it], cls_cnt_t[it],
                                              sil_t[it].float(), nbr_t[it].float(), want_stats=log_step)
            else:
                if stage == 2:
                    with torch.no_grad():
                        feat, _ = model.vision_features(px)
                    aux = 0.0
                else:
                    feat, cls = model.vision_features(px, want_cls=True)
                    aux_loss, vstats = vision_aux_loss(model, px, local_t[it], cls_multi_t[it], cls_cnt_t[it],
                                                       sil_t[it].float(), nbr_t[it].float(), (feat, cls),
                                                       want_stats=log_step)
                    aux = args.s3_aux * aux_loss
                vis = model.multi_modal_projector(feat)
                prng = random.Random(args.seed * 7919 + stage * 1000003 + step)
                ew = args.s4_exists_weight if stage >= 4 else args.s3_exists_weight if stage == 3 else 1.0
                kw = {"exists": ew} if ew != 1.0 else None
                ids, lab, tid, pos, lw = pack_batch(enc, [train.questions[i] for i in idx], prng, kw)
                keep = None
                if stage == 4:
                    drng = np.random.default_rng(args.seed * 15485863 + step)
                    if drng.random() < args.s4_drop_prob:
                        keep = random_keep(drng, len(idx), N_VIS, args.s4_min_keep)
                elif stage == 5:
                    drng = np.random.default_rng(args.seed * 32452843 + step)
                    if drng.random() < args.s5_drop_prob:
                        if drng.random() < args.s5_salient_share:
                            k = int(drng.integers(args.s4_min_keep, N_VIS))
                            keep = salient_keep(drng, local[idx, :, 0] > 0, k)
                        else:
                            keep = random_keep(drng, len(idx), N_VIS, args.s4_min_keep)
                if keep is not None:
                    keep = keep.to(dev)
                lm_loss, tacc = lm_packed_loss(model, enc, vis, ids, lab, tid, pos, lw if kw else None, keep)
                loss = lm_loss + aux
                stats = {}
                if log_step:
                    stats = {"tok_acc": tacc.item(), "lm": lm_loss.item()}
                    if stage >= 3:
                        stats.update(p0=vstats["p0"], p2=vstats["p2"], kept=N_VIS if keep is None else keep.shape[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] = step + 1
        if log_step or (total is None and len(probe_times) < args.probe_steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
        dt = time.time() - t0
        if total is None:
            probe_times.append(dt)
            if len(probe_times) >= args.probe_steps or state["step"] >= args.probe_steps:
                med = float(np.median(probe_times[len(probe_times) // 3:]))
                fixed = max(state["step"] + 10, int(shares[stage - 1] * budget_s / med))
                state["totals"][f"stage{stage}"] = fixed
                log(f"stage {stage}: median {med * 1000:.1f} ms/step over {len(probe_times)} probe steps "
                    f"-> {fixed} steps for {shares[stage - 1] * budget_s:.0f} s")
                total = fixed
        if log_step:
            s = " ".join(f"{k}={v:.3f}" for k, v in stats.items())
            log(f"stage {stage} step {step}/{total} loss {loss.item():.4f} {s} {dt:.3f}s/step lr {f:.3f}")
            state["history"].append([stage, step, float(loss.item()), round(dt, 4)])
        if args.ckpt_every and time.time() - last_ck > args.ckpt_every:
            checkpoint()
            last_ck = time.time()
        if args.stop_after and time.time() - run_start > args.stop_after:
            checkpoint()
            log("stopping early on request; rerun to resume")
            return

    # ---- evaluation + export
    log(f"training done, wall {wall():.0f}s")
    train_wall = wall()
    checkpoint()
    if args.train_only:
        save_ckpt(os.path.join(args.work, "ckpt-portable.pt"),
                  {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "opt": None,
                   "state": state, "rng": None, "vocab": tok.itos, "cfg": cfg})
        log("--train-only: checkpoints saved; rerun without --train-only to evaluate and export")
        return
    model.to(dev)
    rep = evaluate(model, enc, test, load_images(test, None, args.workers), args.eval_images or None)
    eval_wall = wall() - train_wall
    rep.update({
        "recipe": args.recipe,
        "steps": {k: v for k, v in state["steps"].items()},
        "batch_sizes": {"stage1": args.s1_batch, "stage2": args.s2_batch, "stage3": args.s2_batch,
                        "stage4": args.s2_batch, "stage5": args.s2_batch},
        "lr": {"stage1": args.s1_lr, "stage2": args.s2_lr, "stage3": args.s3_lr,
               "stage3_vision_mult": args.s3_vit_mult},
        "stage3": {"aux_weight": args.s3_aux, "exists_weight": args.s3_exists_weight},
        "wall_seconds": round(train_wall, 1),
        "training_sessions": state["sessions"],
        "eval_wall_seconds": round(eval_wall, 1),
        "seconds_per_step": _step_times(state["history"]),
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": _device_name(dev), "torch": torch.__version__, "python": platform.python_version()},
        "seed": args.seed,
        "dataset": {k: meta.get(k) for k in ("name", "version", "seed", "splits")},
        "parameters": n_params,
        "smoke": bool(args.smoke),
    })
    if args.budget_minutes:
        rep["budget_minutes"] = args.budget_minutes
        rep["stage_shares"] = shares
    if args.recipe == "droptrained":
        rep["stage4"] = {"drop_prob": args.s4_drop_prob, "min_keep": args.s4_min_keep,
                         "exists_weight": args.s4_exists_weight, "lr": args.s4_lr}
        rep["stage5"] = {"drop_prob": args.s5_drop_prob, "salient_share": args.s5_salient_share,
                         "lr": args.s5_lr}
    log(json.dumps({k: v for k, v in rep.items() if k != "samples"}, indent=1))
    for s in rep["samples"]:
        log("sample", s)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.work, "training_report.json"), "w") as fo:
        json.dump(rep, fo, indent=1)
    export(model, tok, enc, args, meta, test, args.out)
    with open(os.path.join(args.out, "training_report.json"), "w") as fo:
        json.dump(rep, fo, indent=1)
    log("done")


def _load(path):
    """A checkpoint onto the CPU, from any device and any torch >= 1.13."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:
        return torch.load(path, map_location="cpu")


def _device_name(dev):
    if dev.type == "cuda":
        return "cuda: " + torch.cuda.get_device_name(dev)
    return "cpu: " + _cpu_model()


def _step_times(hist):
    out = {}
    for stage in (1, 2, 3, 4, 5):
        ts = [h[3] for h in hist if h[0] == stage and h[1] > 0]
        if ts:
            out[f"stage{stage}"] = round(float(np.median(ts)), 3)
    return out


def _cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
