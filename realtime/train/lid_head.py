"""The lid head (issue 34): each eye's lid opening read from the network's encoder by
one linear layer, so the live lids blink. ``python -m realtime.train.lid_head --weights
BUNDLE -o OUT [--eyes]``.

Why a head and not the map: the decoded map's lids hardly move (held-out training
crops: r 0.52, sd ratio 0.79 against the MediaPipe labels), while a linear read of the
encoder follows them better (the bottleneck: r 0.71; with ``--eyes`` the 1/8 features
over the eyes too, config ``lid_eyes``: r 0.73; docs/expression.md). The 3DMM fits the
map learned from barely blink, and the decoder smooths the few lid texels that the
labels moved; the encoder still holds what it saw.

The encoder stays frozen (the maps do not change by a bit): what the head reads, for
every MediaPipe-labelled training crop augmented as in training at ``--strength``
(``--draws`` augmentations of each), is computed once, and the head is a ridge
regression on it (standardised features, one closed-form solve) onto each eye's opening
(``realtime.core.landmarks.eye_openings`` of the labels: similarity-invariant, so an
augmented crop keeps its crop's target). The 500 crops the trainer holds out are never
fitted; the report gives the head's and the map's sd ratio and correlation on them. On
real clips against MediaPipe: ``python -m realtime.eval expression``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realtime.core.landmarks import eye_openings
from realtime.core.model import FaceScoring
from realtime.core.paths import SHARED_DATA
from realtime.core.uv import load_bfm
from realtime.core.weights import Bundle, load_bundle
from realtime.train.batches import to_input
from realtime.train.expression import labelled_landmarks
from realtime.train.face_head import save_with_head, write_figures
from realtime.train.groundtruth import Batcher, MapMaker, TrainSet, load_trainset

HELD_OUT = 500  # the trainer's validation crops: the first of its seed-12345 order
SPLIT_SEED = 12345


def labelled_split(data: TrainSet, bfm: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit crops, held-out crops, (M, 2) each crop's labelled eye openings): only
    crops MediaPipe labelled (the fits' own lids are what the head must not learn)."""
    fit, labels = labelled_landmarks(data, bfm, human_refit=True)
    labelled = np.abs(labels - fit).max((1, 2)) > 0
    order = np.random.default_rng(SPLIT_SEED).permutation(len(data.images))
    held, rest = order[:HELD_OUT], order[HELD_OUT:]
    return rest[labelled[rest]], held[labelled[held]], eye_openings(labels).astype(np.float32)


def without_lid_head(bundle: Bundle, eyes: bool) -> Bundle:
    """``bundle`` with no lid head and ``lid_eyes`` = ``eyes`` (a PRNet's config field;
    the mobile network's head reads the bottleneck only): the network whose features a
    new head is fitted on (its own head, if any, sized for the old ones)."""
    state = {k: v for k, v in bundle.state_dict.items() if not k.startswith("lid_head.")}
    eyes_field = {"lid_eyes": eyes} if bundle.config.arch == "prnet" else {}
    cfg = dataclasses.replace(bundle.config, lids=False, **eyes_field)
    return Bundle(cfg, state, bundle.layout, bundle.provenance, bundle.normalisation, bundle.path)


def lid_inputs(model: FaceScoring, x: torch.Tensor) -> torch.Tensor:
    """(B, F) what ``model``'s lid head reads for crops ``x`` (B, 3, R, R) in [0, 1]."""
    if not model.config.lid_eyes:
        return model.encode(x).flatten(1)
    z, taps = model.encode_taps(x)  # type: ignore[attr-defined]  # lid_eyes: PRNet only
    return model.lid_features(z, taps)


def head_inputs(model: FaceScoring, batcher: Batcher, idx: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, F) float32 lid-head inputs of crops ``idx`` as ``batcher`` makes them."""
    rng, out = np.random.default_rng(seed), []
    for s in range(0, len(idx), 256):
        imgs, _ = batcher.pixels(idx[s : s + 256], rng)
        with torch.no_grad():
            out.append(lid_inputs(model, to_input(imgs, torch.device("cpu"))).numpy())
        print(f"\r  features {min(s + 256, len(idx))}/{len(idx)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return np.concatenate(out)


def fit_ridge(feats: np.ndarray, targets: np.ndarray, lam: float) -> nn.Linear:
    """Ridge regression of ``targets`` (N, K) on ``feats`` (N, D), the features
    standardised (a constant feature is left out: its sd floored, its weight ~0), as
    a Linear(D, K) on the raw features."""
    x = feats.astype(np.float64)
    mu, sd = x.mean(0), x.std(0)
    sd = np.maximum(sd, 1e-3 * max(float(np.median(sd)), 1e-9))
    a = (x - mu) / sd
    y = targets.astype(np.float64)
    w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (y - y.mean(0))) / sd[:, None]
    head = nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w.T))
        head.bias.copy_(torch.from_numpy(y.mean(0) - mu @ w))
    return head


def with_lid_head(bundle: Bundle, head: nn.Linear, extra: dict) -> Bundle:
    """A copy of ``bundle`` (as ``without_lid_head`` gives it) with the head: config
    ``lids`` on, state keys ``lid_head.weight`` and ``lid_head.bias``."""
    state = {**bundle.state_dict}
    state["lid_head.weight"] = head.weight.detach().clone()
    state["lid_head.bias"] = head.bias.detach().clone()
    cfg = dataclasses.replace(bundle.config, lids=True)
    provenance = {**bundle.provenance, "lid_head": extra}
    return Bundle(cfg, state, bundle.layout, provenance, bundle.normalisation, bundle.path)


def agreement(ours: np.ndarray, ref: np.ndarray) -> dict:
    """Our sd over the reference's, and the correlation, of eye openings (N, 2) pooled."""
    a, b = ours.ravel(), ref.ravel()
    return {"sd_ratio": float(a.std() / b.std()), "corr": float(np.corrcoef(a, b)[0, 1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.train.lid_head", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="a bundle, PRNet or mobile (default: the shipped lite model)",
    )
    ap.add_argument("-o", "--out", type=Path, required=True, help="the bundle with its lid head")
    ap.add_argument("--strength", type=float, default=0.5, help="augmentation strength of the fitted crops")
    ap.add_argument("--lam", type=float, default=10000.0, help="ridge penalty on the standardised features")
    ap.add_argument("--draws", type=int, default=2, help="augmented draws of each fitted crop")
    ap.add_argument(
        "--eyes",
        action="store_true",
        help="the head also reads the 1/8 features over the eyes (PRNet only: config lid_eyes)",
    )
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--report", type=Path, default=None, help="write the figures (JSON) here")
    args = ap.parse_args(argv)
    bundle = load_bundle(args.weights)
    if args.eyes and bundle.config.arch != "prnet":
        raise SystemExit("error: --eyes reads PRNet's 1/8 features: use a PRNet bundle, or leave --eyes out")
    bundle = without_lid_head(bundle, args.eyes)
    t0 = time.time()
    data = load_trainset(args.data)
    bfm = load_bfm(args.data / "bfm" / "bfm_noneck_uv.npz")
    fit_idx, held_idx, openings = labelled_split(data, bfm)
    model = bundle.build_model()
    maker = MapMaker(bfm, bundle.config.layout_resolution)
    augmented = Batcher(
        data, maker, augment=True, strength=args.strength, resolution=bundle.config.resolution
    )
    plain = Batcher(data, maker, augment=False, resolution=bundle.config.resolution)
    print(f"{len(fit_idx)} labelled crops to fit, {len(held_idx)} held out", file=sys.stderr, flush=True)
    draws = [head_inputs(model, augmented, fit_idx, seed) for seed in range(args.draws)]
    head = fit_ridge(np.concatenate(draws), np.tile(openings[fit_idx], (args.draws, 1)), args.lam)
    del draws
    # held out: the head's openings and the map's own, against the labels
    imgs, _ = plain.pixels(held_idx, np.random.default_rng(0))
    x = to_input(imgs, torch.device("cpu"))
    with torch.no_grad():
        z = lid_inputs(model, x)
        from_head = head(z).numpy()
        maps = model(x).numpy() * bundle.config.output_scale
    k = bundle.layout.kpt_ind
    from_map = eye_openings(maps[:, :2, k[1], k[0]].transpose(0, 2, 1))
    figures = {
        "fitted_crops": int(len(fit_idx)),
        "held_out_crops": int(len(held_idx)),
        "strength": args.strength,
        "lam": args.lam,
        "draws": args.draws,
        "eyes": args.eyes,
        "held_out": {
            "head": agreement(from_head, openings[held_idx]),
            "map": agreement(from_map, openings[held_idx]),
        },
    }
    recipe = " ".join(sys.argv[1:] if argv is None else argv)
    out = with_lid_head(bundle, head, {"recipe": recipe, **figures})
    stored, figures["maps_max_abs_diff"] = save_with_head(out, args.out, model, x[:16])
    with torch.no_grad():
        stored_head = stored.lid_head(z).numpy()
    figures["stored_head_max_abs_diff"] = float(np.abs(stored_head - from_head).max())
    write_figures(figures, args.report)
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
