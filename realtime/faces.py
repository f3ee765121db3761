"""Frame in, faces out: detector + tracker + crop + engine + decoder + smoother.

Every part is injected, so any can be swapped (another detector, another filter) and
tests can use real parts without the live loop. ``process`` never raises: a bad frame
or a failing stage gives an empty result whose ``status`` says what happened, because
one odd frame must not take down a live video loop.

CLI benchmark: ``python -m realtime.faces`` prints detect / crop / smooth ms per frame
for 1 and 4 faces (see ``faces_benchmark``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from realtime.crop import Octaves, crop_faces, to_tensor
from realtime.decode import Decoder
from realtime.detect import MTCNN
from realtime.smooth import OneEuroFilter, Smoother
from realtime.track import Tracker, TrackerConfig
from realtime.types import Frame, Reconstruction, timed

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "media"


@dataclass
class FaceResult:
    """One frame's faces. reconstructions: smoothed, largest face first.
    n_other_faces: faces seen beyond max_faces. status: one line for the HUD
    ("no face", "1 face", "2 faces (+3 not shown)", "bad frame: ...").
    detected: whether a full detection's result was used on this frame (one run
    inline, or one that finished on the tracker's worker thread)."""

    reconstructions: list[Reconstruction] = field(default_factory=list)
    n_other_faces: int = 0
    status: str = "no face"
    detected: bool = False
    raw: list[Reconstruction] = field(default_factory=list)  # before smoothing


def _status(n: int, others: int) -> str:
    s = "no face" if n == 0 else f"{n} face" + ("s" if n > 1 else "")
    return s + (f" (+{others} not shown)" if others else "")


class FaceProcessor:
    """``process(frame) -> FaceResult``; stages are recorded on ``frame.spans``."""

    def __init__(
        self,
        engine,
        decoder: Decoder,
        detector: Callable | None = None,
        tracker: Tracker | None = None,
        filter_factory: Callable | None = OneEuroFilter,
        max_faces: int = 4,
        device: str | torch.device = "cpu",
    ):
        self.engine, self.decoder = engine, decoder
        self.device = torch.device(device)
        self.detector = detector if detector is not None else MTCNN(device=self.device)
        self.tracker = tracker or Tracker(self.detector, TrackerConfig(max_faces=max_faces))
        self.smoother = Smoother(filter_factory) if filter_factory is not None else None
        self.resolution = engine.resolution
        self.last_error = ""

    def process(self, frame: Frame) -> FaceResult:
        problem = _check(frame)
        if problem:
            self.last_error = problem
            return FaceResult(status=f"bad frame: {problem}")
        try:
            return self._process(frame)
        except Exception as e:  # a live loop must survive any one frame
            self.last_error = f"{type(e).__name__}: {e}"
            self.tracker.reset()
            if self.smoother is not None:
                self.smoother.reset()
            return FaceResult(status=f"error: {type(e).__name__}")

    def _process(self, frame: Frame) -> FaceResult:
        with timed(frame, "detect"):
            src = Octaves(to_tensor(frame.image, self.device))
            tracks = self.tracker.predict(src)
        detected = self.tracker.detected
        if not tracks:
            if self.smoother is not None:
                self.smoother.reset()
            return FaceResult(n_other_faces=self.tracker.n_other, status=_status(0, 0), detected=detected)
        ids = [t.track_id for t in tracks]
        with timed(frame, "crop"):
            batch = crop_faces(
                src,
                np.stack([t.center for t in tracks]),
                np.array([t.size for t in tracks]),
                self.resolution,
                ids,
            )
        with timed(frame, "infer"):
            maps = self.engine(batch.images)
        with timed(frame, "decode"):
            recs = self.decoder.decode(maps, batch.to_frame, ids)
        kept = self.tracker.update({r.track_id: r.landmarks for r in recs})
        recs = [r for r in recs if r.track_id in kept]
        with timed(frame, "smooth"):
            smoothed = self.smoother(recs, frame.t_capture) if self.smoother is not None else recs
            self.tracker.reframe({r.track_id: r.landmarks for r in smoothed})
        others = self.tracker.n_other
        return FaceResult(smoothed, others, _status(len(smoothed), others), detected, raw=recs)


def _check(frame: Frame) -> str:
    img = getattr(frame, "image", None)
    if not isinstance(img, np.ndarray):
        return "no image"
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        return f"expected (H, W, 3) uint8 BGR, got {img.dtype} {img.shape}"
    if min(img.shape[:2]) < 12:
        return f"image too small ({img.shape[1]}x{img.shape[0]})"
    return ""


def _bench_frame(n_faces: int) -> np.ndarray:
    """A 640 x 480 frame holding ``n_faces`` copies of the astronaut portrait."""
    import cv2

    src = cv2.imread(str(MEDIA / "astronaut.png"))
    if src is None:
        src = np.full((512, 512, 3), 128, np.uint8)
    frame = np.full((480, 640, 3), 40, np.uint8)
    cols = int(np.ceil(np.sqrt(n_faces)))
    rows = int(np.ceil(n_faces / cols))
    cell = min(640 // cols, 480 // rows)
    tile = cv2.resize(src, (cell, cell), interpolation=cv2.INTER_AREA)
    for i in range(n_faces):
        r, c = divmod(i, cols)
        frame[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = tile
    return frame


def faces_benchmark(n_faces: int = 1, frames: int = 20) -> dict[str, float]:
    """ms per frame of detect (a full MTCNN pass, 640 x 480, default min face), the
    detect stage while tracking (the per-frame O-Net check; the periodic full pass
    runs on the tracker's worker thread), crop (all faces to R x R) and
    smooth (One Euro on landmarks, vertices and pose of all faces), for ``n_faces``
    faces. Prints and returns the figures."""
    from realtime.engines import create_engine
    from realtime.weights import load_bundle

    image = _bench_frame(n_faces)
    bundle = load_bundle()
    engine = create_engine(bundle, backend="eager")  # infer is not what this measures
    proc = FaceProcessor(engine, Decoder(bundle.layout), max_faces=max(4, n_faces))
    detector = proc.detector
    found = len(detector(image))
    t0 = time.perf_counter()
    for _ in range(frames):
        detector(image)
    detect = (time.perf_counter() - t0) / frames
    spans: dict[str, list[float]] = {}
    n_rec = []
    for i in range(frames + 2):
        f = Frame(image=image, seq=i, t_capture=i / 30)
        res = proc.process(f)
        n_rec.append(len(res.reconstructions))
        if i >= 2:  # first frames warm up (detection, Numba compile)
            for k, (a, b) in f.spans.items():
                spans.setdefault(k, []).append(b - a)
    out = {
        "faces_found": float(found),
        "faces_reconstructed": float(np.median(n_rec)),
        "detect_ms": 1000 * detect,
        "detect_tracked_ms": 1000 * float(np.mean(spans.get("detect", [0.0]))),
        "crop_ms": 1000 * float(np.mean(spans.get("crop", [0.0]))),
        "infer_ms": 1000 * float(np.mean(spans.get("infer", [0.0]))),
        "decode_ms": 1000 * float(np.mean(spans.get("decode", [0.0]))),
        "smooth_ms": 1000 * float(np.mean(spans.get("smooth", [0.0]))),
    }
    print(
        f"{n_faces} face(s), {frames} frames, torch threads {torch.get_num_threads()}: "
        + ", ".join(f"{k} {v:.2f}" for k, v in out.items())
    )
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="detect / crop / smooth ms per frame for 1 and 4 faces")
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args(argv)
    try:
        for n in (1, 4):
            faces_benchmark(n, args.frames)
    except Exception as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
