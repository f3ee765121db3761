"""Face visibility: which pixels of a face crop show the face itself, and which show
a hand, hair, glasses or a microphone in front of it.

A small fully convolutional network (an encoder to 1/16, a decoder back to 1/2 with
skips, in the manner of a U-Net) reads the same R x R crop the PRNet engine reads and
gives, per pixel of an (R/2) x (R/2) map, the probability that the face surface is
visible there. The renderer multiplies every effect's alpha by it, so what covers the
face stays in front of masks and swaps.

It is a separate network rather than a second head on PRNet's encoder: the shipped
PRNet weights, every engine built from them (ONNX, int8, CUDA graphs, TensorRT) and
their accuracy stay as they are, and at 0.08 GMAC it costs a few milliseconds on two
CPU cores (``python -m realtime.bench --part components`` prints it).

Two backends behind one protocol (``run(images) -> (B, S, S)`` probabilities):
``TorchVisibility`` (any device) and ``OnnxVisibility`` (onnxruntime, the faster on a
CPU); ``load_visibility`` picks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from realtime.core.paths import CACHE, WEIGHTS, Traversable, resource
from realtime.core.types import UserError, Visibility

DEFAULT_WEIGHTS = WEIGHTS / "visibility128.pt"


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class VisibilityNet(nn.Module):
    """(B, 3, R, R) RGB in [0, 1] -> (B, 1, R/2, R/2) logits of "face visible here".

    Encoder 1/2 (16 ch) -> 1/4 (32) -> 1/8 (64, one dilated conv for context) -> 1/16
    (96); decoder back to 1/2 with a skip at each scale. About 0.2 M parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.e1 = _conv(3, 16, 2)
        self.e2 = nn.Sequential(_conv(16, 32, 2), _conv(32, 32))
        self.e3 = nn.Sequential(_conv(32, 64, 2), _conv(64, 64), _conv(64, 64, dilation=2))
        self.e4 = nn.Sequential(_conv(64, 96, 2), _conv(96, 96))
        self.d3 = nn.Sequential(_conv(160, 48, k=1), _conv(48, 48))
        self.d2 = _conv(80, 24)
        self.d1 = _conv(40, 16, k=1)
        self.head = nn.Conv2d(16, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.e1(x)
        s2 = self.e2(s1)
        s3 = self.e3(s2)
        s4 = self.e4(s3)
        y = self.d3(torch.cat([F.interpolate(s4, scale_factor=2.0, mode="bilinear"), s3], 1))
        y = self.d2(torch.cat([F.interpolate(y, scale_factor=2.0, mode="bilinear"), s2], 1))
        y = self.d1(torch.cat([F.interpolate(y, scale_factor=2.0, mode="bilinear"), s1], 1))
        return self.head(y)


class VisibilityModel(Protocol):
    """What the frame path needs: the crop side it reads, and probabilities per crop."""

    resolution: int

    def run(self, images: torch.Tensor) -> np.ndarray:
        """(B, 3, R, R) crops (RGB in [0, 1]) -> (B, R/2, R/2) float32 in [0, 1]."""
        ...


def load_net(path: str | Path | Traversable = DEFAULT_WEIGHTS) -> tuple[VisibilityNet, int]:
    """The trained network (eval mode, fp32) and the crop side it was trained at."""
    path = resource(path)
    if not path.is_file():
        raise UserError(
            f"{path}: no visibility weights; run with --no-occlusion or restore realtime/weights/"
        )
    try:
        with path.open("rb") as f:
            ck = torch.load(f, map_location="cpu", weights_only=True)
        net = VisibilityNet()
        net.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
    except Exception as e:  # a damaged or foreign file
        raise UserError(
            f"{path}: not a visibility weights file ({type(e).__name__}); restore realtime/weights/"
        ) from None
    return net.eval(), int(ck["resolution"])


class TorchVisibility:
    """The network in PyTorch, on any device (the GPU path keeps crops there)."""

    def __init__(self, path: str | Path | Traversable = DEFAULT_WEIGHTS, device: str | torch.device = "cpu"):
        net, self.resolution = load_net(path)
        self.device = torch.device(device)
        self.net = net.to(self.device)

    @torch.inference_mode()
    def run(self, images: torch.Tensor) -> np.ndarray:
        x = images.to(self.device, torch.float32)
        return torch.sigmoid(self.net(x))[:, 0].cpu().numpy()


class OnnxVisibility:
    """The network exported once to ONNX (cached by the weights' checksum) and run by
    onnxruntime, with the engines' session options."""

    def __init__(self, path: str | Path | Traversable = DEFAULT_WEIGHTS):
        from realtime.live.engines.backends import CPU_THREADS
        from realtime.live.engines.onnx import export_module, ort_session

        net, self.resolution = load_net(path)
        digest = hashlib.sha256(resource(path).read_bytes()).hexdigest()[:16]
        onnx_path = CACHE / "onnx" / f"visibility_{digest}_{torch.__version__}.onnx"
        export_module(net, self.resolution, onnx_path, ("logits",))
        # As many threads as the PRNet engine (CPU_THREADS): the network runs on the
        # inference thread, the pipeline's critical path, between the engine and the
        # decoder, when the engine's helper thread is idle. On the 2-core EPYC the
        # stage took 2.5-2.6 ms of the inference thread with one thread and 1.7 with
        # two, the process's CPU per frame the same (30.0 against 30.3 ms, load 10).
        self.session = ort_session(onnx_path, threads=CPU_THREADS)

    def run(self, images: torch.Tensor) -> np.ndarray:
        x = np.ascontiguousarray(images.detach().cpu().numpy(), np.float32)
        logits = np.asarray(self.session.run(None, {"images": x})[0], np.float32)[:, 0]
        return 1.0 / (1.0 + np.exp(-logits))


def load_visibility(
    device: str | torch.device = "cpu", path: str | Path | Traversable = DEFAULT_WEIGHTS
) -> VisibilityModel:
    """onnxruntime on a CPU (the faster there; a required dependency), PyTorch on a GPU."""
    if torch.device(device).type == "cpu":
        return OnnxVisibility(path)
    return TorchVisibility(path, device)


class EngineHead:
    """The engine's own visibility head (a bundle with ``config.visibility``) as a
    ``VisibilityModel``: the face processor takes its maps from the engine's pass over
    the crops (``EngineOutput.visibility``), no second network; ``run`` is for a caller
    that has only crops (a still photo)."""

    def __init__(self, engine):
        self.engine = engine
        self.resolution = engine.resolution

    def run(self, images: torch.Tensor) -> np.ndarray:
        out = self.engine.run_all(images).visibility
        assert out is not None, "the engine has no visibility head"
        return out


def visibilities(
    model: VisibilityModel, images: torch.Tensor, to_frame: np.ndarray, probs: np.ndarray | None = None
) -> list[Visibility]:
    """One Visibility per crop: ``to_frame`` (B, 2, 3) maps the engine's crop pixels to
    frame pixels; the map's pixel (i, j) covers crop pixels 2i..2i+1, so its centre is at
    crop 2i + 0.5. ``probs``: the maps, where the engine's pass gave them already
    (``EngineHead``); else ``model`` runs on the crops."""
    side = images.shape[-1]
    if probs is None:
        if side > model.resolution:  # another engine's crop side: the same framing
            images = F.interpolate(images.float(), size=(model.resolution,) * 2, mode="area")
        elif side < model.resolution:  # the mobile model's 96 px crops
            images = F.interpolate(
                images.float(), size=(model.resolution,) * 2, mode="bilinear", align_corners=False
            )
        probs = model.run(images)
    scale = side / probs.shape[-1]
    to_crop = np.array([[scale, 0, 0.5 * scale - 0.5], [0, scale, 0.5 * scale - 0.5], [0, 0, 1]])
    return [
        Visibility(p, (a @ to_crop)) for p, a in zip(probs, np.asarray(to_frame, np.float64), strict=True)
    ]
