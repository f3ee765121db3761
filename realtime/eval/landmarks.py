"""AFLW2000-3D landmark evaluation: ``python -m realtime.eval --aflw2000 DIR``.

The standard protocol: each face is cropped from its ground-truth landmarks' box
(no detector), framed as the model was trained (side 1.44 x the box's longer side);
NME = mean 2D landmark error / sqrt(w * h) of the ground-truth box, reported per
absolute-yaw bin [0, 30), [30, 60), [60, 90] degrees, their mean (the "balanced"
figure papers quote) and the all-image mean. The .mat landmarks come from 3DDFA's
MATLAB fits and are 1-based; we subtract 1 to match our 0-based pixel centres (a
one-pixel slip moves NME by ~0.2 points).

Off the protocol, ``--roll DEG`` turns every crop by +-DEG (alternately) and
``--occlude`` paints a flat box over each face: stress figures for what a webcam
brings (tilted heads, a hand in front of the face), to compare models by, not to
quote against papers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.core.landmarks import EYE_L, EYE_R, LIPS, MOUTH_IN
from realtime.core.nme import landmark_nme, point_errors
from realtime.core.weights import BundleError, load_bundle
from realtime.eval.aflw2000 import Sample, crop_affine, load_aflw2000, warp_crop
from realtime.live.decode import Decoder
from realtime.live.engines import create_engine
from realtime.train.groundtruth import DEFAULT_DATA

BINS = ((0, 30), (30, 60), (60, 90.001))
GROUPS = {"mouth": LIPS + MOUTH_IN, "eyes": EYE_L + EYE_R}  # reported apart


def invert(a: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(a)


def nme_table(nme: np.ndarray, yaw: np.ndarray) -> dict[str, float]:
    """Per-bin, balanced and overall NME, in percent."""
    out = {}
    for lo, hi in BINS:
        sel = (np.abs(yaw) >= lo) & (np.abs(yaw) < hi)
        out[f"[{lo},{round(hi)}]"] = float(100 * nme[sel].mean()) if sel.any() else float("nan")
    binned = [v for v in out.values() if np.isfinite(v)]
    out["balanced"] = float(np.mean(binned))
    out["all"] = float(100 * nme.mean())
    return out


def save_ced(nme: np.ndarray, yaw: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    xs = np.linspace(0, 10, 201)
    for (lo, hi), col in zip(BINS, ("tab:green", "tab:orange", "tab:red"), strict=True):
        sel = (np.abs(yaw) >= lo) & (np.abs(yaw) < hi)
        if sel.any():
            ax.plot(
                xs,
                [(100 * nme[sel] <= x).mean() for x in xs],
                color=col,
                label=f"yaw {lo}-{round(hi)} ({100 * nme[sel].mean():.2f}%)",
            )
    ax.plot(xs, [(100 * nme <= x).mean() for x in xs], "k", lw=2, label=f"all ({100 * nme.mean():.2f}%)")
    ax.set(xlabel="NME (%)", ylabel="fraction of images", title=title, xlim=(0, 10), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def wire_segments(layout, step: int) -> np.ndarray:
    """(S, 2) vertex-index pairs of a coarse wireframe: every ``step``-th UV row and
    column, joining neighbouring face pixels, so a mesh reads as a surface in a picture."""
    r = layout.resolution
    index = -np.ones((r, r), np.int64)
    index[layout.face_mask] = np.arange(layout.face_mask.sum())
    g = index[::step, ::step]
    pairs = [np.stack([g[:, :-1].ravel(), g[:, 1:].ravel()], 1), np.stack([g[:-1].ravel(), g[1:].ravel()], 1)]
    seg = np.concatenate(pairs)
    return seg[(seg >= 0).all(1)]


def save_grid(samples: list[Sample], verts: list[np.ndarray], layout, path: Path, n: int = 12) -> None:
    """A picture: dev images with the predicted dense mesh drawn over them."""
    seg = wire_segments(layout, max(2, layout.resolution // 32))
    tiles = []
    for s, v in list(zip(samples, verts, strict=True))[:n]:
        img = s.image.copy()
        overlay = img.copy()
        pts = np.round(v[:, :2] * 4).astype(np.int32)
        cv2.polylines(overlay, pts[seg], False, (80, 255, 80), 1, cv2.LINE_AA, shift=2)
        img = cv2.addWeighted(overlay, 0.6, img, 0.4, 0)
        tiles.append(cv2.resize(img, (225, 225), interpolation=cv2.INTER_AREA))
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + 4], 1) for i in range(0, len(tiles), 4)]
    cv2.imwrite(str(path), np.concatenate(rows, 0))


def rolled(to_crop: np.ndarray, degrees: float, resolution: int) -> np.ndarray:
    """``to_crop`` followed by a turn of the crop about its centre (positive: the
    picture turns counter-clockwise), as a tilted head would appear."""
    c = (resolution - 1) / 2
    turn = np.vstack([cv2.getRotationMatrix2D((c, c), degrees, 1.0), [0, 0, 1]])
    return (turn @ np.vstack([to_crop, [0, 0, 1]]))[:2]


def occlude(crop: np.ndarray, rng: np.random.Generator) -> None:
    """Paint one flat random-coloured box, 25-40 % of the crop's side each way, in
    the face's part of the crop (below the top quarter, off the side eighths)."""
    r = crop.shape[0]
    h, w = (rng.uniform(0.25, 0.4, 2) * r).astype(int)
    y, x = rng.integers(r // 4, r - h), rng.integers(r // 8, r - w - r // 8)
    crop[y : y + h, x : x + w] = rng.uniform(0, 255, 3)


def evaluate(
    samples: list[Sample],
    engine,
    decoder: Decoder,
    batch: int = 16,
    progress: bool = True,
    roll: float = 0.0,
    occluded: bool = False,
) -> dict:
    r = engine.resolution
    nme2, nme3, yaw, verts, points = [], [], [], [], []
    rng = np.random.default_rng(0)
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        aff = np.stack(
            [rolled(crop_affine(s.pts[:2], r), roll * (-1) ** (i + k), r) for k, s in enumerate(chunk)]
        )
        crops = np.stack(
            [
                cv2.cvtColor(warp_crop(s.image, a, r), cv2.COLOR_BGR2RGB)
                for s, a in zip(chunk, aff, strict=True)
            ]
        )
        if occluded:
            for c in crops:
                occlude(c, rng)
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
        out = engine.run_all(x)  # with a lid head's openings, as the live path decodes them
        recs = decoder.decode(
            out.maps.cpu(), np.stack([invert(a) for a in aff]), list(range(len(chunk))), out.lids
        )
        for s, rec in zip(chunk, recs, strict=True):
            e2, e3 = landmark_nme(rec.landmarks.T, s.pts)
            points.append(point_errors(rec.landmarks.T, s.pts))
            nme2.append(e2)
            nme3.append(e3)
            yaw.append(s.yaw)
            verts.append(rec.vertices)
        if progress:
            done = min(i + batch, len(samples))
            print(
                f"\revaluating {done}/{len(samples)}  running NME {100 * np.mean(nme2):.2f}%",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        print(file=sys.stderr)
    nme2_a, yaw_a = np.array(nme2), np.array(yaw)
    return {
        "nme2d": nme_table(nme2_a, yaw_a),
        "nme3d": nme_table(np.array(nme3), yaw_a),
        # the features expression moves, apart: the fits' lids hardly move, so a model
        # that closes them where the photo does may lose there what it gains elsewhere
        "groups": {k: nme_table(np.array(points)[:, ix].mean(1), yaw_a) for k, ix in GROUPS.items()},
        "per_image": nme2_a,
        "yaw": yaw_a,
        "vertices": verts,
        "n": len(samples),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--aflw2000",
        type=Path,
        default=DEFAULT_DATA / "aflw2000",
        help="folder of AFLW2000-3D .jpg/.mat pairs",
    )
    ap.add_argument("--weights", type=Path, default=None, help="bundle (default: shipped)")
    ap.add_argument("--backend", default="eager")
    ap.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="average with the mirror image's prediction (run_live.py --mirror; default off: "
        "the network's own figure)",
    )
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--roll", type=float, default=0.0, help="stress: turn crops by +-DEG (off the protocol)")
    ap.add_argument(
        "--occlude", action="store_true", help="stress: a flat box over each face (off the protocol)"
    )
    ap.add_argument("--out", type=Path, default=Path("out/eval"), help="folder for JSON/PNG")
    args = ap.parse_args(argv)
    try:
        bundle = load_bundle(args.weights)
        samples = load_aflw2000(args.aflw2000, args.limit)
    except (BundleError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    engine = create_engine(bundle, args.backend, mirror=args.mirror)
    res = evaluate(samples, engine, Decoder(bundle.layout), roll=args.roll, occluded=args.occlude)
    args.out.mkdir(parents=True, exist_ok=True)
    stress = (f", roll +-{args.roll:g} deg" if args.roll else "") + (", occluded" if args.occlude else "")
    title = f"{bundle.path.name} on AFLW2000-3D dev ({res['n']} images{stress})"
    save_ced(res["per_image"], res["yaw"], args.out / "ced.png", title)
    save_grid(samples, res["vertices"], bundle.layout, args.out / "mesh_grid.png")
    summary = {
        "weights": str(bundle.path),
        "images": res["n"],
        "nme2d_percent": res["nme2d"],
        "nme3d_percent": res["nme3d"],
        "groups_nme2d_percent": res["groups"],
        "backend": engine.name,
        "roll_deg": args.roll,
        "occluded": args.occlude,
    }
    (args.out / "aflw2000.json").write_text(json.dumps(summary, indent=2))
    t = res["nme2d"]
    print("68-point 2D NME (%): " + "  ".join(f"{k} {v:.2f}" for k, v in t.items()))
    for name, g in res["groups"].items():
        print(f"  {name} ({len(GROUPS[name])} points): " + "  ".join(f"{k} {v:.2f}" for k, v in g.items()))
    print(f"wrote {args.out}/aflw2000.json, ced.png, mesh_grid.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
