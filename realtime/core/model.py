"""PRNet (Feng et al. 2018): the ResFCN256 position-map regressor, layer for layer.

The layer list, names and padding follow the original TF1 graph (``resfcn256``) so
that its checkpoint imports one to one (see ``realtime.core.weights``):

* TensorFlow 'SAME' padding is reproduced exactly. For a 4x4 kernel it is symmetric
  (1, 1) at stride 2 but asymmetric (1 before, 2 after) at stride 1; the stride-1
  transposed convolutions are the adjoint of that, i.e. the full transposed
  convolution cropped by one pixel at the start.
* No convolution has a bias; every batch norm has a learned scale and TF's
  epsilon of 1e-3.
* The strided 1x1 shortcut is written as "subsample, then stride-1 1x1 conv". That is
  the same function and the same weights, and it sidesteps a torch 2.13 CPU crash in
  the weight gradient of a strided 1x1 conv under channels_last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3  # tf_slim.batch_norm default; imported moving statistics assume it
#: Decoder (channels as multiples of ``size``, stride) for the 17 transposed convs.
DECODER = (
    (32, 1), (16, 2), (16, 1), (16, 1), (8, 2), (8, 1), (8, 1), (4, 2), (4, 1),
    (4, 1), (2, 2), (2, 1), (1, 2), (1, 1), (0, 1), (0, 1), (0, 1),
)  # fmt: skip
#: Encoder residual blocks (channels as multiples of ``size``, stride).
ENCODER = ((2, 2), (2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (16, 2), (16, 1), (32, 2), (32, 1))


@dataclass(frozen=True)
class PRNetConfig:
    """Architecture of one PRNet.

    size: base width (the original's 16; 8 is the lite model at ~1/4 of the FLOPs).
    resolution: input crop and output position-map side in pixels (256 original; the
        network is fully convolutional, 128 runs 4x faster on a CPU).
    output_scale: the sigmoid output times this is a position in crop pixels
        (the original uses 256 * 1.1).
    face_head: a face / not-face logit from the encoder's bottleneck, one linear
        layer (``PRNet.forward_with_score``) fitted on the frozen encoder
        (realtime.train.face_head), so the tracker can tell a lost face from the
        reconstruction itself instead of asking the detector every frame: "" none,
        "mean" over the average-pooled bottleneck, "flat" over the whole bottleneck
        (C x 4 x 4 at 128 px: it sees where the face sits, which pooling averages away).
    visibility: a visibility head (``VisibilityHead``) on the encoder's features, fitted
        on the frozen encoder (realtime.train.visibility --on), so the pass that gives
        the map gives the occlusion mask too, instead of a second network on the crop.
    lids: a lid head, one linear layer over the whole bottleneck giving each eye's lid
        opening (``LID_OUTPUTS``), fitted on the frozen encoder (realtime.train.lid_head).
        The decoded map's lids hardly move (the 3DMM fits it learned from barely blink);
        the bottleneck carries more of the lids than the decoder makes of it, and the
        decoder moves the mesh's lids to the head's openings.
    lid_eyes: the lid head also reads the encoder's 1/8 features over the eyes' rows
        (``EYE_WINDOW``): the bottleneck (4 x 4 at 128 px) has pooled the lids away that
        the finer map still shows (held-out crops: r 0.71 -> 0.73 against the labels).
    """

    size: int = 16
    resolution: int = 256
    face_head: str = ""
    visibility: bool = False
    lids: bool = False
    lid_eyes: bool = False

    arch = "prnet"  # a class constant, not a field: bundles name the network by it

    def __post_init__(self) -> None:
        object.__setattr__(self, "face_head", head_mode(self.face_head))

    @property
    def output_scale(self) -> float:
        return self.resolution * 1.1

    @property
    def layout_resolution(self) -> int:
        """The position map's side: PRNet's equals its input's."""
        return self.resolution

    def to_dict(self) -> dict:
        """As stored in a bundle: ``face_head``, ``visibility``, ``lids`` and
        ``lid_eyes`` only when on, so a bundle without a head keeps the config dict (and
        the checksum) it always had."""
        d = asdict(self)
        for head in ("face_head", "visibility", "lids", "lid_eyes"):
            if not d[head]:
                del d[head]
        return d


HEAD_MODES = ("mean", "flat")
#: What the lid head gives per face, in order: the lid opening of the eye of points
#: 36-41, then of 42-47, each the mean of its two upper-to-lower lid distances
#: (``realtime.core.landmarks.LID_PAIRS``) over the distance between the eye centres.
LID_OUTPUTS = ("eye_36_41", "eye_42_47")
#: Where a ``lid_eyes`` head reads the 1/8 features, in shares of the crop's side: rows
#: (top, bottom), columns (left, right). The crop frames the face as in training (side
#: 1.44 x the landmark box): the eyes sit about a third of the way down, and the window
#: is left-right symmetric, so a mirrored crop's window is the window mirrored.
EYE_WINDOW = ((3 / 16, 9 / 16), (2 / 16, 14 / 16))
#: The encoder block whose output (1/8 of the crop) a ``lid_eyes`` head reads.
EYE_TAP = 5


def head_mode(value: object) -> str:
    """A config's ``face_head`` as stored: "" (none), "mean" or "flat"."""
    if not value:
        return ""
    if value not in HEAD_MODES:
        raise ValueError(f"face_head {value!r}: one of {', '.join(HEAD_MODES)} (or empty)")
    return str(value)


def head_features(bottleneck: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, C, H, W) -> what the face head reads: (B, C) pooled, or (B, C H W) flat."""
    return bottleneck.mean((2, 3)) if mode == "mean" else bottleneck.flatten(1)


def face_head(channels: int, side: int, mode: str) -> nn.Linear | None:
    """The face head's one linear layer over a (channels, side, side) bottleneck, or
    None without a head."""
    if not mode:
        return None
    return nn.Linear(channels if mode == "mean" else channels * side * side, 1)


def lid_head(features: int) -> nn.Linear:
    """The lid head's one linear layer over a flat bottleneck of ``features`` values."""
    return nn.Linear(features, len(LID_OUTPUTS))


def head_logits(head: nn.Module, mode: str, bottleneck: torch.Tensor) -> torch.Tensor:
    """(B,) face logits of a face head over the encoder's output (B, C, H, W)."""
    return head(head_features(bottleneck, mode)).squeeze(1)


class FaceScoring(nn.Module):
    """What PRNet and the mobile network share for their heads: ``encode`` (the
    bottleneck the face and lid heads read), ``score``, ``head_outputs`` and
    ``forward_all``."""

    # each subclass sets all three (a class-level default would hide the registered module)
    face_head: nn.Linear | None
    lid_head: nn.Linear | None
    vis_head: nn.Module | None
    config: Any  # PRNetConfig or realtime.core.mobile.MobileConfig: each has face_head, lids

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) the encoder's output for input crops ``x``."""
        raise NotImplementedError

    def forward_with_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps as ``forward``, face logits (B,)) in one pass."""
        raise NotImplementedError

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One pass: (maps as ``forward``, ``head_outputs``)."""
        raise NotImplementedError

    def head_outputs(self, z: torch.Tensor, taps: list[torch.Tensor]) -> list[torch.Tensor]:
        """The heads' outputs from the bottleneck ``z`` and the encoder ``taps`` (the
        visibility head's), one per head the model has, in this order
        (realtime.live.engines' ``head_names``): face logits (B,), lid openings (B, 2),
        visibility logits (B, 1, R/2, R/2)."""
        out = []
        if self.face_head is not None:
            out.append(self.score(z))
        if self.lid_head is not None:
            out.append(self.lid_head(self.lid_features(z, taps)))
        if self.vis_head is not None:
            out.append(self.vis_head(taps))
        return out

    def lid_features(self, z: torch.Tensor, taps: list[torch.Tensor]) -> torch.Tensor:
        """(B, F) what the lid head reads: the flat bottleneck ``z``, with the config's
        ``lid_eyes`` the encoder's 1/8 features over the eyes (``EYE_WINDOW``) too."""
        if not self.config.lid_eyes:
            return z.flatten(1)
        eighth = taps[VISIBILITY_TAPS.index(EYE_TAP)]
        w = eye_window(self.config.resolution // 8)  # not the tensor's shape: ONNX traces it
        return torch.cat([z.flatten(1), eighth[:, :, w.rows, w.cols].flatten(1)], 1)

    def score(self, bottleneck: torch.Tensor) -> torch.Tensor:
        """(B,) face logits from the encoder's output: above 0, a face framed as in
        training; a crop that slid off the face, or background, scores below."""
        if self.face_head is None:
            raise ValueError("this model has no face head (config.face_head is empty)")
        return head_logits(self.face_head, self.config.face_head, bottleneck)


def _pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TF 'SAME' padding for an even input: total k - s, the extra pixel after."""
    total = max(kernel - stride, 0)
    before = total // 2
    after = total - before
    return F.pad(x, (before, after, before, after)) if total else x


class ConvBN(nn.Module):
    """tf_slim conv2d with SAME padding, no bias, optional batch norm + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv2d(cin, cout, kernel, stride, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_pad_same(x, self.kernel, self.stride))
        return torch.relu(self.bn(x)) if self.bn is not None else x


class ResBlock(nn.Module):
    """resBlock of the original: 1x1 -> 4x4 (strided) -> 1x1, add shortcut, BN, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False) if stride != 1 or cin != cout else None
        self.conv1 = ConvBN(cin, cout // 2, 1)
        self.conv2 = ConvBN(cout // 2, cout // 2, 4, stride)
        self.conv3 = ConvBN(cout // 2, cout, 1, norm=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            short = x
        else:
            short = self.shortcut(x[:, :, :: self.stride, :: self.stride])
        y = self.conv3(self.conv2(self.conv1(x)))
        return torch.relu(self.bn(y + short))


class DeconvBN(nn.Module):
    """tf_slim conv2d_transpose, SAME padding, no bias, batch norm, ReLU (or sigmoid)."""

    def __init__(self, cin: int, cout: int, stride: int, final: bool = False):
        super().__init__()
        self.stride, self.final = stride, final
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.deconv(x)
        # Full transposed conv gives (n-1)s + 4; SAME keeps n*s starting at offset
        # (4 - s) // 2 ... which is 1 for both s = 1 and s = 2.
        y = y[:, :, 1 : 1 + h * self.stride, 1 : 1 + w * self.stride]
        y = self.bn(y)
        return torch.sigmoid(y) if self.final else torch.relu(y)


#: The encoder blocks whose outputs the visibility head reads: 1/2, 1/4, 1/8 and 1/16
#: of the crop (2, 4, 8 and 16 x ``size`` channels); a ``lid_eyes`` head reads the 1/8.
VISIBILITY_TAPS = (1, 3, 5, 7)


@dataclass(frozen=True)
class Window:
    """``EYE_WINDOW`` on a feature map of a given side: row and column slices."""

    rows: slice
    cols: slice

    @property
    def size(self) -> int:
        return (self.rows.stop - self.rows.start) * (self.cols.stop - self.cols.start)


def eye_window(side: int) -> Window:
    """``EYE_WINDOW`` on a ``side`` x ``side`` feature map."""
    (top, bottom), (left, right) = EYE_WINDOW
    return Window(
        slice(round(top * side), round(bottom * side)), slice(round(left * side), round(right * side))
    )


def _conv_bn(cin: int, cout: int, k: int) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, k, 1, k // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VisibilityHead(nn.Module):
    """The face-visibility map from PRNet's own encoder: (B, 1, R/2, R/2) logits of
    "the face itself shows here" (not a hand, hair, glasses in front of it), the
    standalone network's output (realtime.live.occlusion), from the features the
    position map is made from. A small decoder, coarse to fine, with the encoder's
    1/16, 1/8, 1/4 and 1/2 outputs as skips (about 45 M multiply-adds at 128 px,
    against the standalone network's 80 M and its own pass over the crop)."""

    def __init__(self, size: int):
        super().__init__()
        self.top = _conv_bn(16 * size, 32, 1)
        self.up8 = _conv_bn(32 + 8 * size, 32, 3)
        self.up4 = _conv_bn(32 + 4 * size, 24, 3)
        self.up2 = _conv_bn(24 + 2 * size, 16, 3)
        self.out = nn.Conv2d(16, 1, 3, 1, 1)

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        half, quarter, eighth, sixteenth = taps
        y = self.top(sixteenth)
        for layer, skip in ((self.up8, eighth), (self.up4, quarter), (self.up2, half)):
            y = layer(torch.cat([F.interpolate(y, scale_factor=2.0, mode="bilinear"), skip], 1))
        return self.out(y)


class PRNet(FaceScoring):
    """ResFCN256. Input (B, 3, R, R) RGB in [0, 1]; output (B, 3, R, R) in (0, 1).

    Multiply the output by ``config.output_scale`` for x, y, z in crop pixels.
    """

    def __init__(self, config: PRNetConfig = PRNetConfig()):
        super().__init__()
        self.config = config
        s = config.size
        self.conv = ConvBN(3, s, 4, 1)
        blocks, cin = [], s
        for mult, stride in ENCODER:
            blocks.append(ResBlock(cin, s * mult, stride))
            cin = s * mult
        self.encoder = nn.Sequential(*blocks)
        layers = []
        for i, (mult, stride) in enumerate(DECODER):
            cout = s * mult if mult else 3
            layers.append(DeconvBN(cin, cout, stride, final=i == len(DECODER) - 1))
            cin = cout
        self.decoder = nn.Sequential(*layers)
        side = config.resolution // 2 ** sum(st == 2 for _, st in ENCODER)
        self.face_head = face_head(s * ENCODER[-1][0], side, config.face_head)
        self.vis_head = VisibilityHead(s) if config.visibility else None
        window = eye_window(config.resolution // 8) if config.lid_eyes else None
        extra = 0 if window is None else ENCODER[EYE_TAP][0] * s * window.size
        self.lid_head = lid_head(s * ENCODER[-1][0] * side * side + extra) if config.lids else None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.conv(x))

    def encode_taps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The bottleneck and the encoder outputs the visibility head reads."""
        y, taps = self.conv(x), []
        for i, block in enumerate(self.encoder):
            y = block(y)
            if i in VISIBILITY_TAPS:
                taps.append(y)
        return y, taps

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z, taps = self.encode_taps(x)
        return self.decoder(z), self.head_outputs(z, taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))

    def forward_with_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps as ``forward``, face logits (B,)) in one pass."""
        z = self.encode(x)
        return self.decoder(z), self.score(z)


def count_flops(model: nn.Module, resolution: int) -> float:
    """Multiply-accumulates x 2 of convolutions (depthwise counted as such), transposed
    convolutions and linear layers, in FLOPs, for one ``resolution``-px face through
    ``model`` (PRNet or the mobile network; its face head included when it has one);
    upsampling and element-wise ops not counted."""
    total = 0.0

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.weight.shape[1]
            total += 2.0 * k * out.numel()
        elif isinstance(mod, nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.out_channels // mod.groups
            total += 2.0 * k * inp[0].numel()
        elif isinstance(mod, nn.Linear):
            total += 2.0 * mod.in_features * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was = model.training
    model.eval()
    with torch.no_grad():
        x = torch.zeros(1, 3, resolution, resolution)
        if isinstance(model, FaceScoring) and model.face_head is not None:
            model.forward_with_score(x)  # the head's layer counted too
        else:
            model(x)
    model.train(was)
    for h in handles:
        h.remove()
    return total
