"""The face / not-face head (issue 28), fitted and reported by ``python -m
realtime.eval.face_head --weights BUNDLE -o OUT``.

A tiny head on a trained network's bottleneck (one linear layer, one logit) that says
whether a crop holds a face centred at the framing the network was trained on (side
1.44 x the 68-landmark box's longer side): the check the tracker asks MTCNN's O-Net for
on every tracked face, from features the map network computes anyway. ``--pool flat``
(default) reads the whole bottleneck (C x 4 x 4 for the lite model, C x 3 x 3 for the
mobile one at 96 px); ``--pool mean`` its global average, which averages away where in
the crop the face is: on the lite model's dev crops, a face shifted by 0.4-1 of its
size was still called a face 34-44 % of the time pooled, 15 % flat (AUC 0.990-0.992
against 0.998). Both are fitted and reported; the one asked for is kept.

The encoder stays frozen (its maps do not change by a bit): the bottleneck of labelled
crops is computed once and the head is a logistic regression on it. Crops:

* positives: training crops augmented as in training (rotation, scale, shift, colour,
  mirror, blur; hands, hair and glasses on 40 %), and turned (profiled) copies when
  their cache is built: a covered or turned face is still a face;
* negatives, of six kinds (``KINDS``): the face shifted by 0.4-1 face size; zoomed in
  x2.5-4 or out x0.2-0.4; background patches away from the face; flat, gradient,
  noise or stripe patches; and anything heavily blurred.

realtime.eval.face_head makes the same kinds from AFLW2000-3D dev images and reports
ROC AUC, accuracy at logit 0, and each kind's rate.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from realtime.core.model import FaceScoring
from realtime.core.paths import SHARED_DATA
from realtime.core.weights import Bundle, load_bundle, save_bundle
from realtime.live.track import CROP_SCALE as FRAMING

KINDS = ("shift", "zoom_in", "zoom_out", "background", "pattern", "blur")


def framing_affine(
    centre: np.ndarray, size: float, side: int, zoom: float = 1.0, angle: float = 0.0
) -> np.ndarray:
    """(2, 3) source -> crop affine of a ``side`` px crop centred on ``centre`` covering
    FRAMING x ``size`` / ``zoom`` source pixels (zoom > 1: the face looks larger)."""
    s = side * zoom / (FRAMING * size)
    m = cv2.getRotationMatrix2D((0.0, 0.0), angle, s)
    c = (side - 1) / 2
    m[:, 2] = [c, c] - m[:, :2] @ centre
    return m


def face_box(pts2d: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, longer side) of a (2, K) landmark box."""
    lo, hi = np.nanmin(pts2d, 1), np.nanmax(pts2d, 1)
    return (lo + hi) / 2, float((hi - lo).max())


def pattern(rng: np.random.Generator, side: int) -> np.ndarray:
    """A patch with no face: flat colour, a gradient, coarse noise or stripes, noisy."""
    kind = rng.integers(4)
    colour = rng.uniform(0, 255, 3)
    if kind == 0:
        img = np.broadcast_to(colour, (side, side, 3)).astype(np.float32)
    elif kind == 1:
        t = np.linspace(0, 1, side, dtype=np.float32)
        g = np.cos(rng.uniform(0, np.pi)) * t[None, :] + np.sin(rng.uniform(0, np.pi)) * t[:, None]
        img = colour + (rng.uniform(0, 255, 3) - colour) * g[..., None]
    elif kind == 2:
        cells = int(rng.integers(2, 24))
        img = cv2.resize(rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32), (side, side))
    else:
        period = rng.uniform(4, side / 2)
        t = np.arange(side, dtype=np.float32)
        a = rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * (np.cos(a) * t[None, :] + np.sin(a) * t[:, None]) / period) > 0
        img = np.where(wave[..., None], colour, rng.uniform(0, 255, 3)).astype(np.float32)
    img = img + rng.normal(0, rng.uniform(0, 20), (side, side, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def negative(
    rng: np.random.Generator, image: np.ndarray, centre: np.ndarray, size: float, side: int, kind: str
) -> np.ndarray:
    """One negative crop (RGB or BGR, as ``image``) of ``kind`` from a picture whose
    face is at ``centre`` with longer side ``size`` px."""
    angle = rng.uniform(-20, 20)
    border = cv2.BORDER_CONSTANT if rng.random() < 0.5 else cv2.BORDER_REFLECT
    if kind == "shift":
        d = rng.uniform(0.4, 1.0) * size
        a = rng.uniform(0, 2 * np.pi)
        m = framing_affine(
            centre + d * np.array([np.cos(a), np.sin(a)]), size, side, rng.uniform(0.85, 1.2), angle
        )
    elif kind == "zoom_in":
        off = rng.uniform(-0.25, 0.25, 2) * size
        m = framing_affine(centre + off, size, side, rng.uniform(2.5, 4.0), angle)
    elif kind == "zoom_out":
        m = framing_affine(
            centre + rng.uniform(-0.2, 0.2, 2) * size, size, side, rng.uniform(0.2, 0.4), angle
        )
    elif kind == "background":
        m = background_affine(rng, image.shape[:2], centre, size, side)
        if m is None:
            return pattern(rng, side)
    elif kind == "pattern":
        return pattern(rng, side)
    elif kind == "blur":
        img = negative(rng, image, centre, size, side, KINDS[rng.integers(4)])
        img = img if rng.random() < 0.5 else pattern(rng, side)
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(6, 16), borderType=cv2.BORDER_REFLECT)
    else:
        raise ValueError(kind)
    return warp(image, m, side, border)


def background_affine(
    rng: np.random.Generator, shape: tuple[int, int], centre: np.ndarray, size: float, side: int
) -> np.ndarray | None:
    """A crop of the picture that stays clear of the face's box (grown by a fifth), or
    None when the picture has no such place. Small pictures (the 120 px training crops)
    give small corner patches, enlarged."""
    h, w = shape
    lo, hi = centre - 0.6 * size, centre + 0.6 * size
    for _ in range(20):
        span = rng.uniform(0.15, 1.2) * size
        x0, y0 = rng.uniform(-0.1 * span, w - 0.9 * span), rng.uniform(-0.1 * span, h - 0.9 * span)
        if x0 + span < lo[0] or x0 > hi[0] or y0 + span < lo[1] or y0 > hi[1]:
            s = side / span
            return np.array([[s, 0, -s * x0], [0, s, -s * y0]])
    return None


def warp(image: np.ndarray, m: np.ndarray, side: int, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.8:
        image = cv2.GaussianBlur(image, (0, 0), 0.45 / scale)
    return cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=border)


def colour_jitter(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32) * rng.uniform(0.6, 1.4, 3)[None, None]
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.6))
    return np.clip(out, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------- training crops


def training_crops(
    bundle: Bundle, n_pos: int, n_neg: int, profiled: float, seed: int = 0, data: Path = SHARED_DATA
):
    """(images (N, R, R, 3) uint8 RGB at the network's input side, labels (N,), kinds
    (N,) str) from the training crops (the 500 validation crops left out)."""
    from realtime.core.uv import load_bfm
    from realtime.train.groundtruth import Batcher, MapMaker, load_trainset
    from realtime.train.occluders import occlude_one

    rng = np.random.default_rng(seed)
    train = load_trainset(data)
    order = np.random.default_rng(12345).permutation(len(train.images))  # as train.py
    idx = order[500:]
    maker = MapMaker(load_bfm(data / "bfm" / "bfm_noneck_uv.npz"), bundle.config.layout_resolution)
    side = bundle.config.resolution
    src, prof_idx = train, None
    if profiled > 0:
        from realtime.train.profiling import cache_path, join_profiled, load_cache

        folder = cache_path(train.names, 2)
        if (folder / "xform.npy").exists():
            src, prof_idx = join_profiled(train, load_cache(folder), exclude=order[:500])
        else:
            print(f"no profiled cache at {folder}: positives without turned crops", file=sys.stderr)
    batcher = Batcher(src, maker, augment=True, flip_p=0.5, occlude=occlude_one, resolution=side)
    n_prof = int(profiled * n_pos) if prof_idx is not None else 0
    pick = np.concatenate([rng.choice(idx, n_pos - n_prof), rng.choice(prof_idx, n_prof) if n_prof else []])
    pos, _ = batcher.pixels(pick.astype(np.int64), rng)
    neg, kinds = [], []
    for k in range(n_neg):
        i = rng.choice(idx)
        kind = KINDS[k % len(KINDS)]
        centre, size = face_box(train.pts68[i, :2])
        img = negative(rng, train.images[i], centre, size, side, kind)
        neg.append(colour_jitter(rng, img))
        kinds.append(kind)
    images = np.concatenate([pos, np.stack(neg)])
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))].astype(np.float32)
    return images, labels, np.array(["positive"] * len(pos) + kinds)


# ----------------------------------------------------------------- AFLW2000-3D crops


@torch.no_grad()
def features(model: FaceScoring, images: np.ndarray, batch: int = 64) -> torch.Tensor:
    """(N, C, H, W) the encoder's output (what the head reads) for (N, R, R, 3) uint8 RGB."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float() / 255.0
        out.append(model.encode(x))
    return torch.cat(out)


def fit_head(feats: torch.Tensor, labels: torch.Tensor, l2: float = 1e-4, steps: int = 200) -> nn.Linear:
    """Logistic regression (L-BFGS, L2 on the weights), classes weighted equally."""
    head = nn.Linear(feats.shape[1], 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    pos = labels.mean()
    w = torch.where(labels > 0.5, 0.5 / pos, 0.5 / (1 - pos))
    opt = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logit = head(feats).squeeze(1)
        loss = (nn.functional.binary_cross_entropy_with_logits(logit, labels, reduction="none") * w).mean()
        loss = loss + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def save_with_head(bundle: Bundle, path: Path, model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, float]:
    """Write ``bundle`` (``model``'s network with a head fitted on its frozen encoder)
    to ``path`` and check, on the bundle as stored (fp16 and all), that its maps of crops
    ``x`` are bit for bit ``model``'s: a head only reads the encoder. (The stored
    network, the maps' max abs difference, 0.0); on any difference the file is removed
    and the run ends with one line."""
    save_bundle(bundle, path)
    stored = load_bundle(path).build_model()
    with torch.no_grad():
        diff = float((stored(x) - model(x)).abs().max())
    if diff != 0.0:
        path.unlink()
        raise SystemExit(f"error: the maps changed by {diff}: {path} not written")
    return stored, diff


def write_figures(figures: dict, path: Path | None) -> None:
    """Print a head's figures, and write them as JSON to ``path`` when given."""
    print(json.dumps(figures, indent=1))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=1))


def with_head(bundle: Bundle, head: nn.Linear, mode: str, extra: dict) -> Bundle:
    """A copy of ``bundle`` with the head: config ``face_head`` = ``mode``, state keys
    ``face_head.weight`` and ``face_head.bias``; everything else as it was."""
    state = {k: v for k, v in bundle.state_dict.items() if not k.startswith("face_head.")}
    state["face_head.weight"] = head.weight.detach().clone()
    state["face_head.bias"] = head.bias.detach().clone()
    provenance = {**bundle.provenance, "face_head": extra}
    cfg = dataclasses.replace(bundle.config, face_head=mode)
    return Bundle(cfg, state, bundle.layout, provenance, bundle.normalisation, bundle.path)
