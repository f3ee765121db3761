"""The peers' frames and figures: the clip at each size, the shifted still for jitter,
AFLW2000-3D NME with each peer's own detector, and the timing statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime.bench.pipeline import CLIP
from realtime.core.nme import landmark_nme
from realtime.core.paths import MEDIA
from realtime.live.capture import CaptureError, clip_frames
from realtime.peers.workers import PeerError, Worker, log

SIZES = ((640, 480), (1280, 720))
WARMUP = 10  # frames each peer processes before timing (graph set-up, first allocations, caches)
JITTER_FRAMES = 30  # as tests/test_smooth.py
JITTER_SKIP = 3


def played_frames(width: int, height: int, n: int) -> np.ndarray:
    """(n, H, W, 3): the carphone clip letterboxed to width x height (as the pipeline
    benchmark's clips), played forward and back when ``n`` is longer than the clip."""
    try:
        src = clip_frames(CLIP, (width, height))
    except CaptureError as e:
        raise PeerError(str(e)) from None
    order = list(range(len(src))) + list(range(len(src) - 2, 0, -1))
    return np.stack([src[order[k % len(order)]] for k in range(n)])


def still_frames(n: int = JITTER_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """(frames, shifts): the astronaut photo moved by uniform +-0.5 px, seed 0, bilinear,
    exactly as tests/test_smooth.py's still face."""
    img = cv2.imread(str(MEDIA / "astronaut.png"))
    if img is None:
        raise PeerError(f"cannot read {MEDIA / 'astronaut.png'}")
    rng = np.random.default_rng(0)
    shifts = np.array([rng.uniform(-0.5, 0.5, 2) for _ in range(n)])
    frames = [
        cv2.warpAffine(
            img, np.array([[1, 0, dx], [0, 1, dy]], np.float32), img.shape[1::-1], flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        for dx, dy in shifts
    ]  # fmt: skip
    return np.stack(frames), shifts


def jitter(faces: list[list], shifts: np.ndarray, skip: int = JITTER_SKIP) -> dict:
    """RMS frame-to-frame motion (px) of the 68 landmarks, with the known shift and
    without it; None where a frame had no face."""
    if any(not f for f in faces[skip:]):
        missed = sum(not f for f in faces[skip:])
        return {"skipped": f"no face in {missed} of {len(faces) - skip} frames"}
    lm = np.array([f[0] for f in faces[skip:]])  # (T, 68, 2)

    def motion(x: np.ndarray) -> float:
        return float(np.sqrt((np.diff(x, axis=0) ** 2).sum(-1).mean()))

    return {
        "px": motion(lm - shifts[skip:, None, :]),
        "px_with_shifts": motion(lm),
        "frames": len(lm),
    }


def pick_face(faces: list, gt: np.ndarray) -> np.ndarray | None:
    """The face whose landmarks' centre is nearest the ground truth's box centre, if
    within half the box's size (else the peer found some other face)."""
    lo, hi = gt[:2].min(1), gt[:2].max(1)
    centre, size = (lo + hi) / 2, float(np.sqrt(np.prod(hi - lo)))
    best, dist = None, 0.5 * size
    for f in faces:
        f = np.asarray(f)
        d = float(np.linalg.norm(f.mean(0) - centre))
        if d < dist:
            best, dist = f, d
    return best


def bin_counts(ev, yaw: np.ndarray) -> dict[str, int]:
    """Images per yaw bin: a bin of a few images makes the balanced figure noisy."""
    return {
        f"[{lo},{round(hi)}]": int(((np.abs(yaw) >= lo) & (np.abs(yaw) < hi)).sum()) for lo, hi in ev.BINS
    }


def nme_summary(ev, nme: np.ndarray, yaw: np.ndarray, found: np.ndarray, common: np.ndarray) -> dict:
    """NME tables (percent) over the images found and over the common ones."""
    out: dict = {"images": int(len(nme)), "found": int(found.sum())}
    if found.any():
        out["found_images"] = ev.nme_table(nme[found], yaw[found])
        out["found_per_bin"] = bin_counts(ev, yaw[found])
    if common.any():
        out["common"] = ev.nme_table(nme[common], yaw[common])
    return out


def bench_nme(workers: dict[str, Worker], n_images: int, aflw: Path) -> dict:
    """68-point NME of each peer on the first ``n_images`` AFLW2000-3D dev images, each
    with its own detector on the whole image; ours by the protocol proper too."""
    from realtime.eval import landmarks as ev

    samples = ev.load_aflw2000(aflw, n_images)
    files = sorted(aflw.glob("*.jpg"))[: len(samples)]
    yaw = np.array([s.yaw for s in samples])
    nme, found = {}, {}
    for name, w in workers.items():
        log(f"NME: {name} on {len(samples)} AFLW2000-3D images...")
        w.ask(cmd="open", frames=None, video=False)
        errs, hits = np.full(len(samples), np.nan), np.zeros(len(samples), bool)
        for k, (s, f) in enumerate(zip(samples, files, strict=True)):
            face = pick_face(w.ask(cmd="image", path=str(f))["faces"], s.pts)
            if face is not None:
                pred = np.vstack([face.T, np.zeros((1, 68))])
                errs[k], hits[k] = landmark_nme(pred, s.pts)[0], True
        nme[name], found[name] = errs, hits
    common = np.logical_and.reduce(list(found.values())) if found else np.zeros(0, bool)
    out: dict[str, Any] = {name: nme_summary(ev, nme[name], yaw, found[name], common) for name in workers}
    out["common_images"] = int(common.sum())
    out["common_per_bin"] = bin_counts(ev, yaw[common])
    out["yaw_bins"] = [f"[{lo},{round(hi)}]" for lo, hi in ev.BINS]
    if "ours" in workers:
        from realtime.core.weights import load_bundle
        from realtime.live.decode import Decoder
        from realtime.live.engines import create_engine

        bundle = load_bundle()
        res = ev.evaluate(
            samples, create_engine(bundle, "onnxruntime"), Decoder(bundle.layout), progress=False
        )
        per = np.asarray(res["per_image"])
        out["ours_protocol"] = {"images": len(per), "all_images": res["nme2d"]}
        if common.any():
            out["ours_protocol"]["common"] = ev.nme_table(per[common], yaw[common])
    return out


def stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {
        "ms_p50": float(np.median(a)),
        "ms_p95": float(np.percentile(a, 95)),
        "fps": 1000 / float(np.median(a)),
    }
