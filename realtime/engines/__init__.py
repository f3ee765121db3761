"""Inference engines: one protocol, several backends (in the manner of 3DDFA_V2's
TDDFA / TDDFA_ONNX).

    rewrite   the trained network rewritten for speed (folded batch norm, Winograd)
    backends  one class per backend (eager, cpu-fast, onnxruntime, cuda-fp16,
              cuda-graph, tensorrt)
    mirror    MirrorAveraged: any engine on the face and its mirror image
    choose    which backend ``auto`` runs, remembered per machine and model

Every engine is checked against eager fp32 (``compare``): position map within 2e-3 of
the sigmoid output (about 0.56 px at 256 px), landmarks within 0.5 px.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from realtime.engines.backends import EngineError, bundle_digest, export_onnx, log
from realtime.engines.choose import (
    AUTO_ORDER,
    BACKENDS,
    LANDMARK_TOL,
    MAP_TOL,
    available_backends,
    compare,
    cpu_name,
    make,
    pick,
    time_engine,
    within_tolerance,
)
from realtime.engines.mirror import MirrorAveraged
from realtime.weights import Bundle

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "LANDMARK_TOL",
    "MAP_TOL",
    "Engine",
    "EngineError",
    "MirrorAveraged",
    "available_backends",
    "bundle_digest",
    "compare",
    "cpu_name",
    "create_engine",
    "export_onnx",
    "resolve_device",
    "settle_threads",
    "time_engine",
    "within_tolerance",
]


class Engine(Protocol):
    """What the frame path needs of a backend.

    ``run``: (B, 3, R, R) float32 RGB in [0, 1], a torch tensor on any device ->
    (B, 3, R, R) float32 position maps in crop pixels (x, y right/down, z depth), a
    tensor left where the engine computed it (on the GPU for the CUDA engines, so the
    decoder reads it there and only the vertices come back).
    ``__call__``: the same as a numpy array.
    ``reasons``: one line per backend considered, saying why this one runs.
    """

    name: str
    resolution: int
    reasons: list[str]

    def run(self, images: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, images: torch.Tensor) -> np.ndarray: ...


def settle_threads(engine: Engine, device: str) -> None:
    """On a CPU with onnxruntime running the network on its own threads, torch's share
    of a frame (MTCNN's check, the crops: small tensors) runs on one thread: a second
    one only waits for the first, and on 2 busy cores that made a frame 5-10x slower."""
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
    """Build an engine: one backend by name, or ``auto`` (realtime.engines.choose: the
    fastest here, remembered; ``retime`` measures again). ``engine.reasons`` lists the
    choice and why each other was not taken (printed when ``verbose``). ``mirror``
    wraps the result in ``MirrorAveraged``, whose calls are twice the batch: compiled
    engines then warm up for, and ``auto`` times, batch 2. Extra keywords go to the
    engine (e.g. ``warmup=(1, 4)`` for the compiled ones)."""
    device = resolve_device(device)
    if mirror:
        kw.setdefault("warmup", (2,))
    if backend == "auto":
        engine = pick(bundle, device, batch=2 if mirror else 1, retime=retime, **kw)
    else:
        engine = make(bundle, backend, device, **kw)
        engine.reasons = [f"{backend}: chosen explicitly"]
    if mirror:
        engine = MirrorAveraged(engine, bundle.layout)
    if verbose:
        for line in engine.reasons:
            log(line)
    return engine
