"""Stage micro-benchmarks (``python -m realtime.bench --part components``): detect,
crop, the visibility network (occlude), smooth and GL render timed alone, apart from
the pipeline's threads.

``synthetic_faces`` gives real meshes without a network, so the render benchmark (and
render tests) need no model run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import moderngl
import numpy as np
import torch

from realtime.core.paths import MEDIA
from realtime.core.types import Frame, Reconstruction
from realtime.core.uv import UVLayout
from realtime.live.decode import Decoder
from realtime.live.faces import FaceProcessor
from realtime.render.renderer import Renderer


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
    detect stage while tracking (the per-frame O-Net check where the engine has no face
    head, next to nothing where it has one; the periodic full pass runs on the
    tracker's worker thread), crop (each face's registration, realtime.live.register, and
    all faces to R x R), occlude (the
    visibility network on all faces, onnxruntime) and
    smooth (One Euro on landmarks, vertices and pose of all faces), for ``n_faces``
    faces. Prints and returns the figures."""
    from realtime.core.weights import load_bundle
    from realtime.live.occlusion import load_visibility

    image = _bench_frame(n_faces)
    bundle = load_bundle()
    proc = FaceProcessor.from_bundle(  # eager: infer is not what this measures
        bundle, "eager", "cpu", max_faces=max(4, n_faces), visibility=load_visibility()
    )
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
        "occlude_ms": 1000 * float(np.mean(spans.get("occlude", [0.0]))),
        "decode_ms": 1000 * float(np.mean(spans.get("decode", [0.0]))),
        "smooth_ms": 1000 * float(np.mean(spans.get("smooth", [0.0]))),
    }
    print(
        f"{n_faces} face(s), {frames} frames, torch threads {torch.get_num_threads()}: "
        + ", ".join(f"{k} {v:.2f}" for k, v in out.items())
    )
    return out


def synthetic_faces(layout: UVLayout, width: int, height: int, n_faces: int) -> list[Reconstruction]:
    """``n_faces`` copies of the layout's mean face placed on a grid across the frame,
    each turned a little: stand-ins with a real mesh for benchmarks, no network needed."""
    from realtime.live.decode import angles_to_rotation

    dec = Decoder(layout)
    cols = int(np.ceil(np.sqrt(n_faces)))
    rows = int(np.ceil(n_faces / cols))
    cell = min(width / cols, height / rows)
    faces = []
    for i in range(n_faces):
        r, c = divmod(i, cols)
        rot = angles_to_rotation(5.0, -20.0 + 40.0 * (i % 2), 3.0 * i)
        scale = 0.6 * cell / np.ptp(layout.canonical[:, 0])
        centre = np.array([(c + 0.5) * width / cols, (r + 0.5) * height / rows, 0.0])
        v = (layout.canonical.astype(np.float64) @ rot.T * scale + centre).astype(np.float32)
        faces.append(Reconstruction(i, v[dec.kpt_rows].copy(), v, dec.pose(v)))
    return faces


def render_benchmark(
    width: int,
    height: int,
    n_faces: int,
    frames: int,
    effect: str = "tiger",
    read: bool = True,
    ctx: moderngl.Context | None = None,
) -> float:
    """Mean milliseconds per rendered frame (upload, draw, read-back) at a frame size
    with ``n_faces`` faces, on a headless context unless one is given."""
    from realtime.core.weights import load_bundle

    layout = load_bundle().layout
    renderer = Renderer(layout, width, height, ctx)
    faces = synthetic_faces(layout, width, height, n_faces)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    for _ in range(3):  # warm-up: shader compiles, texture uploads
        renderer.render(image, faces, effect, read=read)
    renderer.ctx.finish()
    t0 = time.perf_counter()
    for _ in range(frames):
        renderer.render(image, faces, effect, read=read)
    renderer.ctx.finish()
    ms = (time.perf_counter() - t0) * 1000.0 / max(frames, 1)
    renderer.release()
    return ms


def components(log: Callable[[str], None]) -> dict:
    """Every component figure, for the benchmark report."""
    out: dict = {}
    for n in (1, 4):
        log(f"components: faces_benchmark({n} faces)...")
        out[f"faces_{n}"] = faces_benchmark(n, 20)
    for w, h in ((640, 480), (1280, 720), (1920, 1080)):
        for n in (1, 4):
            log(f"components: render_benchmark({w}x{h}, {n} faces)...")
            out[f"render_{w}x{h}_{n}"] = render_benchmark(w, h, n, 60)
    return out
