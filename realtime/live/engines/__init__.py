"""Inference engines: one base class (``Engine``), several backends (in the manner of 3DDFA_V2's
TDDFA / TDDFA_ONNX).

    rewrite   the trained network rewritten for speed (folded batch norm, Winograd)
    backends  the Engine base class, the eager reference and what backends share
    cpu       cpu-fast, cpu-bf16 (inductor)
    onnx      ONNX export, onnxruntime, onnxruntime-int8
    cuda      cuda-fp16, cuda-graph, tensorrt
    mirror    mirror averaging, an option of every engine (``engine.mirror``)
    choose    which backend ``auto`` runs, remembered per machine and model

Every engine is checked against eager fp32 (``compare``): position map within 2e-3 of
the sigmoid output (about 0.56 px at 256 px), landmarks within 0.5 px.
"""

from __future__ import annotations

from typing import Any

import torch

from realtime.core.weights import Bundle
from realtime.live.engines.backends import Engine, EngineError, EngineOutput, bundle_digest, log
from realtime.live.engines.choose import (
    APPROX_LANDMARK_TOL,
    AUTO_ORDER,
    BACKENDS,
    LANDMARK_TOL,
    MAP_TOL,
    available_backends,
    compare,
    cpu_name,
    make,
    pick,
    time_engines,
    within_tolerance,
)
from realtime.live.engines.onnx import export_onnx

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "APPROX_LANDMARK_TOL",
    "LANDMARK_TOL",
    "MAP_TOL",
    "Engine",
    "EngineOutput",
    "EngineError",
    "available_backends",
    "bundle_digest",
    "compare",
    "cpu_name",
    "create_engine",
    "export_onnx",
    "resolve_device",
    "settle_threads",
    "time_engines",
    "within_tolerance",
]


def settle_threads(engine: Engine, device: str) -> None:
    """On a CPU with onnxruntime running the network on its own threads, torch's share
    of a frame (MTCNN's check, the crops: small tensors) runs on one thread: a second
    one only waits for the first, and on 2 busy cores that made a frame 5-10x slower.

    The whole plan, each count set where its part is built (measured on the 2-core
    EPYC, docs/benchmarks.md): the inference thread is the critical path, so what runs
    on it may use the second core while it waits: onnxruntime's PRNet engine and the
    visibility network take CPU_THREADS (2 here; backends.ort_session, occlusion.py);
    torch takes one (here); llvmpipe rasterises on one helper thread on 2 cores, not
    one per core (realtime.render.context.raster_threads); OpenCV keeps its default:
    the frame path's OpenCV calls are small (MJPG decoding is FFmpeg's, one thread)
    and 1 or 2 threads measured the same."""
    if device == "cpu" and engine.name.startswith("onnxruntime"):
        torch.set_num_threads(1)


def resolve_device(device: str) -> str:
    """``auto`` -> "cuda" when torch sees a GPU, else "cpu"; others pass through."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def create_engine(
    bundle: Bundle,
    backend: str = "auto",
    device: str = "cpu",
    verbose: bool = False,
    mirror: bool = False,
    retime: bool = False,
    **kw: Any,
) -> Engine:
    """Build an engine: one backend by name, or ``auto`` (realtime.live.engines.choose:
    the fastest here, remembered; ``retime`` measures again). ``engine.reasons`` lists
    the choice and why each other was not taken (printed when ``verbose``). ``mirror``
    turns on mirror averaging (``engine.mirror``, which can be flipped later), whose
    calls are twice the batch: compiled engines then warm up for, and ``auto`` times,
    batch 2. Extra keywords go to the engine (e.g. ``warmup=(1, 4)`` for the compiled
    ones)."""
    device = resolve_device(device)
    if mirror:
        kw.setdefault("warmup", (2,))
    if backend == "auto":
        engine = pick(bundle, device, batch=2 if mirror else 1, retime=retime, **kw)
    else:
        engine = make(bundle, backend, device, **kw)
        engine.reasons = [f"{backend}: chosen explicitly"]
    if mirror:
        engine.mirror = True
        engine.reasons.append("mirror: each face also runs mirrored, the two maps averaged")
    if verbose:
        for line in engine.reasons:
            log(line)
    return engine
