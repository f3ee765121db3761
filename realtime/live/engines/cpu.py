"""``cpu-fast``: ``FoldedPRNet`` (realtime.live.engines.rewrite; the mobile network as it
is), channels_last, compiled by inductor with freezing so oneDNN weights are
pre-packed once. fp32: bf16 misses the tolerance. ``cpu-bf16``: the same in bfloat16,
on CPUs with native bf16 (avx512_bf16 / AMX): faster again, but its maps are off by
~1e-2, so ``auto`` never picks it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import torch

from realtime.core.weights import Bundle
from realtime.live.engines.backends import (
    Engine,
    EngineError,
    EngineOutput,
    engine_output,
    head_names,
    inference_module,
    log,
)


class CpuFastEngine(Engine):
    """Folded model, channels_last, the wide stride-1 decoder convs as Winograd
    F(4x4, 4x4) (``winograd``, default on in fp32), inductor with freezing (weights
    constant-folded and pre-packed for oneDNN).

    Compiled twice: batch 1 and batch >= 2 (dynamic); ``warmup`` does both up front
    with progress, and inductor's on-disk cache makes later runs faster. ``bf16``
    runs the convolutions in bfloat16 (only on CPUs with native bf16); off by default
    because it misses the 2e-3 tolerance (see docs/benchmarks.md). A bundle with heads
    is compiled with their outputs beside the maps (``heads``), as onnxruntime's.
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
        self.heads = head_names(bundle)
        model = inference_module(bundle, winograd, heads=bool(self.heads))
        # memory_format is a keyword Module.to takes that torch's overloads leave out
        self.model = model.to(dtype=self.dtype, memory_format=self.memory_format)  # pyright: ignore[reportCallIssue]
        self.compiled = torch.compile(self.model, dynamic=False) if compile else None
        self._seen: set[str] = set()
        if compile:
            self.warmup(warmup)

    def warmup(self, batch_sizes: Iterable[int]) -> None:
        for b in batch_sizes:
            self(torch.zeros(b, 3, self.resolution, self.resolution))

    def forward_all(self, images: torch.Tensor) -> EngineOutput:
        out = self._call(images.to("cpu", self.dtype).contiguous(memory_format=self.memory_format))
        res = engine_output(out, self.heads)
        res.maps = res.maps.contiguous()
        return res

    def _call(self, x: torch.Tensor):
        """The model (compiled, unless ``compile`` was off) on ``x``: maps, or a tuple
        of the maps and its ``heads``' outputs."""
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
