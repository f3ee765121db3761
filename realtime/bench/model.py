"""The model benchmark, ``python -m realtime.bench --part model``.

Ms per frame (median, p95) of every engine that can
run here, for the full model (size 16, 256 px; random weights unless --full-weights
is given: speed does not depend on the values) and the lite model (the shipped
bundle), batch 1 and 4, each engine's speedup over eager fp32 and its error against
it. Engines are timed round-robin (one call of each per round), so a background load
that comes and goes slows every engine alike and the speedups stay comparable.

The other parts of ``python -m realtime.bench`` are in this package's other modules.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np
import torch

from realtime.core.model import PRNet, PRNetConfig, count_flops
from realtime.core.paths import MEDIA, SHARED_DATA
from realtime.core.uv import UVLayout
from realtime.core.weights import Bundle, load_bundle
from realtime.live import engines as E
from realtime.live.engines import backends as B
from realtime.live.engines.cuda import CudaGraphEngine

#: Engines the model benchmark tries, in table order; cpu-bf16 is measured to show
#: what bf16 buys and costs in accuracy, never chosen by auto (it misses tolerance).
#: onnxruntime-int8 is not ``exact`` (held to its landmarks only: ``within_tolerance``);
#: it runs where the weights have an int8 model (the lite ones).
BENCH_BACKENDS = (
    "eager",
    "cpu-fast",
    "cpu-bf16",
    "onnxruntime",
    "onnxruntime-int8",
    "cuda-fp32",
    "cuda-tf32",
    "cuda-graph-fp32",
    "cuda-graph-tf32",
    "cuda-graph-fp16",
    "cuda-fp16",
    "tensorrt",
)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _scaled_layout(layout: UVLayout, resolution: int) -> UVLayout:
    """The layout at another resolution, nearest-neighbour: only its keypoint indices
    matter to the benchmark (for the landmark error)."""
    f = resolution / layout.resolution
    idx = np.clip(np.round(layout.kpt_ind * f), 0, resolution - 1).astype(np.int64)
    rows = (np.arange(resolution) / f).astype(int)
    mask = layout.face_mask[rows][:, rows]
    return UVLayout(
        resolution, idx, mask, layout.weight_mask[rows][:, rows], layout.triangles[:0], layout.canonical[:0]
    )


def random_bundle(size: int = 16, resolution: int = 256, seed: int = 0) -> Bundle:
    """A random-weights bundle whose batch norms are calibrated on random images, so
    activations have the scale of a trained net (an uncalibrated one saturates the
    sigmoid, which would hide every engine's error)."""
    torch.manual_seed(seed)
    config = PRNetConfig(size, resolution)
    model = PRNet(config)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 3, resolution, resolution))
    model.eval()
    try:
        from realtime.core.uv import build_layout, load_bfm

        layout, _ = build_layout(load_bfm(SHARED_DATA / "bfm" / "bfm_noneck_uv.npz"), resolution)
    except Exception:  # no BFM here: the shipped layout, rescaled
        layout = _scaled_layout(load_bundle().layout, resolution)
    return Bundle(config, model.state_dict(), layout, {"note": f"random weights, seed {seed}"})


def face_images(resolution: int, batch: int) -> torch.Tensor:
    """Real face crops when the shared media are here (errors on real faces are what
    matter), noise otherwise."""
    import cv2

    out = []
    for name in ("astronaut.png", "obama_portrait.jpg", "biden_portrait.jpg", "miranda_portrait.png"):
        img = cv2.imread(str(MEDIA / name))
        if img is not None:
            img = cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_AREA)
            out.append(torch.from_numpy(img[:, :, ::-1].astype(np.float32) / 255).permute(2, 0, 1))
    while len(out) < batch:
        out.append(torch.rand(3, resolution, resolution))
    return torch.stack(out[:batch])


class TF32:
    """Runs a CUDA engine with TF32 convolutions and matmuls on or off (a global torch
    flag, so it is set around each call: engines timed round-robin must not leak it)."""

    def __init__(self, tf32: bool):
        self.tf32 = tf32

    def __enter__(self) -> None:
        self.old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self.tf32

    def __exit__(self, *exc: object) -> None:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.old


class _EagerCuda:
    """Eager fp32 on the GPU, with TF32 on or off."""

    def __init__(self, bundle: Bundle, tf32: bool):
        self.engine, self.tf32 = B.EagerEngine(bundle, "cuda"), tf32
        self.name, self.resolution = ("cuda-tf32" if tf32 else "cuda-fp32"), self.engine.resolution

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        with TF32(self.tf32):
            return self.engine(images)


def build(bundle: Bundle, backend: str, batches: tuple[int, ...]):
    """One engine for the benchmark, or raise EngineError saying why not."""
    cuda = backend.startswith("cuda") or backend == "tensorrt"
    if cuda and not torch.cuda.is_available():
        raise E.EngineError("no CUDA GPU")
    if backend in ("cuda-fp32", "cuda-tf32"):
        return _EagerCuda(bundle, backend == "cuda-tf32")
    if backend.startswith("cuda-graph-"):
        precision = backend.rsplit("-", 1)[1]
        with TF32(precision == "tf32"):  # kernels are chosen once, at capture
            engine = CudaGraphEngine(bundle, "cuda", warmup=batches, half=precision == "fp16")
        engine.name = backend
        return engine
    kw: dict = {}
    if backend in ("cpu-fast", "cpu-bf16", "cuda-fp16", "tensorrt"):
        kw["warmup"] = batches
    return E.create_engine(bundle, backend, "cuda" if cuda else "cpu", **kw)


def _on_gpu(backend: str) -> bool:
    return backend.startswith("cuda") or backend == "tensorrt"


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "min": float(a.min()),
        "n": len(a),
    }


def bench_model(
    label: str, bundle: Bundle, backends: tuple[str, ...], batches: tuple[int, ...], reps: int, seconds: float
) -> dict:
    """Time every engine on ``bundle`` round-robin; per-frame ms = call ms / batch."""
    cfg = bundle.config
    size = cfg.size if isinstance(cfg, PRNetConfig) else None
    flops = count_flops(bundle.build_model(), cfg.resolution)
    r = cfg.resolution
    result: dict = {
        "model": label,
        "size": size,
        "resolution": r,
        "gflops_per_frame": flops / 1e9,
        "engines": {},
        "skipped": {},
    }
    engines = {}
    for name in backends:
        log(f"{label}: building {name}...")
        t0 = time.perf_counter()
        try:
            engines[name] = build(bundle, name, batches)
        except E.EngineError as e:
            result["skipped"][name] = str(e)
            log(f"{label}: {name} skipped: {e}")
            continue
        except Exception as e:  # a backend that breaks must not stop the others
            result["skipped"][name] = f"failed to build: {type(e).__name__}: {str(e)[:300]}"
            log(f"{label}: {name} failed: {e}")
            continue
        result["engines"][name] = {"build_s": time.perf_counter() - t0, "batches": {}}
        if name == "tensorrt":
            result["engines"][name]["compile_s"] = engines[name].compile_s
    for b in batches:
        images = face_images(r, b)
        ref = engines["eager"](images) if "eager" in engines else None
        # GPU engines get the crops already on the device, as the GPU frame path gives them.
        on_gpu = images.cuda() if torch.cuda.is_available() else images
        times: dict[str, list[float]] = {n: [] for n in engines}
        for name, engine in engines.items():  # warm, and the equivalence check
            out = engine(on_gpu if _on_gpu(name) else images)
            entry = result["engines"][name]["batches"].setdefault(str(b), {})
            if ref is not None:
                err = E.compare(ref, out, bundle)
                entry.update(err, within_tolerance=E.within_tolerance(err, engine.exact))
        t_end = time.perf_counter() + seconds
        for i in range(reps):
            for name, engine in engines.items():
                t0 = time.perf_counter()
                engine(on_gpu if _on_gpu(name) else images)
                if _on_gpu(name):
                    torch.cuda.synchronize()
                times[name].append((time.perf_counter() - t0) * 1e3 / b)
            if i + 1 >= 3 and time.perf_counter() > t_end:
                break
        base = np.median(times["eager"]) if "eager" in times else None
        for name, ms in times.items():
            entry = result["engines"][name]["batches"][str(b)]
            entry["ms_per_frame"] = _stats(ms)
            if base is not None:
                entry["speedup_vs_eager"] = float(base / np.median(ms))
            tol = (
                ""
                if "within_tolerance" not in entry
                else (" ok" if entry["within_tolerance"] else " OUT OF TOLERANCE")
            )
            log(
                f"{label} b{b} {name:12s} {entry['ms_per_frame']['median']:8.1f} ms/frame "
                f"(p95 {entry['ms_per_frame']['p95']:.1f}) x{entry.get('speedup_vs_eager', 1):.2f}{tol}"
            )
    return result


def environment(threads: int) -> dict:
    env = {
        "cpu": E.cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "bf16_native": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "inductor_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
    }
    for mod in ("cv2", "numba", "onnxruntime", "onnx", "torch_tensorrt", "tensorrt", "moderngl"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:
            env[mod] = None
    return env


def markdown(models: list[dict]) -> list[str]:
    """The model tables, one per model."""
    lines: list[str] = []
    for m in models:
        lines += [
            f"### {m['model']}: size {m['size']}, {m['resolution']} px, "
            f"{m['gflops_per_frame']:.2f} GFLOP/frame",
            "",
            "| engine | batch | ms/frame median | p95 | speedup vs eager | map err | landmark err px | ok |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, e in m["engines"].items():
            for b, s in e["batches"].items():
                if "ms_per_frame" not in s:
                    continue
                lines.append(
                    f"| {name} | {b} | {s['ms_per_frame']['median']:.1f} | {s['ms_per_frame']['p95']:.1f} | "
                    f"{s.get('speedup_vs_eager', float('nan')):.2f}x | {s.get('map_max_abs', 0):.1e} | "
                    f"{s.get('landmark_max_px', 0):.3f} | "
                    f"{'yes' if s.get('within_tolerance', True) else 'NO'} |"
                )
        for name, why in m["skipped"].items():
            lines.append(f"| {name} | - | skipped: {why} | | | | | |")
        lines.append("")
    return lines


def plot(m: dict, ax) -> None:
    """One model's ms per frame, a bar per engine and batch."""
    names = list(m["engines"])
    batches = sorted({b for e in m["engines"].values() for b in e["batches"]}, key=int)
    w = 0.8 / max(len(batches), 1)
    for j, b in enumerate(batches):
        vals = [m["engines"][n]["batches"].get(b, {}).get("ms_per_frame", {}).get("median", 0) for n in names]
        ax.bar(np.arange(len(names)) + j * w, vals, w, label=f"batch {b}")
    ax.set_xticks(np.arange(len(names)) + w * (len(batches) - 1) / 2, names, rotation=30)
    ax.set_ylabel("ms per frame (median)")
    ax.set_title(f"{m['model']} ({m['resolution']} px)")
    ax.legend()
