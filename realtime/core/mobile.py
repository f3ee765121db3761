"""Mobile PRNet: the same position map as PRNet from a network built for a CPU's
caches and SIMD units (issue 28).

* Encoder: MobileNetV2-style inverted residual blocks (1x1 expand, depthwise 3x3,
  1x1 project, residual where the shape allows), batch norm, ReLU (hardswish in the
  deep stages when ``hardswish``), from a strided 3x3 stem down to 1/32 of the input.
* Decoder: x2 upsampling (nearest, then a depthwise 3x3 that starts as bilinear's
  kernel: ``UpBlock``), the encoder's feature of that scale added through a 1x1
  projection (a U-Net skip), then the depthwise 3x3 + pointwise; no transposed
  convolutions. It stops at half the input side; a 1x1 conv gives x, y, z, a sigmoid
  times ``output_scale`` makes them crop pixels, and one bilinear resize brings the map
  to the UV layout's side (128: the lite model's layout, so the decoder and the renderer
  read it unchanged).
* Face head (``face_head``): one linear layer on the bottleneck ("flat": all of it,
  C x 3 x 3 at 96 px; "mean": globally average-pooled), one logit: is there a face,
  centred at the framing the network was trained on, in the crop? ``forward`` returns
  the maps only; ``forward_with_score`` both.

Input (B, 3, R, R) RGB in [0, 1], R = ``resolution`` (the crop side; 96-128); output
(B, 3, L, L), L = ``layout_resolution``, in (0, 1): times ``output_scale`` (R x 1.1, as
PRNet's) for x, y, z in INPUT-crop pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from realtime.core.model import FaceScoring, face_head, head_mode, lid_head

ARCH = "mobile"


@dataclass(frozen=True)
class MobileConfig:
    """Architecture of one mobile PRNet.

    resolution: input crop side in pixels (a multiple of 32).
    layout_resolution: the position map's (UV layout's) side.
    channels: output channels of the stem and the five encoder stages (1/2 .. 1/32).
    blocks: inverted residual blocks per encoder stage (the first of each strided).
    expand: the blocks' expansion ratio (the first stage, at 1/2, expands by 1).
    decoder: channels of the decoder blocks at 1/16, 1/8, 1/4, 1/2.
    hardswish: hardswish instead of ReLU in the two deepest encoder stages.
    face_head: a face / not-face logit from the bottleneck (``forward_with_score``):
        "" none, "mean" (pooled) or "flat" (realtime.core.model.head_mode).
    lids: a lid head on the whole bottleneck, as PRNet's (realtime.core.model.PRNetConfig).
    """

    resolution: int = 96
    layout_resolution: int = 128
    channels: tuple[int, ...] = (16, 16, 24, 48, 96, 192)
    blocks: tuple[int, ...] = (1, 2, 3, 3, 3)
    expand: int = 4
    decoder: tuple[int, ...] = (96, 48, 32, 16)
    hardswish: bool = False
    face_head: str = ""
    lids: bool = False

    arch = ARCH  # a class constant: not a field, written by to_dict
    lid_eyes = False  # a class constant: the mobile lid head reads the bottleneck only

    def __post_init__(self) -> None:  # JSON gives lists back: keep the config hashable
        for name in ("channels", "blocks", "decoder"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "face_head", head_mode(self.face_head))
        if self.resolution % 32:
            raise ValueError(f"resolution {self.resolution} is not a multiple of 32")

    @property
    def output_scale(self) -> float:
        return self.resolution * 1.1

    def to_dict(self) -> dict:
        """As stored in a bundle: ``lids`` only when on (bundles without one keep their dict)."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if not d["lids"]:
            del d["lids"]
        return {"arch": ARCH, **d}


def _act(hardswish: bool) -> nn.Module:
    return nn.Hardswish() if hardswish else nn.ReLU()


class ConvBNAct(nn.Sequential):
    def __init__(
        self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: nn.Module | None = None
    ):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            *([act] if act is not None else []),
        )


class InvertedResidual(nn.Module):
    """1x1 expand (skipped at ratio 1) -> depthwise 3x3 (strided) -> 1x1 project, no
    activation after the projection; the input added back when shapes agree."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, hardswish: bool = False):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, mid, 1, act=_act(hardswish)))
        layers += [ConvBNAct(mid, mid, 3, stride, groups=mid, act=_act(hardswish)), ConvBNAct(mid, cout, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class UpBlock(nn.Module):
    """Pointwise to the output width at the low resolution, x2 upsampling, plus the
    encoder's skip through a 1x1 projection, then depthwise 3x3 + pointwise (BN, ReLU).

    The x2 is nearest-neighbour followed by the depthwise 3x3, initialised to
    [1, 2, 1] / 4 in each direction: that pair is exactly bilinear x2 (half-pixel
    centres) away from the borders, and the kernel stays free to learn more.
    onnxruntime's bilinear Resize cost 16 ns an output value on our 2-core EPYC (0.53 ms
    for 16 channels at 128 px) where nearest costs next to nothing."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.pre = ConvBNAct(cin, cout, 1, act=nn.ReLU())
        self.skip = ConvBNAct(cskip, cout, 1)
        self.dw = ConvBNAct(cout, cout, 3, groups=cout, act=nn.ReLU())
        self.pw = ConvBNAct(cout, cout, 1, act=nn.ReLU())
        with torch.no_grad():
            k = torch.tensor([0.25, 0.5, 0.25])
            conv = cast(nn.Conv2d, self.dw[0])
            conv.weight.copy_((k[:, None] * k[None]).expand_as(conv.weight))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.pre(x), scale_factor=2.0, mode="nearest")
        return self.pw(self.dw(x + self.skip(skip)))


class MobilePRNet(FaceScoring):
    """See the module docstring. ``forward(x)`` -> maps in (0, 1);
    ``forward_with_score(x)`` -> (maps, face logit (B,))."""

    def __init__(self, config: MobileConfig = MobileConfig()):
        super().__init__()
        self.config = config
        c, n = config.channels, config.blocks
        self.stem = ConvBNAct(3, c[0], 3, 2, act=nn.ReLU())
        stages = []
        for i in range(5):
            hs = config.hardswish and i >= 3
            blocks = [
                InvertedResidual(
                    c[i] if j == 0 else c[i + 1],
                    c[i + 1],
                    (1 if i == 0 else 2) if j == 0 else 1,
                    1 if i == 0 else config.expand,
                    hs,
                )
                for j in range(n[i])
            ]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        d = config.decoder
        ups, cin = [], c[5]
        for k, skip in enumerate((c[4], c[3], c[2], c[1])):  # 1/16, 1/8, 1/4, 1/2
            ups.append(UpBlock(cin, skip, d[k]))
            cin = d[k]
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(cin, 3, 1)
        side = -(-config.resolution // 32)
        self.face_head = face_head(c[5], side, config.face_head)
        self.lid_head = lid_head(c[5] * side * side) if config.lids else None
        self.vis_head = None  # the mobile network has no visibility head

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The bottleneck and the skips (1/2 .. 1/16)."""
        x = self.stem(x)
        skips = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < 4:
                skips.append(x)
        return x, skips

    def decode(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            x = up(x, skip)
        y = torch.sigmoid(self.head(x))
        side = self.config.layout_resolution
        if self.config.resolution // 2 != side:  # static: no shape arithmetic in the graph
            y = F.interpolate(y, size=(side, side), mode="bilinear", align_corners=False)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.features(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]

    def forward_with_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, skips = self.features(x)
        return self.decode(z, skips), self.score(z)

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z, skips = self.features(x)
        return self.decode(z, skips), self.head_outputs(z, [])


class ScaledMobile(nn.Module):
    """For inference and export: the maps in crop pixels (times output_scale), and with
    ``heads`` a tuple, the maps then ``head_outputs``. The mobile network has nothing to
    fold that onnxruntime does not fold itself (Conv + BatchNormalization)."""

    def __init__(self, model: MobilePRNet, heads: bool = False):
        super().__init__()
        self.model, self.scale, self.heads = model.eval(), model.config.output_scale, heads
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor):
        if self.heads:
            maps, out = self.model.forward_all(x)
            return (maps * self.scale, *out)
        return self.model(x) * self.scale
