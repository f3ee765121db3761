"""Cut faces out of a frame for the network: a sub-pixel similarity warp of every
face to R x R in one call on the inference device, plus the inverse affine that maps
results back to frame pixels.

Sampling is RoIAlign-style: each output pixel averages a few bilinear samples
spread over its footprint, taken from an octave of the frame (box-filtered by 2, 4,
...) chosen so the footprint spans 1-2 source pixels. Plain bilinear sampling of a
large face into a small crop aliases (shimmer as the head moves, which PRNet turns
into mesh jitter); averaging costs little and removes it.

Framing (COMMON.md): a square of side ``size`` frame pixels centred on ``center``
becomes R x R; frame -> crop is x_c = (x_f - cx) R / size + (R - 1) / 2 (pixel
centres at integers), the same for y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from realtime.core.types import CropBatch


def to_tensor(image: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8 BGR -> (1, 3, H, W) float32 RGB in [0, 1] on ``device``.

    On a GPU the frame is uploaded once, as uint8 (a quarter of the bytes of float),
    from a reused pinned buffer without blocking, and converted there. On the CPU
    OpenCV converts it (3-5x quicker than torch's single-threaded permute/flip/cast)
    and the tensor is a channels-last view of that (H, W, 3) array, the layout the
    CPU convolutions and OpenCV both prefer."""
    if torch.device(device).type == "cpu":
        rgb = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB).astype(np.float32)
        rgb *= np.float32(1 / 255)  # in place: one float frame per call, not two
        return _from_hwc(rgb)
    staging = _pinned(image.shape)
    staging.numpy()[...] = image  # the previous frame's copy ended: its results came back
    t = staging.to(device, non_blocking=True)
    return t.permute(2, 0, 1).flip(0).unsqueeze(0).float().div_(255.0)


_PINNED: dict[tuple[int, ...], torch.Tensor] = {}


def _pinned(shape: tuple[int, ...]) -> torch.Tensor:
    """A page-locked uint8 host buffer of ``shape``, made once per frame size: the
    DMA engine copies from it while the CPU goes on."""
    if shape not in _PINNED:
        _PINNED.clear()  # one frame size at a time
        _PINNED[shape] = torch.empty(shape, dtype=torch.uint8).pin_memory()
    return _PINNED[shape]


def _from_hwc(a: np.ndarray) -> torch.Tensor:
    """(H, W, C) float32 array -> (1, C, H, W) channels-last tensor sharing its memory."""
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0)


def hwc_view(t: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) CPU tensor -> (H, W, C) float32 array (a view when channels-last)."""
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())


def area_resize(t: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Area-average resize of a (1, C, H, W) image. OpenCV on the CPU (torch's
    adaptive average pooling is ~10x slower there), torch's "area" mode elsewhere."""
    if t.device.type != "cpu":
        return F.interpolate(t, (height, width), mode="area")
    a = cv2.resize(hwc_view(t), (width, height), interpolation=cv2.INTER_AREA)
    return _from_hwc(a.reshape(height, width, -1))


class Octaves:
    """A frame and its 2x box-filtered reductions, built on demand."""

    def __init__(self, image: torch.Tensor):
        if image.dim() == 3:
            image = image.unsqueeze(0)
        self.height, self.width = image.shape[-2:]
        self.levels = [image]

    def get(self, k: int) -> torch.Tensor:
        while len(self.levels) <= k:
            prev = self.levels[-1]
            if min(prev.shape[-2:]) < 2:
                break
            h, w = prev.shape[-2:]
            if h % 2 or w % 2:  # keep the extent exactly 2x so one normalisation fits all
                prev = F.pad(prev, (0, w % 2, 0, h % 2), mode="replicate")
            if prev.device.type == "cpu":
                self.levels.append(area_resize(prev, (h + 1) // 2, (w + 1) // 2))
            else:  # an exact halving: a 2x2 mean, far cheaper on a GPU than adaptive pooling
                self.levels.append(F.avg_pool2d(prev, 2))
        return self.levels[min(k, len(self.levels) - 1)]


def warp(source: torch.Tensor | Octaves, to_frame: np.ndarray, size: int) -> torch.Tensor:
    """Sample (B, C, size, size) crops; ``to_frame`` (B, 2, 3) maps crop pixels to frame
    pixels. Outside the frame reads as zeros (black)."""
    oct_ = source if isinstance(source, Octaves) else Octaves(source)
    base = oct_.levels[0]
    a = np.asarray(to_frame, np.float64).reshape(-1, 2, 3)
    n_b = a.shape[0]
    out = torch.zeros((n_b, base.shape[1], size, size), dtype=base.dtype, device=base.device)
    if n_b == 0:
        return out
    ratio = np.sqrt(np.maximum(np.abs(a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]), 1e-12))
    octave = np.maximum(np.floor(np.log2(ratio)), 0).astype(np.int64)
    for k in np.unique(octave).tolist():
        rows = np.flatnonzero(octave == k)
        src = oct_.get(k)
        # extent of this octave in frame pixels (may exceed the frame by padded pixels)
        ext_w, ext_h = src.shape[-1] * 2**k, src.shape[-2] * 2**k
        ss = max(1, min(4, math.ceil(float(ratio[rows].max()) / 2**k - 1e-6)))
        m = size * ss
        # affine_grid samples at normalised output coordinates u in (-1, 1); sub-sample
        # i sits at crop pixel t = (i + 0.5) / ss - 0.5 = (u + 1) size / 2 - 0.5, the
        # frame at to_frame [t, 1], and the source at normalised (2 f + 1) / extent - 1:
        # all affine, so one (2, 3) matrix per crop (composed in float64) makes the grid.
        from_u = np.array([[size / 2, 0, size / 2 - 0.5], [0, size / 2, size / 2 - 0.5], [0, 0, 1]])
        to_norm = np.array([[2 / ext_w, 0, 1 / ext_w - 1], [0, 2 / ext_h, 1 / ext_h - 1], [0, 0, 1]])
        frame = np.concatenate([a[rows], np.broadcast_to([[[0.0, 0.0, 1.0]]], (len(rows), 1, 3))], 1)
        theta = (to_norm @ frame @ from_u)[:, :2]
        theta_t = torch.as_tensor(theta, dtype=src.dtype, device=src.device)
        grid = F.affine_grid(theta_t, [len(rows), 1, m, m], align_corners=False)
        # All crops as one tall grid over the single source image: no per-crop copy of
        # the frame. Samples past the frame edge read zero.
        grid = grid.reshape(1, len(rows) * m, m, 2)
        s = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        s = s.reshape(src.shape[1], len(rows), m, m).transpose(0, 1)
        if ss > 1:
            s = F.avg_pool2d(s, ss)
        out[torch.as_tensor(rows, device=out.device)] = s
    return out


def crop_affines(centers: np.ndarray, sizes: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2) centres and (B,) square sides in frame px -> (to_crop, to_frame), (B, 2, 3) each."""
    c = np.asarray(centers, np.float64).reshape(-1, 2)
    s = np.asarray(sizes, np.float64).reshape(-1)
    k = resolution / s  # crop px per frame px
    half = (resolution - 1) / 2
    to_crop = np.zeros((len(s), 2, 3))
    to_crop[:, 0, 0] = to_crop[:, 1, 1] = k
    to_crop[:, :, 2] = half - c * k[:, None]
    to_frame = np.zeros((len(s), 2, 3))
    to_frame[:, 0, 0] = to_frame[:, 1, 1] = 1 / k
    to_frame[:, :, 2] = c - half / k[:, None]
    return to_crop, to_frame


def crop_faces(
    image: np.ndarray | torch.Tensor | Octaves,
    centers: np.ndarray,
    sizes: np.ndarray,
    resolution: int,
    track_ids: Sequence[int],
    device: str | torch.device = "cpu",
) -> CropBatch:
    """All faces of one frame -> CropBatch of (B, 3, R, R) RGB [0, 1] on ``device``.

    ``image`` is a BGR uint8 frame, or a tensor / Octaves from ``to_tensor`` (to share
    one upload with the detector)."""
    src = to_tensor(image, device) if isinstance(image, np.ndarray) else image
    _, to_frame = crop_affines(centers, sizes, resolution)
    images = warp(src, to_frame, resolution)
    return CropBatch(images=images, to_frame=to_frame, track_ids=list(track_ids))
