"""The inference backends, one class each, all behind ``realtime.live.engines.Engine``:
take (B, 3, R, R) float32 RGB in [0, 1] (a torch tensor on any device), return
(B, 3, L, L) float32 numpy position maps in crop pixels (L = R for PRNet; the mobile
network's 96 px crops give the lite model's 128 px map), and from ``run_scored`` the
face head's logits where the engine has them.

* ``eager``: the PRNet module as trained, fp32: the reference.
* ``cpu-fast``: ``FoldedPRNet`` (realtime.live.engines.rewrite; the mobile network as
  it is), channels_last, compiled
  by inductor with freezing so oneDNN weights are pre-packed once. fp32: bf16 misses
  the tolerance.
* ``cpu-bf16``: cpu-fast in bfloat16, on CPUs with native bf16 (avx512_bf16 / AMX):
  faster again, but its maps are off by ~1e-2, so ``auto`` never picks it.
* ``onnxruntime``: the folded model exported to ONNX and run by onnxruntime.
* ``cuda-fp16``: the folded model in half precision, torch.compile (inductor, which
  needs Triton) with CUDA graphs.
* ``cuda-graph``: the folded model eager (no inductor, no Triton) captured once per
  batch size into a CUDA graph and replayed: the path for GPUs Triton does not run on
  (Pascal, compute capability 6.x). fp16 on cards with fast half precision (7.0+),
  fp32 on others (GeForce Pascal runs fp16 at 1/64 rate).
* ``tensorrt``: Torch-TensorRT FP16, the built engine cached on disk.

Compiled engines warm up at construction and print progress; inductor's compiled code
is cached under ``CACHE / "inductor"`` (TORCHINDUCTOR_CACHE_DIR, unless the user set
it), TensorRT engines under ``CACHE / "tensorrt"``, ONNX files under ``CACHE / "onnx"``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

import numpy as np
import torch

from realtime.core.mobile import MobilePRNet, ScaledMobile
from realtime.core.model import PRNet, PRNetConfig
from realtime.core.paths import CACHE
from realtime.core.types import UserError
from realtime.core.weights import Bundle
from realtime.live.engines.mirror import MirrorAverage
from realtime.live.engines.rewrite import FoldedPRNet

os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(CACHE / "inductor"))
#: onnxruntime's threads for the networks on the inference thread's path (PRNet, the
#: visibility network): torch's count as the process started (the cores, or
#: OMP_NUM_THREADS), taken before settle_threads puts torch itself on one.
CPU_THREADS = torch.get_num_threads()


class EngineError(UserError, RuntimeError):
    """A backend that cannot run here; the message says why in one line."""


def log(msg: str) -> None:
    print(f"[engines] {msg}", file=sys.stderr, flush=True)


class Engine:
    """The one engine abstraction: every backend subclasses it and implements
    ``forward``; ``run`` adds mirror averaging, so it is an option of any engine, not a
    wrapper around one.

    ``run``: (B, 3, R, R) float32 RGB in [0, 1], a torch tensor on any device ->
    (B, 3, R, R) float32 position maps in crop pixels (x, y right/down, z depth), a
    tensor left where the engine computed it (on the GPU for the CUDA engines, so the
    decoder reads it there and only the vertices come back). ``__call__``: the same
    as a numpy array.

    ``mirror``: each face also runs mirrored and the two maps are averaged (see
    ``realtime.live.engines.mirror``); safe to flip between calls, from any thread.
    ``reasons``: one line per backend considered, saying why this one runs (set by
    create_engine); ``why``: a backend that picks its own precision says why.
    ``compiles_at_start``: every process compiles the model again (inductor).
    ``scores``: ``run_scored`` gives the bundle's face-head logits too (eager,
    cpu-fast, onnxruntime and onnxruntime-int8, for a bundle with a face head; the
    CUDA engines give None, and the tracker then keeps the detector's per-frame check).
    """

    name: str = ""
    why: str = ""
    compiles_at_start: bool = False
    scores: bool = False

    def __init__(self, bundle: Bundle):
        self.resolution = bundle.config.resolution
        self.reasons: list[str] = []
        self.mirror = False
        self._mirror = MirrorAverage(bundle.layout, self.resolution)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The backend's own call: maps of ``images`` as they are."""
        raise NotImplementedError

    def forward_scored(self, images: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
        """The backend's maps and, where it ``scores``, the face logits (B,) of the
        same pass."""
        return self.forward(images), None

    def run(self, images: torch.Tensor) -> torch.Tensor:
        return self.run_scored(images)[0]

    def run_scored(
        self, images: torch.Tensor, mirror: bool | None = None
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """``run``'s maps and the face logits (B,) (None where the engine has no
        head): a logit above 0 says the crop holds a face framed as in training. With
        ``mirror`` (this call's, else the engine's) the logit is the mean of the face's
        and its mirror image's."""
        if not (self.mirror if mirror is None else mirror):
            return self.forward_scored(images)
        b = images.shape[0]
        maps, logits = self.forward_scored(torch.cat([images, images.flip(-1)]))
        return self._mirror.average(maps, b), None if logits is None else (logits[:b] + logits[b:]) / 2

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        return self.run(images).cpu().numpy()


def bundle_digest(bundle: Bundle) -> str:
    """Short content hash of the weights (cache keys must change when weights do)."""
    h = hashlib.sha256(repr(bundle.config).encode())
    for k in sorted(bundle.state_dict):
        h.update(bundle.state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def inference_module(bundle: Bundle, winograd: bool = False, score: bool = False) -> torch.nn.Module:
    """The bundle's network for inference, maps times output_scale (crop pixels): PRNet
    with its batch norms folded (``FoldedPRNet``), the mobile network as it is
    (``ScaledMobile``: nothing in it that onnxruntime or inductor would not fold
    themselves). ``score``: a second output, the face head's logits."""
    model = bundle.build_model("cpu")
    if bundle.config.arch == "mobile":
        return ScaledMobile(cast(MobilePRNet, model), score)
    return FoldedPRNet(cast(PRNet, model), bundle.config.output_scale, winograd, score)


def model_tag(bundle: Bundle) -> str:
    """The architecture part of cache file names: prnet_s8_r128, mobile_r96."""
    cfg = bundle.config
    if isinstance(cfg, PRNetConfig):
        return f"prnet_s{cfg.size}_r{cfg.resolution}"
    return f"mobile_r{cfg.resolution}"


class EagerEngine(Engine):
    """Plain fp32 PyTorch: the reference every other engine is checked against."""

    name = "eager"

    def __init__(self, bundle: Bundle, device: str = "cpu"):
        self.device = torch.device(device)
        super().__init__(bundle)
        self.scale = bundle.config.output_scale
        self.model = bundle.build_model(self.device)
        self.scores = bool(bundle.config.face_head)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images.to(self.device, torch.float32))
        return out.float() * self.scale

    @torch.inference_mode()
    def forward_scored(self, images: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
        if not self.scores:
            return self.forward(images), None
        maps, logits = self.model.forward_with_score(images.to(self.device, torch.float32))
        return maps.float() * self.scale, logits.float().cpu().numpy()


class CpuFastEngine(Engine):
    """Folded model, channels_last, the wide stride-1 decoder convs as Winograd
    F(4x4, 4x4) (``winograd``, default on in fp32), inductor with freezing (weights
    constant-folded and pre-packed for oneDNN).

    Compiled twice: batch 1 and batch >= 2 (dynamic); ``warmup`` does both up front
    with progress, and inductor's on-disk cache makes later runs faster. ``bf16``
    runs the convolutions in bfloat16 (only on CPUs with native bf16); off by default
    because it misses the 2e-3 tolerance (see docs/benchmarks.md). A bundle with a face
    head is compiled with its logit as a second output (``scores``), as onnxruntime's.
    """

    name = "cpu-fast"
    compiles_at_start = True

    def __init__(
        self,
        bundle: Bundle,
        compile: bool = True,
        bf16: bool = False,
        channels_last: bool = True,
        winograd: bool | None = None,
        warmup: Iterable[int] = (1, 2),
    ):
        if bf16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise EngineError("this CPU has no native bf16 (avx512_bf16/AMX): use bf16=False")
        self.name = "cpu-bf16" if bf16 else "cpu-fast"
        super().__init__(bundle)
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        winograd = not bf16 if winograd is None else winograd
        self.scores = bool(bundle.config.face_head)
        model = inference_module(bundle, winograd, score=self.scores)
        # memory_format is a keyword Module.to takes that torch's overloads leave out
        self.model = model.to(dtype=self.dtype, memory_format=self.memory_format)  # pyright: ignore[reportCallIssue]
        self.compiled = torch.compile(self.model, dynamic=False) if compile else None
        self._seen: set[str] = set()
        if compile:
            self.warmup(warmup)

    def warmup(self, batch_sizes: Iterable[int]) -> None:
        for b in batch_sizes:
            self(torch.zeros(b, 3, self.resolution, self.resolution))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_scored(images)[0]

    def forward_scored(self, images: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
        out = self._call(images.to("cpu", self.dtype).contiguous(memory_format=self.memory_format))
        maps, logits = out if self.scores else (out, None)
        return maps.float().contiguous(), None if logits is None else logits.float().numpy()

    def _call(self, x: torch.Tensor):
        """The model (compiled, unless ``compile`` was off) on ``x``: maps, or (maps,
        logits) where it ``scores``."""
        if self.compiled is None:
            with torch.inference_mode():
                return self.model(x)
        # Two graphs cover every face count: batch 1, and batch >= 2 with a dynamic
        # batch dimension (as fast as static shapes here), so a second face joining
        # mid-session costs no compile after warm-up.
        kind = "1" if x.shape[0] == 1 else "2+"
        if x.shape[0] > 1:
            torch._dynamo.maybe_mark_dynamic(x, 0)
        first = kind not in self._seen
        if first:
            log(
                f"{self.name}: compiling for batch {kind} at {self.resolution}px (once; cached in "
                f"{os.environ.get('TORCHINDUCTOR_CACHE_DIR')})..."
            )
            t0 = time.perf_counter()
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True), torch.inference_mode():
            out = self.compiled(x)
        if first:
            self._seen.add(kind)
            log(f"{self.name}: batch {kind} ready in {time.perf_counter() - t0:.1f}s")
        return out


def _versions_key(*parts: object) -> str:
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def export_onnx(bundle: Bundle, path: str | Path | None = None, opset: int = 17, score: bool = False) -> Path:
    """Export the folded model (dynamic batch) to ONNX; needs the ``onnx`` package.
    Returns the file, reused when the same weights were exported before. ``score``: a
    second output "face_logit" (B,) from the bundle's face head."""
    if path is None:
        key = _versions_key(bundle_digest(bundle), torch.__version__, opset)
        path = CACHE / "onnx" / f"{model_tag(bundle)}{'_score' if score else ''}_{key}.onnx"
    path = Path(path)
    if path.is_file():
        return path
    model = inference_module(bundle, score=score)
    outputs = ("maps", "face_logit") if score else ("maps",)
    return export_module(model, bundle.config.resolution, path, outputs, opset)


def export_module(
    module: torch.nn.Module, resolution: int, path: Path, outputs: tuple[str, ...], opset: int = 17
) -> Path:
    """Export ``module`` (input "images" (B, 3, R, R), an output per name in
    ``outputs``) to ``path`` with a dynamic batch, unless the file is there; written
    aside and moved, so an interrupted export leaves no half file for the next start to
    trust."""
    if path.is_file():
        return path
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise EngineError("ONNX export needs the onnx package: pip install onnx") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        module,
        (torch.rand(1, 3, resolution, resolution),),
        str(tmp),
        dynamo=False,
        opset_version=opset,
        input_names=["images"],
        output_names=list(outputs),
        dynamic_axes={"images": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
    )
    tmp.replace(path)
    return path


def ort_session(path: str | Path, device: str = "cpu", threads: int | None = None):
    """An onnxruntime session on ``path`` (CPU, or CUDA first for a cuda device) with
    the options every onnxruntime engine shares, so the fp32 and int8 engines are timed
    and run alike; ``threads`` defaults to torch's count at the time."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EngineError("onnxruntime is not installed (pip install onnxruntime)") from None
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise EngineError("onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    # Idle threads sleep instead of spinning: in the live loop the capture and render
    # threads share the cores, and spinning workers starved them (2-core Xeon, loaded:
    # 15 ms a call without spinning, 21-24 ms with).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=providers)


class OnnxRuntimeEngine(Engine):
    """The folded model as ONNX, run by onnxruntime (CPU, or CUDA when available). A
    bundle with a face head is exported with its logit as a second output, so
    ``run_scored`` costs one call, not two."""

    name = "onnxruntime"

    def __init__(self, bundle: Bundle, device: str = "cpu", path: Path | None = None):
        """``path``: another ONNX model of the bundle with the same outputs (int8)."""
        super().__init__(bundle)
        self.scores = bool(bundle.config.face_head)
        self.session = ort_session(path or export_onnx(bundle, score=self.scores), device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_scored(images)[0]

    def forward_scored(self, images: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
        x = images.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run(["maps", "face_logit"] if self.scores else ["maps"], {"images": x})
        return torch.from_numpy(cast(np.ndarray, out[0])), cast(np.ndarray, out[1]) if self.scores else None


def _need_cuda(device: str) -> torch.device:
    if not device.startswith("cuda"):
        raise EngineError("needs device='cuda'")
    if not torch.cuda.is_available():
        raise EngineError(
            f"no CUDA GPU (torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'})"
        )
    return torch.device(device)


def int8_model_path(bundle: Bundle) -> Path:
    """Where realtime.export.quantize leaves the int8 model of ``bundle`` (the weights
    and the library versions in the name: another of either needs another build)."""
    import onnxruntime

    key = _versions_key(bundle_digest(bundle), torch.__version__, onnxruntime.__version__, "int8-waist-v2")
    return CACHE / "onnx" / f"{model_tag(bundle)}_int8_{key}.onnx"


class OnnxRuntimeInt8Engine(OnnxRuntimeEngine):
    """The int8 model (static QDQ quantisation of the folded network's narrow middle,
    built offline by ``python -m realtime.export.quantize``) run with the fp32 engine's
    session options and calls. CPU only: the int8 kernels are the point."""

    name = "onnxruntime-int8"

    def __init__(self, bundle: Bundle, device: str = "cpu"):
        if device != "cpu":
            raise EngineError("CPU only (device='cpu')")
        try:
            path = int8_model_path(bundle)
        except ImportError:
            raise EngineError("onnxruntime is not installed (pip install onnxruntime)") from None
        if not path.is_file():
            weights = f" --weights {bundle.path}" if bundle.path is not None else ""
            raise EngineError(
                "no int8 model for these weights and libraries yet: build it once with "
                f"`python -m realtime.export.quantize{weights}` (reads the training crops)"
            )
        # its QDQ model keeps the face head's logit (in fp32) as the second output
        super().__init__(bundle, device, path)


class CudaFp16Engine(Engine):
    """Folded model in fp16, channels_last, torch.compile(mode="reduce-overhead"):
    CUDA graphs replay the whole network as one launch. One upload (from pinned
    memory when the input is on the CPU) and one read-back per call."""

    name = "cuda-fp16"
    compiles_at_start = True

    def __init__(self, bundle: Bundle, device: str = "cuda", warmup: Iterable[int] = (1,)):
        self.device = _need_cuda(device)
        super().__init__(bundle)
        model = inference_module(bundle)
        self.model = model.to(self.device, torch.half, memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
        self.compiled = torch.compile(self.model, mode="reduce-overhead", dynamic=False)
        self._seen: set[int] = set()
        for b in warmup:
            self(torch.zeros(b, 3, self.resolution, self.resolution))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.device.type == "cpu" and not images.is_pinned():
            images = images.pin_memory()
        x = images.to(self.device, non_blocking=True).half().contiguous(memory_format=torch.channels_last)
        b = x.shape[0]
        if b not in self._seen:
            log(f"cuda-fp16: compiling + capturing CUDA graph for batch {b} (once)...")
            t0 = time.perf_counter()
            with torch.inference_mode():
                for _ in range(3):  # cudagraph trees record on the 2nd/3rd call
                    self.compiled(x)
            torch.cuda.synchronize()
            self._seen.add(b)
            log(f"cuda-fp16: batch {b} ready in {time.perf_counter() - t0:.1f}s")
        with torch.inference_mode():
            return self.compiled(x).float()  # a new tensor: the graph's own output is reused


class CudaGraphEngine(Engine):
    """The folded model run by eager CUDA kernels (cuDNN), captured once per batch
    size into a CUDA graph and replayed: one launch per call and no compiler, so it
    runs where Triton, and so inductor, does not (Pascal cards, compute capability
    6.x). ``half``: fp16 (default on cards of compute capability 7.0+, whose tensor
    cores make it fast) or fp32 (default below: GeForce Pascal runs fp16 at 1/64 of
    its fp32 rate). ``run`` keeps the maps on the GPU (the GPU decoder reads them there).
    """

    def __init__(
        self, bundle: Bundle, device: str = "cuda", warmup: Iterable[int] = (1,), half: bool | None = None
    ):
        self.device = _need_cuda(device)
        super().__init__(bundle)
        cc = torch.cuda.get_device_capability(self.device)
        if half is None:
            half = cc >= (7, 0)
            self.why = (
                f"fp16: compute capability {cc[0]}.{cc[1]} runs half precision fast"
                if half
                else f"fp32: compute capability {cc[0]}.{cc[1]} (Pascal or older) runs fp16 slowly, "
                "and Triton, so inductor, not at all"
            )
        else:
            self.why = f"{'fp16' if half else 'fp32'}: asked for"
        self.dtype = torch.half if half else torch.float32
        self.name = "cuda-graph-fp16" if half else "cuda-graph-fp32"
        model = inference_module(bundle)
        self.model = model.to(self.device, self.dtype, memory_format=torch.channels_last).eval()  # pyright: ignore[reportCallIssue]
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        for b in warmup:
            self._capture(b)

    @torch.inference_mode()
    def _capture(self, b: int) -> None:
        t0 = time.perf_counter()
        r = self.resolution
        x = torch.zeros(b, 3, r, r, device=self.device, dtype=self.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        side = torch.cuda.Stream(self.device)  # warm-up off the default stream, as capture wants
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.model(x)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the detector's worker thread may be running kernels meanwhile;
        # "global" mode would count those as illegal and invalidate the capture.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            y = self.model(x).float()
        self.graphs[b] = (graph, x, y)
        log(f"{self.name}: CUDA graph for batch {b} captured in {time.perf_counter() - t0:.1f}s")

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Maps as a (B, 3, R, R) float32 tensor on the GPU; valid until the next call."""
        b = images.shape[0]
        if b not in self.graphs:
            self._capture(b)
        graph, x, y = self.graphs[b]
        if images.device.type == "cpu" and not images.is_pinned():
            images = images.pin_memory()
        x.copy_(images.to(self.device, non_blocking=True))  # casts and goes channels-last too
        graph.replay()
        return y


class TensorRTEngine(Engine):
    """Torch-TensorRT FP16 (dynamo IR). The built engine is saved as an
    ExportedProgram under CACHE/tensorrt, keyed by GPU name, input shape, the
    weights and the torch / torch_tensorrt / TensorRT versions; later runs load it
    instead of rebuilding. ``compile_s`` records the build (or load) time."""

    name = "tensorrt"

    def __init__(self, bundle: Bundle, device: str = "cuda", warmup: Iterable[int] = (1,)):
        self.device = _need_cuda(device)
        try:
            import tensorrt
            import torch_tensorrt
        except ImportError as e:
            raise EngineError(
                f"torch-tensorrt / TensorRT not importable ({e}): pip install torch-tensorrt"
            ) from None
        super().__init__(bundle)
        self._trt, self._bundle = torch_tensorrt, bundle
        self._versions = (
            torch.__version__,
            torch_tensorrt.__version__,
            tensorrt.__version__,
            torch.cuda.get_device_name(self.device),
        )
        self.modules: dict[int, Callable] = {}
        self.compile_s: dict[int, float] = {}
        for b in warmup:  # an engine per batch size, built (or loaded) up front
            self._build(b)

    def _build(self, b: int) -> Callable:
        r = self.resolution
        key = _versions_key(bundle_digest(self._bundle), b, r, *self._versions)
        gpu = "".join(c if c.isalnum() else "_" for c in self._versions[-1])
        path = CACHE / "tensorrt" / f"{model_tag(self._bundle)}_b{b}_{gpu}_{key}.ep"
        example = [torch.zeros(b, 3, r, r, device=self.device, dtype=torch.half)]
        t0 = time.perf_counter()
        if path.is_file():
            log(f"tensorrt: loading cached engine {path}")
            module = torch.export.load(str(path)).module()
        else:
            log(f"tensorrt: building FP16 engine for batch {b} at {r}px (once; minutes)...")
            model = inference_module(self._bundle).to(self.device, torch.half)
            module = self._trt.compile(model, ir="dynamo", inputs=example, enabled_precisions={torch.half})
            path.parent.mkdir(parents=True, exist_ok=True)
            self._trt.save(module, str(path), inputs=example)
        self.compile_s[b] = time.perf_counter() - t0
        log(f"tensorrt: batch {b} ready in {self.compile_s[b]:.1f}s")
        self.modules[b] = module
        return module

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b = images.shape[0]
        module = self.modules.get(b) or self._build(b)
        if images.device.type == "cpu" and not images.is_pinned():
            images = images.pin_memory()
        x = images.to(self.device, non_blocking=True).half()
        with torch.inference_mode():
            return module(x).float()
