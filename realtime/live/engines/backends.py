"""The ``Engine`` base class every inference backend subclasses, the reference
backend (``eager``: the PRNet module as trained, fp32) and what the backends share:
the network rewritten for inference, cache keys, the log line. The other backends
live by job, each module importing only what its backend needs:

* realtime.live.engines.cpu: ``cpu-fast`` / ``cpu-bf16`` (inductor).
* realtime.live.engines.onnx: ONNX export and ``onnxruntime`` / ``onnxruntime-int8``.
* realtime.live.engines.cuda: ``cuda-fp16``, ``cuda-graph``, ``tensorrt``.

Every engine takes (B, 3, R, R) float32 RGB in [0, 1] (a torch tensor on any device)
and returns (B, 3, L, L) float32 position maps in crop pixels (L = R for PRNet; the
mobile network's 96 px crops give the lite model's 128 px map), and from
``run_scored`` the face head's logits where the engine has them.

Compiled engines warm up at construction and print progress; inductor's compiled code
is cached under ``CACHE / "inductor"`` (TORCHINDUCTOR_CACHE_DIR, unless the user set
it), TensorRT engines under ``CACHE / "tensorrt"``, ONNX files under ``CACHE / "onnx"``.
"""

from __future__ import annotations

import hashlib
import os
import sys
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


def versions_key(*parts: object) -> str:
    """A short hash of what a cached file depends on (weights, library versions, shapes)."""
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
