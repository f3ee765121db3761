"""Which backend runs: ``backend="auto"`` picks the fastest one that builds here, and
remembers the pick so that later starts build only the winner.

On a GPU the order is clear (TensorRT, then eager kernels in a CUDA graph, then
inductor's CUDA FP16). On a CPU the winner depends on the model and the CPU (on our
2-core machines onnxruntime wins on the lite model and inductor on the full one: see
docs/benchmarks.md), so every candidate that builds is timed once and the fastest kept,
unless it compiles at every start and is not clearly faster (``decide``).
Timing means compiling every candidate, most of a start's time; the choice is
therefore stored in ``CACHE / "engine-choice.json"`` under a key of everything that
can change the answer (machine, library versions, weights, resolution, batch, threads)
and reused until that key changes or ``retime`` is asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realtime.core.paths import CACHE
from realtime.core.weights import Bundle
from realtime.live.engines.backends import EagerEngine, Engine, EngineError, bundle_digest, log
from realtime.live.engines.cpu import CpuFastEngine
from realtime.live.engines.cuda import CudaFp16Engine, CudaGraphEngine, TensorRTEngine
from realtime.live.engines.onnx import OnnxRuntimeEngine, OnnxRuntimeInt8Engine

#: Tolerances against eager fp32: sigmoid units and landmark pixels; an engine that is
#: not ``exact`` (int8) is held to its landmarks only, within APPROX_LANDMARK_TOL (its 2D
#: landmarks are 0.13 px from fp32's on average over AFLW2000-3D: tests/test_quantize.py).
MAP_TOL = 2e-3
LANDMARK_TOL = 0.5
APPROX_LANDMARK_TOL = 1.0
#: Preference order for ``backend="auto"``, fastest first.
AUTO_ORDER = {
    # cuda-graph before inductor's cuda-fp16: ready in under a second where inductor
    # compiles for many seconds per batch size, for a little speed (docs/benchmarks.md).
    "cuda": ("tensorrt", "cuda-graph", "cuda-fp16", "eager"),
    # onnxruntime-int8 builds where its model is (shipped beside the lite weights, or
    # built here) and wins where the CPU has int8 dot products (AVX-512 VNNI / AVX-VNNI)
    "cpu": ("cpu-fast", "onnxruntime", "onnxruntime-int8", "eager"),
}
#: cuda-graph picks its precision by the GPU (fp16 from compute capability 7.0); the
#: other two force one, e.g. to try a Pascal card's fp32 path on a newer GPU.
CUDA_GRAPH = {"cuda-graph": None, "cuda-graph-fp16": True, "cuda-graph-fp32": False}
BACKENDS = (
    "eager",
    "cpu-fast",
    "cpu-bf16",
    "onnxruntime",
    "onnxruntime-int8",
    "cuda-fp16",
    *CUDA_GRAPH,
    "tensorrt",
)
CHOICE_FILE = "engine-choice.json"
#: Part of the choice's key: raised when how candidates are timed or what they give
#: changes, so that choices made the old way are timed again once (2: timed taking
#: turns, cpu-fast gives the face logit; 3: onnxruntime-int8 a candidate).
CHOICE_VERSION = 3
#: How much faster per call an engine that compiles at every start must be to be kept.
START_MARGIN = 1.15
#: Triton (and so inductor on CUDA) needs at least this compute capability.
TRITON_MIN_CC = (7, 0)


def make(bundle: Bundle, backend: str, device: str, **kw: Any) -> Engine:
    """One backend by name, or EngineError saying why it cannot run here."""
    if backend in ("cpu-fast", "cpu-bf16") and device != "cpu":
        raise EngineError("CPU only (device='cpu')")
    if backend == "eager":
        return EagerEngine(bundle, device)
    if backend == "cpu-fast":
        return CpuFastEngine(bundle, **kw)
    if backend == "cpu-bf16":
        return CpuFastEngine(bundle, bf16=True, **kw)
    if backend == "onnxruntime":
        return OnnxRuntimeEngine(bundle, device)
    if backend == "onnxruntime-int8":
        return OnnxRuntimeInt8Engine(bundle, device)
    if backend == "cuda-fp16":
        _need_triton(device)
        return CudaFp16Engine(bundle, device, **kw)
    if backend in CUDA_GRAPH:
        return CudaGraphEngine(bundle, device, half=CUDA_GRAPH[backend], **kw)
    if backend == "tensorrt":
        return TensorRTEngine(bundle, device, **kw)
    raise EngineError(f"unknown backend {backend!r}: choose one of auto, {', '.join(BACKENDS)}")


def _need_triton(device: str) -> None:
    """inductor compiles CUDA kernels with Triton, which does not run on Pascal and
    older cards: say so in one line instead of failing inside the compiler."""
    if device.startswith("cuda") and torch.cuda.is_available():
        cc = torch.cuda.get_device_capability(torch.device(device))
        if cc < TRITON_MIN_CC:
            raise EngineError(
                f"Triton (torch.compile's inductor) needs compute capability 7.0+, this GPU "
                f"({torch.cuda.get_device_name(torch.device(device))}) is {cc[0]}.{cc[1]}: "
                "cuda-graph (eager kernels in a CUDA graph) runs instead"
            )


def choice_key(bundle: Bundle, batch: int) -> str:
    """Everything that can change which CPU backend is fastest."""
    parts = [
        CHOICE_VERSION,
        cpu_name(),
        os.cpu_count(),
        torch.get_num_threads(),
        torch.__version__,
        _version("onnxruntime"),
        bundle_digest(bundle),
        bundle.config.resolution,
        batch,
    ]
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "absent"


def remembered(key: str, path: Path | None = None) -> dict | None:
    """The stored choice for ``key``, or None (none stored, or an unreadable file)."""
    path = path or CACHE / CHOICE_FILE
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def remember(key: str, choice: dict, path: Path | None = None) -> None:
    """Store a choice (written to a temporary file, then renamed: a crash mid-write
    leaves the old file, never half of one)."""
    path = path or CACHE / CHOICE_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[key] = choice
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError as e:  # a read-only cache costs start-up time, nothing else
        log(f"could not remember the engine choice in {path}: {e}")


def pick(bundle: Bundle, device: str, batch: int, retime: bool = False, **kw: Any) -> Engine:
    """The fastest backend that builds here, and the reasons (one line each). On a
    CPU the candidates are timed and the winner remembered; on a GPU the order decides
    (nothing is timed, so there is nothing to remember)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    key = choice_key(bundle, batch) if kind == "cpu" else ""
    if key and not retime and (prior := remembered(key)) is not None:
        name = str(prior.get("backend"))
        try:
            engine = make(bundle, name, device, **(kw if name != "eager" else {}))
            when, times = prior.get("when", "?"), prior.get("ms", {})
            figures = ", ".join(f"{n} {ms:.1f} ms" for n, ms in times.items())
            engine.reasons = [
                f"{name}: chosen, remembered from {when} ({figures or 'only one built'}); "
                "--retime measures again"
            ]
            return engine
        except Exception as e:  # the remembered engine no longer builds: choose afresh
            log(f"remembered engine {name} did not build ({type(e).__name__}: {str(e)[:120]}); re-timing")
    reasons: list[str] = []
    built: list = []
    for name in AUTO_ORDER[kind]:
        if built and (kind == "cuda" or name == "eager"):
            break  # the slower fallbacks are only needed when nothing else built
        try:
            built.append(make(bundle, name, device, **(kw if name != "eager" else {})))
        except EngineError as e:
            reasons.append(f"{name}: skipped: {e}")
        except Exception as e:  # a compiler missing or failing must not stop the app
            reasons.append(f"{name}: skipped: failed to build ({type(e).__name__}: {str(e)[:200]})")
    if not built:
        raise EngineError("no backend could be built: " + "; ".join(reasons))
    times: dict[str, float] = {}
    if len(built) == 1:
        engine = built[0]
        why = getattr(engine, "why", "")
        reasons.append(f"{engine.name}: chosen (fastest available on {kind}){'; ' + why if why else ''}")
    else:
        times = time_engines(built, batch=batch)
        name, verdicts = decide(times, {e.name for e in built if e.compiles_at_start})
        engine = next(e for e in built if e.name == name)
        reasons += [
            f"{e.name}: {verdicts[e.name]} ({times[e.name]:.1f} ms per call at batch {batch})" for e in built
        ]
    if key:
        remember(key, {"backend": engine.name, "ms": times, "when": time.strftime("%Y-%m-%d %H:%M")})
    engine.reasons = reasons
    return engine


def auto_choice(bundle: Bundle, device: str, batch: int = 1) -> str:
    """What ``auto`` would run here, without building anything: the remembered choice
    on a CPU (or that the first start times the candidates), the first available in
    AUTO_ORDER on a GPU."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind == "cpu":
        prior = remembered(choice_key(bundle, batch))
        if prior is not None:
            return f"{prior.get('backend')} (timed here {prior.get('when', '?')})"
        return "not timed on this machine yet: the first start times " + ", ".join(AUTO_ORDER["cpu"][:-1])
    ready = available_backends(device)
    name = next((n for n in AUTO_ORDER[kind] if ready.get(n, None) is None), "eager")
    return f"{name} (the first available of {', '.join(AUTO_ORDER[kind])})"


def decide(times: dict[str, float], compiling: set[str]) -> tuple[str, dict[str, str]]:
    """The backend to keep, from measured ms per call, and a verdict for each. The
    fastest wins, except that one which compiles at every start (inductor: warm caches
    and all, 14-15 s to the first frame against 2.3-2.4 s with onnxruntime on our
    2-core Xeon) must beat the best of the others by more than START_MARGIN: timed on
    a busy machine, cpu-fast once won by 4 % a call and made every later start 12 s
    longer."""
    fastest = min(times, key=times.__getitem__)
    ready = [n for n in times if n not in compiling]
    quick = min(ready, key=times.__getitem__) if ready else fastest
    name = quick if times[quick] <= START_MARGIN * times[fastest] else fastest
    verdicts = {n: "built, slower here" for n in times}
    if name != fastest:
        verdicts[fastest] = "built, not enough faster to compile at every start"
    verdicts[name] = (
        "chosen, fastest measured"
        if name == fastest
        else f"chosen, within {START_MARGIN - 1:.0%} of {fastest} and starts without compiling"
    )
    return name, verdicts


def time_engines(engines: list, blocks: int = 3, calls: int = 4, batch: int = 1) -> dict[str, float]:
    """Median ms of a call of each engine on a real-sized input. The engines take turns
    in ``blocks`` blocks of ``calls`` timed calls (after one untimed call, for the
    caches and the other engine's spinning threads to settle): whatever else loads the
    machine meanwhile (a start beside a test run) slows them alike instead of deciding
    the choice that later starts reuse."""
    r = engines[0].resolution
    x = torch.rand(batch, 3, r, r)
    for e in engines:
        e.run_all(x)  # first calls allocate
    times: dict[str, list[float]] = {e.name: [] for e in engines}
    for _ in range(blocks):
        for e in engines:
            e.run_all(x)
            for _ in range(calls):
                t0 = time.perf_counter()
                e.run_all(x)
                times[e.name].append(1000 * (time.perf_counter() - t0))
    return {n: float(np.median(t)) for n, t in times.items()}


def available_backends(device: str = "cpu") -> dict[str, str | None]:
    """Backend -> None if it can be built here, else the reason it cannot (cheap
    checks only: imports and hardware, no compilation)."""
    out: dict[str, str | None] = {"eager": None}
    cuda = torch.cuda.is_available()
    out["cpu-fast"] = None if _compiler_present() else "no C++ compiler for inductor (install g++)"
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        out["onnxruntime"] = None
    except ImportError as e:
        out["onnxruntime"] = f"not installed ({e.name}): pip install onnx onnxruntime"
    out["cuda-fp16"] = None if cuda else f"no CUDA GPU (torch {torch.__version__})"
    out["cuda-graph"] = out["cuda-fp16"]
    if cuda:
        try:
            _need_triton(device if device.startswith("cuda") else "cuda")
        except EngineError as e:
            out["cuda-fp16"] = str(e)
    if not cuda:
        out["tensorrt"] = "no CUDA GPU"
    else:
        try:
            import tensorrt  # noqa: F401
            import torch_tensorrt  # noqa: F401

            out["tensorrt"] = None
        except ImportError as e:
            out["tensorrt"] = f"torch-tensorrt / TensorRT not importable ({e.name})"
    return out


def _compiler_present() -> bool:
    return any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++", "c++"))


def compare(reference: np.ndarray, maps: np.ndarray, bundle: Bundle) -> dict[str, float]:
    """Errors of ``maps`` against the eager ``reference`` (both crop px): max abs
    over the whole map in sigmoid units, and max landmark (x, y, z) error in px."""
    scale = bundle.config.output_scale
    idx = bundle.layout.kpt_ind  # (2, 68) (col, row)
    lm_ref = reference[:, :, idx[1], idx[0]]
    lm = maps[:, :, idx[1], idx[0]]
    return {
        "map_max_abs": float(np.abs(maps - reference).max() / scale),
        "landmark_max_px": float(np.abs(lm - lm_ref).max()),
    }


def within_tolerance(err: dict[str, float], exact: bool = True) -> bool:
    """Whether ``compare``'s errors are within an engine's tolerance (``Engine.exact``)."""
    if not exact:
        return err["landmark_max_px"] <= APPROX_LANDMARK_TOL
    return err["map_max_abs"] <= MAP_TOL and err["landmark_max_px"] <= LANDMARK_TOL


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
