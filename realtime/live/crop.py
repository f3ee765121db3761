"""Cut faces out of a frame for the network: a sub-pixel similarity warp of every
face to R x R in one call on the inference device, plus the inverse affine that maps
results back to frame pixels.

Sampling is RoIAlign-style: each output pixel averages a few bilinear samples
spread over its footprint, taken from an octave of the frame (box-filtered by 2, 4,
...) chosen so the footprint spans 1-2 source pixels. Plain bilinear sampling of a
large face into a small crop aliases (shimmer as the head moves, which PRNet turns
into mesh jitter); averaging costs little and removes it.

Two implementations of that one sampling. On a GPU (torch): the frame uploaded once,
its octaves, ``affine_grid`` + ``grid_sample`` + ``avg_pool2d``. On the CPU the crops'
affines are axis-aligned (a scale and a shift), so octave, bilinear taps and the
average are all separable: they fold into a few weights per output row and column, over
only the rows and columns of the face's region (``_axis_taps``), and one Numba loop
applies them to the uint8 BGR frame itself, with the channel swap and the 1/255 folded
in (``_sample``). No float frame, no pyramid, no grid: 0.2-0.5 ms a 128 px crop
against 8-18 ms for the torch path on the 2-core EPYC (its ``bmm`` building the grid,
``avg_pool2d`` and the frame's float conversion were 90 % of it), and the same crops
within 1e-5 (float rounding), so the network sees what it saw.

Framing (COMMON.md): a square of side ``size`` frame pixels centred on ``center``
becomes R x R; frame -> crop is x_c = (x_f - cx) R / size + (R - 1) / 2 (pixel
centres at integers), the same for y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numba
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
    """A frame and its 2x box-filtered reductions, built on demand.

    On the CPU it can hold the (H, W, 3) uint8 BGR frame itself (``Octaves(frame)``, or
    ``Octaves.of``): ``warp`` then samples crops straight from it, and the float tensor
    (``levels``, its reductions) is made only if something asks for it (MTCNN's full
    pass reads the whole frame as a tensor)."""

    def __init__(self, image: torch.Tensor | np.ndarray):
        self.frame: np.ndarray | None = None
        self._levels: list[torch.Tensor] | None = None
        if isinstance(image, np.ndarray):
            self.frame = np.ascontiguousarray(image, np.uint8)
            self.height, self.width = self.frame.shape[:2]
            return
        if image.dim() == 3:
            image = image.unsqueeze(0)
        self.height, self.width = image.shape[-2:]
        self._levels = [image]

    @classmethod
    def of(cls, image: np.ndarray, device: str | torch.device = "cpu") -> Octaves:
        """A BGR uint8 frame ready for the detector and the crops on ``device``: the
        frame itself on the CPU (no conversion until one is needed), the uploaded
        float tensor elsewhere."""
        if torch.device(device).type == "cpu":
            return cls(image)
        return cls(to_tensor(image, device))

    def fork(self) -> Octaves:
        """A new Octaves over the same frame for another thread (the tracker's background
        detection), which then builds its own reductions: no float frame is made here."""
        return Octaves(self.frame if self.frame is not None else self.levels[0])

    @property
    def levels(self) -> list[torch.Tensor]:
        """Level 0 (the frame as a (1, 3, H, W) float RGB tensor) and the reductions
        built so far."""
        if self._levels is None:
            assert self.frame is not None
            self._levels = [to_tensor(self.frame)]
        return self._levels

    def get(self, k: int) -> torch.Tensor:
        levels = self.levels
        while len(levels) <= k:
            prev = levels[-1]
            if min(prev.shape[-2:]) < 2:
                break
            h, w = prev.shape[-2:]
            if h % 2 or w % 2:  # keep the extent exactly 2x so one normalisation fits all
                prev = F.pad(prev, (0, w % 2, 0, h % 2), mode="replicate")
            if prev.device.type == "cpu":
                levels.append(area_resize(prev, (h + 1) // 2, (w + 1) // 2))
            else:  # an exact halving: a 2x2 mean, far cheaper on a GPU than adaptive pooling
                levels.append(F.avg_pool2d(prev, 2))
        return levels[min(k, len(levels) - 1)]


def _octave(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The octave k (box-filtered by 2^k) each crop samples, and its sub-samples per
    axis ss, from the crops' footprints ``ratio`` (frame px per crop px): the footprint
    spans 1-2 pixels of octave k, and ss samples per axis cover the largest footprint
    of the crops sampled at that octave in one call (a call's crops of one octave share
    one grid on the GPU; the CPU keeps that rule so both give the same crops)."""
    ratio = np.asarray(ratio, np.float64)
    octave = np.maximum(np.floor(np.log2(ratio)), 0).astype(np.int64)
    own = np.ceil(ratio / 2.0**octave - 1e-6)
    ss = np.array([own[octave == k].max() for k in octave]) if len(octave) else own
    return octave, np.clip(ss, 1, 4).astype(np.int64)


def warp(source: torch.Tensor | Octaves, to_frame: np.ndarray, size: int) -> torch.Tensor:
    """Sample (B, C, size, size) crops; ``to_frame`` (B, 2, 3) maps crop pixels to frame
    pixels. Outside the frame reads as zeros (black). On the CPU, axis-aligned affines
    (all the crops and detector boxes here) take the separable path (``warp_cpu``)."""
    oct_ = source if isinstance(source, Octaves) else Octaves(source)
    a = np.asarray(to_frame, np.float64).reshape(-1, 2, 3)
    on_cpu = oct_.frame is not None or oct_.levels[0].device.type == "cpu"
    if on_cpu and len(a) and np.all(a[:, 0, 1] == 0) and np.all(a[:, 1, 0] == 0):
        if oct_.frame is not None:
            return warp_cpu(oct_.frame, a, size, bgr=True)
        return warp_cpu(hwc_view(oct_.levels[0]), a, size, bgr=False)
    return _warp_torch(oct_, a, size)


def warp_cpu(image: np.ndarray, to_frame: np.ndarray, size: int, bgr: bool = True) -> torch.Tensor:
    """The CPU sampler: (H, W, 3) uint8 BGR (``bgr``) or float32 RGB in [0, 1] ->
    (B, 3, size, size) float32 RGB in [0, 1], contiguous. ``to_frame`` must be
    axis-aligned (no rotation or shear). The same octave, sub-samples, bilinear taps
    and zeros outside the frame as the torch path (``_warp_torch``), computed as
    separable weights over level-0 pixels (a level-k pixel is the mean of its 2^k x 2^k
    block, with the pyramid's replicate padding of odd sizes), so no octave is built."""
    a = np.asarray(to_frame, np.float64).reshape(-1, 2, 3)
    out = np.zeros((len(a), 3, size, size), np.float32)
    if len(a) == 0:
        return torch.from_numpy(out)
    img = np.ascontiguousarray(image)
    h, w = img.shape[:2]
    flat = img.reshape(h, w * 3)
    octave, ss = _octave(np.sqrt(np.maximum(np.abs(a[:, 0, 0] * a[:, 1, 1]), 1e-12)))
    scale = np.float32(1 / 255) if img.dtype == np.uint8 else np.float32(1)
    for b in range(len(a)):
        k = min(int(octave[b]), _top_octave(h, w))
        sizes_y, sizes_x = _level_sizes(h, k), _level_sizes(w, k)
        yi, wy = _axis_taps(a[b, 1, 1], a[b, 1, 2], sizes_y, k, int(ss[b]), size)
        xi, wx = _axis_taps(a[b, 0, 0], a[b, 0, 2], sizes_x, k, int(ss[b]), size)
        _sample(flat, yi, wy, xi, wx, scale, bgr, out[b])
    return torch.from_numpy(out)


def _top_octave(h: int, w: int) -> int:
    """The highest octave the pyramid has (it halves while both sides are >= 2)."""
    k = 0
    while min(h, w) >= 2:
        h, w, k = (h + 1) // 2, (w + 1) // 2, k + 1
    return k


def _level_sizes(n: int, k: int) -> np.ndarray:
    """Sizes of one axis at octaves 0..k (odd sizes are padded by one, then halved)."""
    sizes = [n]
    for _ in range(k):
        sizes.append((sizes[-1] + 1) // 2)
    return np.array(sizes, np.int64)


@numba.njit(cache=True, nogil=True)  # lets the GL thread run Python meanwhile
def _axis_taps(
    a: float, b: float, sizes: np.ndarray, k: int, ss: int, r: int
) -> tuple[np.ndarray, np.ndarray]:
    """One axis of a crop as (r, T) level-0 pixel indices and float32 weights: output
    pixel i averages ss bilinear samples at t = i + (s + 0.5) / ss - 0.5 (crop px),
    frame f = a t + b, octave-k pixel p = (f + 0.5) / 2^k - 0.5; a tap outside octave
    k reads zero; an octave-k pixel is the mean of its 2^k level-0 pixels, where a
    pixel past an odd level's end repeats that level's last one."""
    step = 1 << k
    n_k = sizes[k]
    d = abs(a) / (ss * step)  # sub-sample spacing in octave-k pixels
    span = int(math.floor((ss - 1) * d)) + 3  # octave-k pixels one output pixel can touch
    idx = np.zeros((r, span * step), np.int32)
    wts = np.zeros((r, span * step), np.float32)
    wk = np.zeros(span)
    for i in range(r):
        wk[:] = 0.0
        p_first = (a * (i + 0.5 / ss - 0.5) + b + 0.5) / step - 0.5
        p_last = (a * (i + (ss - 0.5) / ss - 0.5) + b + 0.5) / step - 0.5
        base = math.floor(min(p_first, p_last))
        for s in range(ss):
            p = (a * (i + (s + 0.5) / ss - 0.5) + b + 0.5) / step - 0.5
            p0 = math.floor(p)
            f = p - p0
            q = int(p0)
            if 0 <= q < n_k:
                wk[q - base] += (1.0 - f) / ss
            if 0 <= q + 1 < n_k:
                wk[q + 1 - base] += f / ss
        for j in range(span):
            for sub in range(step):
                v = (base + j) * step + sub
                for lev in range(k, 0, -1):  # a padded pixel repeats its level's last
                    e = v >> lev
                    if e >= sizes[lev]:
                        v -= (e - (sizes[lev] - 1)) << lev
                v = min(max(v, 0), sizes[0] - 1)  # weights off the frame are zero already
                idx[i, j * step + sub] = v
                wts[i, j * step + sub] = wk[j] / step
    return idx, wts


@numba.njit(cache=True, fastmath=True, nogil=True)
def _sample(
    flat: np.ndarray,
    yi: np.ndarray,
    wy: np.ndarray,
    xi: np.ndarray,
    wx: np.ndarray,
    scale: np.float32,
    bgr: bool,
    out: np.ndarray,
) -> None:
    """out (3, R, R) = the separable weights applied to ``flat`` ((H, W * 3) rows of
    interleaved channels): rows first over only the face's columns, then columns."""
    r = yi.shape[0]
    c_lo, c_hi = xi.min(), xi.max()
    n = (c_hi - c_lo + 1) * 3
    rows = np.zeros((r, n), np.float32)
    for i in range(r):
        acc = rows[i]
        for t in range(yi.shape[1]):
            w = wy[i, t]
            if w != 0.0:
                src = flat[yi[i, t], c_lo * 3 : c_lo * 3 + n]
                for c in range(n):
                    acc[c] += w * np.float32(src[c])
    first, last = (2, 0) if bgr else (0, 2)
    for i in range(r):
        acc = rows[i]
        for j in range(xi.shape[0]):
            s0 = s1 = s2 = np.float32(0.0)
            for u in range(xi.shape[1]):
                w = wx[j, u]
                c = (xi[j, u] - c_lo) * 3
                s0 += w * acc[c]
                s1 += w * acc[c + 1]
                s2 += w * acc[c + 2]
            out[first, i, j] = s0 * scale
            out[1, i, j] = s1 * scale
            out[last, i, j] = s2 * scale


def _warp_torch(oct_: Octaves, a: np.ndarray, size: int) -> torch.Tensor:
    """The torch sampler (GPU, or an affine with rotation): octaves, one
    ``affine_grid`` + ``grid_sample`` per octave for all its crops, ``avg_pool2d``."""
    base = oct_.levels[0]
    n_b = a.shape[0]
    out = torch.zeros((n_b, base.shape[1], size, size), dtype=base.dtype, device=base.device)
    if n_b == 0:
        return out
    ratio = np.sqrt(np.maximum(np.abs(a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]), 1e-12))
    octave, subs = _octave(ratio)
    for k in np.unique(octave).tolist():
        rows = np.flatnonzero(octave == k)
        src = oct_.get(k)
        # extent of this octave in frame pixels (may exceed the frame by padded pixels)
        ext_w, ext_h = src.shape[-1] * 2**k, src.shape[-2] * 2**k
        ss = int(subs[rows].max())
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

    ``image`` is a BGR uint8 frame, or a tensor / Octaves (``Octaves.of``, to share the
    frame with the detector)."""
    src = Octaves.of(image, device) if isinstance(image, np.ndarray) else image
    _, to_frame = crop_affines(centers, sizes, resolution)
    images = warp(src, to_frame, resolution)
    return CropBatch(images=images, to_frame=to_frame, track_ids=list(track_ids))
