"""Graph rewrites of a trained PRNet for fast inference, shared by the compiled
engines: batch norm folded into the convolutions, stride-1 transposed convolutions
rewritten as plain convolutions (sub-pixel), the wide ones as Winograd F(4x4, 4x4).
The rewritten network computes the same maps (checked by ``choose.compare``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from realtime.core.model import VISIBILITY_TAPS, ConvBN, DeconvBN, FaceScoring, PRNet, ResBlock

#: Winograd F(4x4, 4x4) (cpu-fast): finite interpolation points (plus infinity),
#: small and exact in binary so fp32 error stays ~1e-5 relative; and the stride-1
#: decoder layers where it beats oneDNN's direct conv on the CPU: measured faster at
#: 256 ch x 16 px, 128 x 32 and 64 x 64 (the full model), slower below 64 channels
#: and at 512 x 8; untried shapes (the lite model's) keep the direct conv.
WINOGRAD_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5)
WINOGRAD_SHAPES = ((256, 16), (128, 32), (64, 64))  # (channels, feature-map side)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as y = a x + b."""
    assert bn.running_mean is not None and bn.running_var is not None  # PRNet's norms track them
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return a, bn.bias - a * bn.running_mean


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    cout, cin, k, _ = weight.shape
    conv = nn.Conv2d(cin, cout, k, stride, padding, bias=bias is not None)
    conv.weight.data.copy_(weight)
    if bias is not None:
        assert conv.bias is not None  # made with bias=True just above
        conv.bias.data.copy_(bias)
    return conv


class _FoldedConv(nn.Module):
    """ConvBN with the norm folded in. TF 'SAME' for a 4x4 kernel is symmetric (1, 1)
    at stride 2, so it becomes the conv's own padding; at stride 1 it is (1, 2), an
    explicit pad."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, relu: bool):
        super().__init__()
        k = weight.shape[-1]
        self.pad = (1, 2, 1, 2) if k == 4 and stride == 1 else None
        self.conv = _conv(weight, bias, stride, 1 if k == 4 and stride == 2 else 0)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.pad(x, self.pad) if self.pad else x)
        return torch.relu(x) if self.relu else x


def _fold_convbn(m: ConvBN, relu: bool = True) -> _FoldedConv:
    w = m.conv.weight
    if m.bn is None:
        return _FoldedConv(w, None, m.stride, relu=False)
    a, b = _bn_affine(m.bn)
    return _FoldedConv(w * a[:, None, None, None], b, m.stride, relu)


class _FoldedBlock(nn.Module):
    """ResBlock: relu(bn(conv3(y) + short)) with bn's scale folded into conv3 and the
    shortcut conv (an identity shortcut keeps a per-channel scale)."""

    short_scale: torch.Tensor  # a buffer, with an identity shortcut

    def __init__(self, block: ResBlock):
        super().__init__()
        a, b = _bn_affine(block.bn)
        self.conv1 = _fold_convbn(block.conv1)
        self.conv2 = _fold_convbn(block.conv2)
        self.conv3 = _conv(block.conv3.conv.weight * a[:, None, None, None], b)
        if block.shortcut is None:
            self.short = None
            self.register_buffer("short_scale", a[None, :, None, None].clone())
        else:  # subsample + 1x1 conv == strided 1x1 conv (forward only, no crash here)
            self.short = _conv(block.shortcut.weight * a[:, None, None, None], None, block.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x * self.short_scale if self.short is None else self.short(x)
        return torch.relu(self.conv3(self.conv2(self.conv1(x))) + s)


def winograd_matrices(
    m: int, r: int, points: Iterable[float] = WINOGRAD_POINTS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Toom-Cook matrices (A^T, G, B^T) of Winograd F(m, r): for a tile d of m + r - 1
    inputs, the correlation with g is A^T [(G g) * (B^T d)].

    Built from polynomial multiplication evaluated at ``points`` and infinity: with
    V_k the (n, k) evaluation matrix, A^T = V_m^T, G = V_r, B^T = V_n^-T (float64).
    """
    pts = [float(p) for p in points][: m + r - 2]
    if len(pts) != m + r - 2:
        raise ValueError(f"F({m}, {r}) needs {m + r - 2} finite points")

    def vander(k: int) -> torch.Tensor:
        rows = [[p**j for j in range(k)] for p in pts] + [[0.0] * (k - 1) + [1.0]]
        return torch.tensor(rows, dtype=torch.float64)

    return vander(m).T, vander(r), torch.linalg.inv(vander(m + r - 1)).T


class _WinogradConv(nn.Module):
    """Stride-1 r x r convolution (+ bias) as Winograd F(m x m, r x r): per m x m output
    tile, (m + r - 1)^2 products instead of (m r)^2, i.e. 3.1x fewer multiplies for
    F(4x4, 4x4). The products are one batched matmul (n^2, tiles, Cin) @ (n^2, Cin,
    Cout); the input and output transforms are two einsums with the small constant
    matrices (as fast as hand-unrolled sums once compiled, and 5-8x quicker to
    compile). Pays off only with many channels (the transformed input is 2.25x the
    input), hence WINOGRAD_SHAPES. fp32 error ~1e-5 relative.

    ``pad`` is (before, after) as for F.pad; the output is (B, Cout, H, W) in
    channels_last memory.
    """

    u: torch.Tensor  # buffers: the transformed kernel, the bias and the two transforms
    bias: torch.Tensor
    at: torch.Tensor
    bt: torch.Tensor

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, pad: tuple[int, int], m: int = 4):
        super().__init__()
        cout, cin, r, _ = weight.shape
        at, g, bt = winograd_matrices(m, r)
        self.m, self.n, self.pad = m, m + r - 1, pad
        u = torch.einsum("ij,ocjk,lk->ilco", g, weight.double(), g)  # G w G^T per (co, ci)
        self.register_buffer("u", u.reshape(self.n * self.n, cin, cout).float().contiguous())
        self.register_buffer("bias", bias.detach().clone())
        self.register_buffer("at", at.float())
        self.register_buffer("bt", bt.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n, (before, _) = self.m, self.n, self.pad
        b, c, h, w = x.shape
        th, tw = -(-h // m), -(-w // m)
        # pad so that th x tw tiles of n x n inputs (stride m) cover the image
        xp = F.pad(x, (before, tw * m + n - m - w - before, before, th * m + n - m - h - before))
        xu = xp.unfold(2, n, m).unfold(3, n, m)  # (B, C, th, tw, n rows, n cols), a view
        v = torch.einsum("ij,bcxyjk,lk->ilbxyc", self.bt, xu, self.bt).reshape(n * n, b * th * tw, c)
        p = torch.bmm(v, self.u).view(n, n, b, th, tw, -1)
        y = torch.einsum("ij,jkbxyo,lk->bxiylo", self.at, p, self.at)  # (B, th, m, tw, m, Cout)
        y = y.reshape(b, th * m, tw * m, -1)[:, :h, :w] + self.bias
        return y.permute(0, 3, 1, 2)


class _FoldedDeconv(nn.Module):
    """DeconvBN with the norm folded in.

    Stride 1: the SAME transposed conv (full, cropped by 1 at the start) equals a
    plain conv with the kernel flipped, in/out channels swapped and input padding
    (2 before, 1 after); oneDNN runs plain convs faster, and with ``winograd`` the
    wide ones (WINOGRAD_SHAPES) run as Winograd F(4x4, 4x4). Stride 2: the crop of
    1 on each side is exactly ConvTranspose2d(padding=1); oneDNN runs it as fast as
    a conv of equal FLOPs (the sub-pixel rewrite, ``subpixel_weight``, measured no
    faster: docs/benchmarks.md).
    """

    def __init__(self, m: DeconvBN, out_scale: float | None, winograd: bool = False, side: int = 0):
        super().__init__()
        a, b = _bn_affine(m.bn)
        w = m.deconv.weight * a[None, :, None, None]  # (cin, cout, k, k)
        self.out_scale = out_scale
        self.pad: tuple[int, ...] | None = None
        if m.stride == 1:
            conv_w = w.transpose(0, 1).flip(2, 3)
            if winograd and (w.shape[0], side) in WINOGRAD_SHAPES:
                self.op: nn.Module = _WinogradConv(conv_w, b, (2, 1))
            else:
                self.op, self.pad = _conv(conv_w, b), (2, 1, 2, 1)
        else:
            cin, cout, k, _ = w.shape
            deconv = nn.ConvTranspose2d(cin, cout, k, m.stride, padding=1, bias=True)
            assert deconv.bias is not None  # bias=True
            deconv.weight.data.copy_(w)
            deconv.bias.data.copy_(b)
            self.op = deconv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(F.pad(x, self.pad) if self.pad else x)
        if self.out_scale is not None:  # final layer: sigmoid, then crop pixels
            return torch.sigmoid(y) * self.out_scale
        return torch.relu(y)


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """Stride-2 4x4 SAME transposed conv as sub-pixel convolution: returns the (4 Cout,
    Cin, 3, 3) kernel K such that pixel_shuffle(conv2d(x, K, padding=1), 2) equals
    conv_transpose2d(x, weight, stride=2) cropped by 1 (DeconvBN).

    Output row 2i + r of the crop is full row 2i + r + 1 = 2q + k with input row q:
    r = 0 takes k = 3 from row i - 1 and k = 1 from row i; r = 1 takes k = 2 from row i
    and k = 0 from row i + 1. The 3x3 taps t = 0, 1, 2 read rows i - 1, i, i + 1;
    columns likewise. Kept for the record and its test: 2.25x the multiplies (5 of 9
    taps are zero), measured 2x slower than oneDNN's transposed conv.
    """
    cin, cout = weight.shape[:2]
    taps = ((3, 1, None), (None, 2, 0))  # parity r -> kernel index for tap t
    k = weight.new_zeros(cout, 2, 2, cin, 3, 3)  # channel c * 4 + ry * 2 + rx
    for ry in range(2):
        for rx in range(2):
            for ty, ky in enumerate(taps[ry]):
                for tx, kx in enumerate(taps[rx]):
                    if ky is not None and kx is not None:
                        k[:, ry, rx, :, ty, tx] = weight[:, :, ky, kx].T
    return k.reshape(4 * cout, cin, 3, 3)


class FoldedPRNet(FaceScoring):
    """Inference-only PRNet: same function as ``PRNet.eval()`` times output_scale,
    with every batch norm folded away (27 fewer passes over the activations).
    ``heads``: ``forward`` returns a tuple, the maps then ``FaceScoring.head_outputs`` (an
    ONNX model with every output of the one pass). The heads run as they are
    (onnxruntime and inductor fold the visibility head's batch norms themselves)."""

    def __init__(self, model: PRNet, out_scale: float, winograd: bool = False, heads: bool = False):
        super().__init__()
        self.heads = heads
        self.config = model.config  # the heads, shared with the model, as FaceScoring runs them
        self.face_head, self.lid_head = model.face_head, model.lid_head
        self.vis_head = model.vis_head.eval() if model.vis_head is not None else None
        with torch.no_grad():
            self.stem = _fold_convbn(model.conv)
            blocks = cast(Sequence[ResBlock], model.encoder)  # PRNet builds them so
            deconvs = cast(Sequence[DeconvBN], model.decoder)
            self.encoder = nn.Sequential(*[_FoldedBlock(b) for b in blocks])
            last, side, layers = len(deconvs) - 1, model.config.resolution // 32, []
            for i, m in enumerate(deconvs):
                side *= m.stride
                layers.append(_FoldedDeconv(m, out_scale if i == last else None, winograd, side))
            self.decoder = nn.Sequential(*layers)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor):
        if not self.heads:
            return self.decoder(self.encoder(self.stem(x)))
        z, taps = self.stem(x), []
        for i, block in enumerate(self.encoder):
            z = block(z)
            if i in VISIBILITY_TAPS:
                taps.append(z)
        return (self.decoder(z), *self.head_outputs(z, taps))
