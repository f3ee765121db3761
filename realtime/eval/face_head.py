"""Fit and report the face / not-face head (issue 28): ``python -m
realtime.eval.face_head --weights BUNDLE -o OUT``.

The head and its training crops are realtime.train.face_head's; this fits it on the
frozen encoder's features, reports each pooling (``--pool``) on AFLW2000-3D dev crops
of the same kinds (never trained on; their 450 px frames have background to spare):
ROC AUC, accuracy at logit 0 and each kind's rate, and writes the bundle only when
its maps are bit for bit the old ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.core.model import HEAD_MODES, head_features
from realtime.core.paths import SHARED_DATA
from realtime.core.weights import load_bundle
from realtime.eval.aflw2000 import Sample, load_aflw2000, warp_crop
from realtime.eval.landmarks import occlude
from realtime.train.face_head import (
    KINDS,
    face_box,
    features,
    fit_head,
    framing_affine,
    negative,
    save_with_head,
    training_crops,
    with_head,
    write_figures,
)


def dev_crops(samples: list[Sample], side: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out crops from AFLW2000-3D dev images, RGB: each image gives its protocol
    crop, a jittered one (shift up to 0.15 face, zoom 0.85-1.2, roll +-20 deg, a box over
    a quarter of the time, as a tracker's crop of a real face may be) and one negative,
    the kinds in turn."""
    rng = np.random.default_rng(seed)
    images, labels, kinds = [], [], []
    for k, s in enumerate(samples):
        centre, size = face_box(s.pts[:2])
        rgb = cv2.cvtColor(s.image, cv2.COLOR_BGR2RGB)
        images.append(warp_crop(rgb, framing_affine(centre, size, side), side))
        kinds.append("protocol")
        m = framing_affine(
            centre + rng.uniform(-0.15, 0.15, 2) * size,
            size,
            side,
            rng.uniform(0.85, 1.2),
            rng.uniform(-20, 20),
        )
        jit = warp_crop(rgb, m, side)
        if rng.random() < 0.25:
            occlude(jit, rng)
        images.append(jit)
        kinds.append("jittered")
        kind = KINDS[k % len(KINDS)]
        images.append(negative(rng, rgb, centre, size, side, kind))
        kinds.append(kind)
    labels = np.array([0.0 if k in KINDS else 1.0 for k in kinds], np.float32)
    return np.stack(images), labels, np.array(kinds)


# ----------------------------------------------------------------- fitting and scoring


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties half)."""
    from scipy.stats import rankdata

    r = rankdata(scores)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    return float((r[labels > 0.5].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def report(logits: np.ndarray, labels: np.ndarray, kinds: np.ndarray) -> dict:
    """ROC AUC, accuracy at logit 0 (balanced over the two classes too), and per kind
    the share called a face."""
    said = logits > 0
    out = {
        "auc": roc_auc(logits, labels),
        "accuracy": float((said == (labels > 0.5)).mean()),
        "balanced_accuracy": float(0.5 * (said[labels > 0.5].mean() + (~said[labels < 0.5]).mean())),
        "n_positive": int(labels.sum()),
        "n_negative": int((labels < 0.5).sum()),
        "called_face": {k: float(said[kinds == k].mean()) for k in dict.fromkeys(kinds.tolist())},
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.eval.face_head", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--weights", type=Path, default=None, help="bundle whose encoder the head reads (default: shipped)"
    )
    ap.add_argument("-o", "--out", type=Path, required=True, help="the bundle with its head")
    ap.add_argument("--positives", type=int, default=8000)
    ap.add_argument("--negatives", type=int, default=8000)
    ap.add_argument("--profiled", type=float, default=0.3, help="share of positives from turned crops")
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--pool", choices=HEAD_MODES, default="flat", help="the head kept (both are reported)")
    ap.add_argument("--aflw2000", type=Path, default=SHARED_DATA / "aflw2000")
    ap.add_argument("--report", type=Path, default=None, help="write the figures (JSON) here")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    bundle = load_bundle(args.weights)
    model = bundle.build_model()
    t0 = time.time()
    imgs, labels, kinds = training_crops(bundle, args.positives, args.negatives, args.profiled)
    feats = features(model, imgs)
    print(f"{len(imgs)} training crops and their features in {time.time() - t0:.0f} s", flush=True)
    dev_imgs, dev_labels, dev_kinds = dev_crops(load_aflw2000(args.aflw2000), bundle.config.resolution)
    dev_feats = features(model, dev_imgs)
    figures: dict = {"positives": args.positives, "negatives": args.negatives, "profiled": args.profiled,
                     "l2": args.l2, "kept": args.pool}  # fmt: skip
    heads = {}
    for mode in HEAD_MODES:
        head = heads[mode] = fit_head(head_features(feats, mode), torch.from_numpy(labels), args.l2)
        with torch.no_grad():
            train_logits = head(head_features(feats, mode)).squeeze(1).numpy()
            dev_logits = head(head_features(dev_feats, mode)).squeeze(1).numpy()
        figures[mode] = {
            "train": report(train_logits, labels, kinds),
            "aflw2000_dev": report(dev_logits, dev_labels, dev_kinds),
        }
        print(f"{mode}: dev AUC {figures[mode]['aflw2000_dev']['auc']:.4f}", flush=True)
    recipe = " ".join(sys.argv[1:] if argv is None else argv)
    out = with_head(bundle, heads[args.pool], args.pool, {"recipe": recipe, **figures})
    x = torch.from_numpy(dev_imgs[:16]).permute(0, 3, 1, 2).float() / 255.0
    _, figures["maps_max_abs_diff"] = save_with_head(out, args.out, model, x)
    write_figures(figures, args.report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
