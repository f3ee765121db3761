"""A contact sheet of every shipped effect on real faces, for a person to judge.

``python tools/effects_grid.py [--weights BUNDLE] [--out PNG]``: faces found and
reconstructed by the real pipeline (MTCNN, tracker, PRNet, decoder) in AFLW2000
photos and carphone frames; columns are the input, each mask, the face swap with
``obama_portrait.jpg`` as source, and the debug views.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from realtime.core.paths import SHARED_DATA as DATA
from realtime.core.types import Frame, Reconstruction
from realtime.render.effects import DEBUG_VIEWS, MASKS

LIVE = (("aflw2000/image00014.jpg", 1.0), ("aflw2000/image00020.jpg", 1.0), ("carphone_176x144.mp4#60", 3.0))
SOURCE = "media/obama_portrait.jpg"
TILE = 240


def _load(spec: str, scale: float) -> np.ndarray:
    name, _, index = spec.partition("#")
    path = DATA / name if "/" in name else DATA / "media" / name
    if index:
        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, img = cap.read()
        cap.release()
        if not ok:
            raise SystemExit(f"error: cannot read frame {index} of {path}")
    else:
        img = cv2.imread(str(path))
        if img is None:
            raise SystemExit(f"error: cannot read {path}")
    return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale != 1 else img


def _faces(processor_factory, image: np.ndarray) -> list[Reconstruction]:
    """Run a fresh pipeline on a still a few times, so the tracker's re-framing from
    its own landmarks settles as it would on video."""
    proc = processor_factory()
    recs: list[Reconstruction] = []
    for i in range(3):
        recs = proc.process(Frame(image, i, time.perf_counter())).reconstructions or recs
    return recs


def _tile(img: np.ndarray, label: str) -> np.ndarray:
    t = cv2.resize(img, (round(img.shape[1] * TILE / img.shape[0]), TILE), interpolation=cv2.INTER_AREA)
    t = cv2.resize(t, (TILE, TILE), interpolation=cv2.INTER_AREA) if abs(t.shape[1] - TILE) < 40 else t
    cv2.putText(t, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(t, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return t


def make_grid(weights: str | None = None) -> np.ndarray:
    from realtime.core.weights import load_bundle
    from realtime.live.faces import FaceProcessor
    from realtime.render.effects.swap import ALBEDO_MAX, FaceSwap
    from realtime.render.renderer import Renderer

    bundle = load_bundle(weights)
    base = FaceProcessor.from_bundle(bundle, "eager", "cpu", filter_factory=None)
    factory = base.fresh
    photo = cv2.imread(str(DATA / SOURCE))
    source = _faces(factory, photo)
    if not source:
        raise SystemExit(f"error: no face found in {SOURCE}")
    swap = FaceSwap(bundle.layout, photo, source[0])
    renderer = None
    rows = []
    for spec, scale in LIVE:
        img = _load(spec, scale)
        faces = _faces(factory, img)
        if renderer is None:
            renderer = Renderer(bundle.layout, img.shape[1], img.shape[0])
        tiles = [_tile(img, Path(spec).name)]
        for name in (*MASKS, "swap", *DEBUG_VIEWS):
            out = renderer.render(img, faces, swap if name == "swap" else name)
            tiles.append(_tile(out, name if faces else f"{name} (no face)"))
        rows.append(tiles)
    src_tile = _tile(photo, "swap source")
    tex = swap.texture
    a = tex[..., 3:] / 255.0
    albedo = np.clip(tex[..., :3] * np.sqrt(ALBEDO_MAX), 0, 255)  # stored as sqrt(albedo / ALBEDO_MAX)
    tex_tile = _tile((albedo * a + 40 * (1 - a)).astype(np.uint8), "source albedo (de-lit UV)")
    width = max(sum(t.shape[1] for t in r) for r in rows)
    out_rows = []
    for r in [*rows, [src_tile, tex_tile]]:
        row = np.hstack(r)
        out_rows.append(np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))))
    return np.vstack(out_rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/effects_grid.py", description=__doc__)
    ap.add_argument("--weights", default=None, help="weights bundle (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=Path("render_grid.png"))
    args = ap.parse_args(argv)
    grid = make_grid(args.weights)
    cv2.imwrite(str(args.out), grid)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
