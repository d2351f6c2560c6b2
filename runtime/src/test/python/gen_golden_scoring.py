#!/usr/bin/python3
"""Goldens for dev.tokenpress.runtime.eval.AnswerScoring from the training script's own code
(models/tiny-llava-shapes/train.py: tinyllava.normalize_answer, train.parse_caption, and the
caption counting lines of train.evaluate, copied verbatim below).

  /usr/bin/python3 runtime/src/test/python/gen_golden_scoring.py \
      > runtime/src/test/resources/golden/eval/scoring.json
"""
import json
import os
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..")
sys.path.insert(0, os.path.join(root, "models", "tiny-llava-shapes"))
import tinyllava as tl  # noqa: E402
import train  # noqa: E402

TEXTS = [
    "yes", "Yes.", "  two ", "top left", "the TOP-left!", "a large yellow triangle at the center.",
    "a small red circle at the top left, a large blue square at the bottom right.",
    "a small red circle at the top left , a large blue square at the bottom right .",
    ". a small green cross at the left.", "a small red circle at the top left, a small red circle at the top left.",
    "no objects", "a  large   purple cross at the right,a small cyan circle at the top.", "",
    "a large red circle at the", "three", "a small yellow square at the bottom. a large green triangle at the top right.",
]

# (prediction, ground-truth objects as (size, color, shape, position)) per image
CAPTIONS = [
    ("a large yellow triangle at the center.", [("large", "yellow", "triangle", "center")]),
    ("a small red circle at the top left, a large blue square at the bottom right.",
     [("small", "red", "circle", "top left"), ("large", "green", "square", "bottom right")]),
    ("a small red circle at the top left, a small red circle at the top left.",
     [("small", "red", "circle", "top left")]),
    ("garbage output", [("small", "cyan", "cross", "top")]),
    ("a large purple cross at the right, a small cyan circle at the top.",
     [("large", "purple", "cross", "left"), ("small", "cyan", "circle", "top"), ("large", "red", "square", "center")]),
]


def tally(captions):
    tp = npred = ngt = halluc = 0
    for pred, objs in captions:
        # --- verbatim from train.evaluate (scene objects given as tuples) ---
        gt = list(objs)
        pr = train.parse_caption(pred)
        gl = list(gt)
        for o in pr:
            if o in gl:
                gl.remove(o)
                tp += 1
        present = {(o[1], o[2]) for o in objs}
        halluc += sum((o[1], o[2]) not in present for o in pr)
        npred += len(pr)
        ngt += len(gt)
    prec = tp / max(1, npred)
    rec = tp / max(1, ngt)
    return {"true_positives": tp, "predicted": npred, "ground_truth": ngt, "hallucinated": halluc,
            "precision": prec, "recall": rec, "f1": 2 * prec * rec / max(1e-9, prec + rec),
            "chair": halluc / max(1, npred)}


out = {
    "source": "models/tiny-llava-shapes/train.py (normalize_answer, parse_caption, evaluate)",
    "normalize": [{"text": t, "normalized": tl.normalize_answer(t)} for t in TEXTS],
    "parse_caption": [{"text": t, "objects": [list(o) for o in train.parse_caption(t)]} for t in TEXTS],
    "captions": [{"prediction": p, "truth": [list(o) for o in objs]} for p, objs in CAPTIONS],
    "tally": tally(CAPTIONS),
}
print(json.dumps(out, indent=1))
