"""Where the time goes on a CUDA GPU: ``python -m realtime.bench --part gpu``.

* engines: every CUDA engine at fp32 (TF32 off), TF32 and fp16, batch 1, 4 and 8, the
  crops already on the device; GPU time of a call measured with CUDA events (the
  maps stay on the GPU, as the frame path leaves them), wall time of the same call
  beside it (the difference is Python and launch overhead), and the landmark error
  against eager fp32.
* profile: torch's profiler over whole frames of the GPU frame path (upload, MTCNN's
  check, crop, engine, decode), time split into kernels, copies and the CPU side.
* parity: the GPU frame path against the CPU's on the same frames: crops (within
  1e-3), decoded vertices, and the landmarks of the whole face processor.

On a machine without CUDA it says so and returns; the roofline projection for other
GPUs (realtime.bench.roofline) needs no GPU.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from realtime.bench.model import TF32, face_images, random_bundle
from realtime.core.weights import Bundle, load_bundle
from realtime.live.engines import backends as B
from realtime.live.engines import compare
from realtime.live.engines.cuda import CudaFp16Engine, CudaGraphEngine

PRECISIONS = ("fp32", "tf32", "fp16")
T = TypeVar("T")


def _cuda_ms(fn: Callable[[], object], reps: int) -> tuple[list[float], list[float]]:
    """Per-call GPU ms (CUDA events around each call) and wall ms (to the GPU's end)."""
    gpu, wall = [], []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        wall.append(1000 * (time.perf_counter() - t0))
        gpu.append(start.elapsed_time(end))
    return gpu, wall


def _engines(bundle: Bundle, batches: tuple[int, ...], inductor: bool) -> dict[str, B.Engine | str]:
    """Each engine by name, or why it could not be built."""
    out: dict[str, B.Engine | str] = {}
    for precision in PRECISIONS:
        with TF32(precision == "tf32"):  # the kernels a graph replays are chosen at capture
            e = CudaGraphEngine(bundle, "cuda", warmup=batches, half=precision == "fp16")
        out[f"cuda-graph-{precision}"] = e
    if inductor:
        try:
            out["cuda-fp16 (inductor)"] = CudaFp16Engine(bundle, "cuda", warmup=batches)
        except Exception as e:  # no Triton here: the table says so
            out["cuda-fp16 (inductor)"] = f"{type(e).__name__}: {str(e)[:160]}"
    return out


def engine_matrix(
    label: str, bundle: Bundle, batches: tuple[int, ...] = (1, 4, 8), reps: int = 50, inductor: bool = True
) -> list[dict]:
    """One row per engine and batch: GPU ms per call and per face, wall ms, error."""
    eager = B.EagerEngine(bundle, "cuda")
    rows = []
    engines = _engines(bundle, batches, inductor)
    for b in batches:
        x = face_images(bundle.config.resolution, b).cuda()
        with TF32(False):
            ref = eager(x)
        timed: dict[str, Callable[[], object]] = {
            "eager-fp32": lambda x=x: eager.run(x),
            **{n: (lambda e=e, x=x: e.run(x)) for n, e in engines.items() if not isinstance(e, str)},
        }
        for name, fn in timed.items():
            with TF32(False):  # eager's fp32 strict; the graphs replay what they captured
                for _ in range(3):
                    fn()
                gpu, wall = _cuda_ms(fn, reps)
                out = fn()
            maps = out.float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
            err = compare(ref, maps, bundle)
            rows.append(
                {
                    "model": label,
                    "engine": name,
                    "batch": b,
                    "gpu_ms": float(np.median(gpu)),
                    "gpu_ms_per_face": float(np.median(gpu)) / b,
                    "wall_ms": float(np.median(wall)),
                    "wall_p95_ms": float(np.percentile(wall, 95)),
                    "landmark_err_px": err["landmark_max_px"],
                    "map_err": err["map_max_abs"],
                }
            )
        for name, why in engines.items():
            if isinstance(why, str):
                rows.append({"model": label, "engine": name, "batch": b, "skipped": why})
    return rows


def profile_frames(
    bundle: Bundle, backend: str, width: int, height: int, frames: int = 30, device: str = "cuda"
) -> dict:
    """Torch profiler over ``frames`` frames of the GPU frame path: kernel, copy and
    CPU time per frame, and the top kernels."""
    from torch.profiler import ProfilerActivity, profile

    from realtime.core.types import Frame
    from realtime.live.faces import FaceProcessor

    image = _frame(width, height)
    proc = FaceProcessor.from_bundle(bundle, backend, device)
    for i in range(10):  # detection, tracking, graph capture
        proc.process(Frame(image, i, time.perf_counter()))
    wall = []
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(frames):
            t0 = time.perf_counter()
            result = proc.process(Frame(image, 10 + i, time.perf_counter()))
            wall.append(1000 * (time.perf_counter() - t0))
    events = prof.key_averages()
    kernels = copies = 0.0
    top = []
    for ev in events:
        device_us = getattr(ev, "self_device_time_total", None)
        if device_us is None:
            device_us = getattr(ev, "self_cuda_time_total", 0.0)
        if device_us <= 0:
            continue
        if "memcpy" in ev.key.lower() or "memset" in ev.key.lower():
            copies += device_us
        else:
            kernels += device_us
        top.append((device_us / frames / 1000, ev.key[:90], ev.count // frames))
    top.sort(reverse=True)
    return {
        "backend": backend,
        "size": f"{width}x{height}",
        "faces": len(result.reconstructions),
        "frames": frames,
        "wall_ms_per_frame": float(np.median(wall)),
        "kernel_ms_per_frame": kernels / frames / 1000,
        "copy_ms_per_frame": copies / frames / 1000,
        "cpu_side_ms_per_frame": float(np.median(wall)) - (kernels + copies) / frames / 1000,
        "top_kernels": [
            {"ms_per_frame": round(t, 4), "name": n, "calls_per_frame": c} for t, n, c in top[:15]
        ],
    }


def _frame(width: int, height: int) -> np.ndarray:
    """The astronaut portrait, face about a third of the frame's height, on grey."""
    import cv2

    from realtime.core.paths import MEDIA

    face = cv2.imread(str(MEDIA / "astronaut.png"))
    if face is None:
        raise FileNotFoundError(f"{MEDIA / 'astronaut.png'} is missing")
    side = height // 2
    frame = np.full((height, width, 3), 90, np.uint8)
    y0, x0 = height // 4, width // 2 - side // 2
    frame[y0 : y0 + side, x0 : x0 + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return frame


def parity(bundle: Bundle, frames: int = 20, device: str = "cuda") -> dict:
    """The GPU frame path against the CPU's: crop max abs difference (RGB in [0, 1]),
    decoded vertices, and the face processor's landmarks over a clip (px)."""
    from realtime.bench.pipeline import CLIP
    from realtime.core.types import Frame
    from realtime.live.capture import VideoSource, letterbox
    from realtime.live.crop import Octaves, crop_affines, to_tensor, warp
    from realtime.live.decode import Decoder
    from realtime.live.faces import FaceProcessor

    with VideoSource(CLIP) as src:
        clip = [letterbox(f, (1280, 720), fill=30) for f in src.read_all()[:frames]]
    r = bundle.config.resolution
    centers = np.array([[640.0, 330.0], [500.3, 300.7]])
    sizes = np.array([420.0, 97.5])  # a big face (octaves, supersampling) and a small one
    _, to_frame = crop_affines(centers, sizes, r)
    crop_err = 0.0
    for image in clip[:5]:
        cpu = warp(Octaves(to_tensor(image, "cpu")), to_frame, r)
        gpu = warp(Octaves(to_tensor(image, device)), to_frame, r).cpu()
        crop_err = max(crop_err, float((cpu - gpu).abs().max()))
    dec = Decoder(bundle.layout)
    maps = B.EagerEngine(bundle, device).run(face_images(r, 2).to(device))
    vert_err = float(np.abs(dec.vertices(maps, to_frame) - dec.vertices(maps.cpu().numpy(), to_frame)).max())
    lm_err = []
    procs = {
        dev: FaceProcessor.from_bundle(bundle, "eager", dev, filter_factory=None) for dev in ("cpu", device)
    }
    for i, image in enumerate(clip):
        res = [p.process(Frame(image, i, i / 30)) for p in procs.values()]
        if res[0].reconstructions and res[-1].reconstructions:
            a, b = res[0].reconstructions[0].landmarks, res[-1].reconstructions[0].landmarks
            lm_err.append(float(np.abs(a[:, :2] - b[:, :2]).max()))
    return {
        "crop_max_abs": crop_err,
        "crop_within_1e-3": crop_err <= 1e-3,
        "decode_vertex_max_px": vert_err,
        "processor_landmark_max_px": max(lm_err) if lm_err else None,
        "processor_frames_compared": len(lm_err),
    }


def bench_gpu(log: Callable[[str], None], full_weights: str | None = None) -> dict:
    """Every GPU figure above; a one-line reason when there is no CUDA GPU."""
    if not torch.cuda.is_available():
        return {"skipped": f"no CUDA GPU (torch {torch.__version__})"}
    torch.backends.cudnn.benchmark = True
    lite = load_bundle()
    full = load_bundle(full_weights) if full_weights else random_bundle(16, 256)
    out: dict = {
        "gpu": torch.cuda.get_device_name(0),
        "capability": list(torch.cuda.get_device_capability(0)),
    }
    out["errors"] = []

    def section(what: str, fn: Callable[[], T]) -> T | None:
        """One part; a failure is recorded and the others still run (one GPU call)."""
        log(f"gpu: {what}...")
        try:
            result = fn()
            log(f"gpu: {what}: {json.dumps(result, default=str)[:3000]}")  # kept if a later part times out
            return result
        except Exception as e:
            out["errors"].append(f"{what}: {type(e).__name__}: {str(e)[:300]}")
            log(f"gpu: {what} failed: {e}")
            return None

    out["parity"] = section("parity of the GPU frame path with the CPU's", lambda: parity(lite)) or {}
    out["engines"] = []
    for label, bundle in (("full", full), ("lite", lite)):
        rows = section(
            f"engine matrix, {label} model",
            lambda b=bundle, n=label: engine_matrix(n, b, inductor=n == "full"),
        )
        out["engines"] += rows or []
    out["profiles"] = []
    for backend in ("cuda-graph", "cuda-graph-fp32"):
        for w, h in ((1280, 720), (1920, 1080)):
            prof = section(
                f"profile {backend} {w}x{h}", lambda b=backend, w=w, h=h: profile_frames(lite, b, w, h)
            )
            if prof:
                out["profiles"].append(prof)
    return out


def markdown(report: dict) -> list[str]:
    if "skipped" in report:
        return [f"GPU part skipped: {report['skipped']}", ""]
    lines = [f"### GPU: {report['gpu']} (compute capability {'.'.join(map(str, report['capability']))})", ""]
    p = report.get("parity", {})
    lines += [
        f"Parity with the CPU path: crop max abs {p.get('crop_max_abs', float('nan')):.2e} "
        f"(within 1e-3: {p.get('crop_within_1e-3')}), "
        f"decoded vertices {p.get('decode_vertex_max_px', 0):.2e} px, "
        f"face processor landmarks {p.get('processor_landmark_max_px')} px over "
        f"{p.get('processor_frames_compared')} frames.",
        "",
        "| model | engine | batch | GPU ms/call | GPU ms/face | wall ms (p95) | landmark err px |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.get("engines", []):
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['engine']} | {r['batch']} | skipped: {r['skipped']} | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['engine']} | {r['batch']} | {r['gpu_ms']:.3f} | "
            f"{r['gpu_ms_per_face']:.3f} | {r['wall_ms']:.3f} ({r['wall_p95_ms']:.3f}) | "
            f"{r['landmark_err_px']:.3f} |"
        )
    lines += ["", "| frame path | size | faces | wall ms/frame | kernels ms | copies ms | CPU side ms |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for f in report.get("profiles", []):
        lines.append(
            f"| {f['backend']} | {f['size']} | {f['faces']} | {f['wall_ms_per_frame']:.2f} | "
            f"{f['kernel_ms_per_frame']:.2f} | {f['copy_ms_per_frame']:.2f} | "
            f"{f['cpu_side_ms_per_frame']:.2f} |"
        )
    lines += [f"Failed: {e}" for e in report.get("errors", [])]
    return lines + [""]
