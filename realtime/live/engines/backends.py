"""The ``Engine`` base class every inference backend subclasses, the reference
backend (``eager``: the PRNet module as trained, fp32) and what the backends share:
the network rewritten for inference, cache keys, the log line. The other backends
live by job, each module importing only what its backend needs:

* realtime.live.engines.cpu: ``cpu-fast`` / ``cpu-bf16`` (inductor).
* realtime.live.engines.onnx: ONNX export and ``onnxruntime`` / ``onnxruntime-int8``.
* realtime.live.engines.cuda: ``cuda-fp16``, ``cuda-graph``, ``tensorrt``.

Every engine takes (B, 3, R, R) float32 RGB in [0, 1] (a torch tensor on any device)
and returns (B, 3, L, L) float32 position maps in crop pixels (L = R for PRNet; the
mobile network's 96 px crops give the lite model's 128 px map), and from ``run_all``
an ``EngineOutput``: the maps with what the bundle's heads give in the same pass (the
face logit, the visibility map).

Compiled engines warm up at construction and print progress; inductor's compiled code
is cached under ``CACHE / "inductor"`` (TORCHINDUCTOR_CACHE_DIR, unless the user set
it), TensorRT engines under ``CACHE / "tensorrt"``, ONNX files under ``CACHE / "onnx"``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
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


def head_names(bundle: Bundle) -> tuple[str, ...]:
    """The outputs a bundle's network gives beside its maps, in order (as
    ``PRNet.head_outputs``): "face_logit" with a face head, "lids" with a lid head,
    "visibility" with a visibility head."""
    cfg = bundle.config
    on = (bool(cfg.face_head), getattr(cfg, "lids", False), getattr(cfg, "visibility", False))
    return tuple(n for n, has in zip(("face_logit", "lids", "visibility"), on, strict=True) if has)


@dataclass
class EngineOutput:
    """One pass of an engine over a batch of B crops.

    maps: (B, 3, L, L) float32 position maps in crop pixels, a tensor where the engine
        computed it (a GPU engine's stay on the GPU for the decoder).
    logits: (B,) float32 face / not-face logits (above 0: a face framed as in
        training), or None for an engine or bundle without a face head.
    visibility: (B, R/2, R/2) float32 probabilities that the face itself shows at each
        pixel of the crop's half-resolution map, or None without a visibility head.
    lids: (B, 2) float32 lid openings (realtime.core.model.LID_OUTPUTS: each eye's,
        over the eye distance), or None without a lid head.
    """

    maps: torch.Tensor
    logits: np.ndarray | None = None
    visibility: np.ndarray | None = None
    lids: np.ndarray | None = None


class Engine:
    """The one engine abstraction: every backend subclasses it and implements
    ``forward``; ``run`` adds mirror averaging, so it is an option of any engine, not a
    wrapper around one.

    ``run``: (B, 3, R, R) float32 RGB in [0, 1], a torch tensor on any device ->
    (B, 3, R, R) float32 position maps in crop pixels (x, y right/down, z depth), a
    tensor left where the engine computed it (on the GPU for the CUDA engines, so the
    decoder reads it there and only the vertices come back). ``__call__``: the same
    as a numpy array. ``run_all``: the ``EngineOutput`` of the same pass, the heads'
    outputs with the maps. A backend implements ``forward`` (maps only) or
    ``forward_all`` (with its heads).

    ``mirror``: each face also runs mirrored and the two maps are averaged (see
    ``realtime.live.engines.mirror``); safe to flip between calls, from any thread.
    ``reasons``: one line per backend considered, saying why this one runs (set by
    create_engine); ``why``: a backend that picks its own precision says why.
    ``compiles_at_start``: every process compiles the model again (inductor).
    ``heads``: the bundle's heads this engine runs in its pass (``head_names``: eager,
    cpu-fast, onnxruntime and onnxruntime-int8 run them all; the CUDA engines none,
    and the tracker then keeps the detector's per-frame check). ``scores``: it gives
    face logits; ``sees``: it gives visibility maps (a lid head's openings come in
    ``EngineOutput.lids`` and the decoder reads them). ``exact``: its maps are eager
    fp32's within MAP_TOL and LANDMARK_TOL (realtime.live.engines.choose); an
    approximation (int8) is held to its landmarks only (``within_tolerance``).
    """

    name: str = ""
    why: str = ""
    compiles_at_start: bool = False
    exact: bool = True
    heads: tuple[str, ...] = ()

    @property
    def scores(self) -> bool:
        return "face_logit" in self.heads

    @property
    def sees(self) -> bool:
        return "visibility" in self.heads

    def __init__(self, bundle: Bundle):
        self.resolution = bundle.config.resolution
        self.reasons: list[str] = []
        self.mirror = False
        self._mirror = MirrorAverage(bundle.layout, self.resolution)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The backend's own call: maps of ``images`` as they are."""
        return self.forward_all(images).maps

    def forward_all(self, images: torch.Tensor) -> EngineOutput:
        """The backend's own call with its ``heads``: a backend without heads gives
        ``forward``'s maps alone."""
        return EngineOutput(self.forward(images))

    def run(self, images: torch.Tensor) -> torch.Tensor:
        return self.run_all(images).maps

    def run_all(self, images: torch.Tensor, mirror: bool | None = None) -> EngineOutput:
        """``run``'s maps with the heads' outputs of the same pass. With ``mirror``
        (this call's, else the engine's) each face also runs mirrored: the maps are
        averaged (``MirrorAverage``), the logits, the visibility maps (the mirror's
        flipped back) and the lids (the mirror's eyes swapped) too."""
        if not (self.mirror if mirror is None else mirror):
            return self.forward_all(images)
        b = images.shape[0]
        out = self.forward_all(torch.cat([images, images.flip(-1)]))
        logits, seen, lids = out.logits, out.visibility, out.lids
        return EngineOutput(
            self._mirror.average(out.maps, b),
            None if logits is None else (logits[:b] + logits[b:]) / 2,
            None if seen is None else (seen[:b] + seen[b:, :, ::-1]) / 2,
            None if lids is None else (lids[:b] + lids[b:, ::-1]) / 2,
        )

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        return self.run(images).cpu().numpy()


def bundle_digest(bundle: Bundle) -> str:
    """Short content hash of the weights (cache keys must change when weights do)."""
    h = hashlib.sha256(repr(bundle.config).encode())
    for k in sorted(bundle.state_dict):
        h.update(bundle.state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def inference_module(bundle: Bundle, winograd: bool = False, heads: bool = False) -> torch.nn.Module:
    """The bundle's network for inference, maps times output_scale (crop pixels): PRNet
    with its batch norms folded (``FoldedPRNet``), the mobile network as it is
    (``ScaledMobile``: nothing in it that onnxruntime or inductor would not fold
    themselves). ``heads``: a tuple out, the maps then each of ``head_names``' outputs
    (face logits (B,), lid openings (B, 2), visibility logits (B, 1, R/2, R/2))."""
    model = bundle.build_model("cpu")
    if bundle.config.arch == "mobile":
        return ScaledMobile(cast(MobilePRNet, model), heads and bool(head_names(bundle)))
    return FoldedPRNet(cast(PRNet, model), bundle.config.output_scale, winograd, heads)


def _probabilities(vis_logits: torch.Tensor) -> np.ndarray:
    """(B, 1, S, S) visibility logits -> (B, S, S) float32 probabilities on the host."""
    return torch.sigmoid(vis_logits.float())[:, 0].cpu().numpy()


def engine_output(out, heads: tuple[str, ...]) -> EngineOutput:
    """A network's output (maps, or a tuple: maps then ``heads``' outputs, tensors or
    arrays) as an EngineOutput: logits, lids and visibility probabilities on the host."""
    if not heads:
        return EngineOutput(torch.as_tensor(out).float())
    parts = dict(zip(("maps", *heads), out, strict=True))
    vis = parts.get("visibility")

    def host(name: str) -> np.ndarray | None:
        v = parts.get(name)
        return None if v is None else np.asarray(torch.as_tensor(v).float().cpu(), np.float32)

    return EngineOutput(
        torch.as_tensor(parts["maps"]).float(),
        host("face_logit"),
        None if vis is None else _probabilities(torch.as_tensor(vis)),
        host("lids"),
    )


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
        self.heads = head_names(bundle)

    @torch.inference_mode()
    def forward_all(self, images: torch.Tensor) -> EngineOutput:
        maps, heads = self.model.forward_all(images.to(self.device, torch.float32))
        out = engine_output((maps, *heads) if self.heads else maps, self.heads)
        out.maps = out.maps * self.scale
        return out


def versions_key(*parts: object) -> str:
    """A short hash of what a cached file depends on (weights, library versions, shapes)."""
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
