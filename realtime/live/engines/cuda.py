"""The CUDA backends:

* ``cuda-fp16``: the folded model in half precision, torch.compile (inductor, which
  needs Triton) with CUDA graphs.
* ``cuda-graph``: the folded model eager (no inductor, no Triton) captured once per
  batch size into a CUDA graph and replayed: the path for GPUs Triton does not run on
  (Pascal, compute capability 6.x). fp16 on cards with fast half precision (7.0+),
  fp32 on others (GeForce Pascal runs fp16 at 1/64 rate).
* ``tensorrt``: Torch-TensorRT FP16, the built engine cached on disk."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from realtime.core.paths import CACHE
from realtime.core.weights import Bundle
from realtime.live.engines.backends import (
    Engine,
    EngineError,
    bundle_digest,
    inference_module,
    log,
    model_tag,
    versions_key,
)


def _need_cuda(device: str) -> torch.device:
    if not device.startswith("cuda"):
        raise EngineError("needs device='cuda'")
    if not torch.cuda.is_available():
        raise EngineError(
            f"no CUDA GPU (torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'})"
        )
    return torch.device(device)


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
        key = versions_key(bundle_digest(self._bundle), b, r, *self._versions)
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
