"""A clean albedo from a real photo, for the face swap's source.

Why: the swap draws the source's albedo opaque over the whole face, on a live face
that may be seen large (a 1280 x 720 call, the face 300 px wide), so whatever the photo
carried besides the person shows: JPEG's blocks and its colour noise, a sensor's grain,
the shine of a lamp, and the coloured shadows the photo's light left in the nostrils and
lid creases. Divided by the photo's light (de-lighting), each becomes a blotch of
colour in the skin. So, once per photo:

* ``denoise_face``: the face's luminance is denoised (non-local means, as strong as the
  photo's own noise, measured on it, so a clean photo is left alone and pores,
  wrinkles and brow hairs stay) before anything is divided by the light;
* ``smooth_colour``: the colour (chroma: log colour over luminance) is taken from a
  smooth estimate, a normalised convolution that trusts well-seen skin and leaves out
  highlights and deep shadows (their colour is the light's, not the skin's); the lips
  are estimated apart from the skin so they keep their own colour. Identity stays in
  luminance, where the detail is; skin colour varies slowly.

And per frame, ``DetailMatch``: the source's fine skin detail turned down to what the
live camera shows of its own skin (the shader's ``u_detail``).
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from realtime.core.landmarks import JAW
from realtime.core.types import Reconstruction
from realtime.core.uv import UVLayout
from realtime.render.effects.uvdraw import uv_landmarks
from realtime.render.lighting import LUMA, to_linear
from realtime.render.tracks import TrackMemory

NOISE_GAIN = 1.1  # non-local means strength over the measured noise (grey levels)
MAX_STRENGTH = 12.0  # ... at most this (a noisier photo keeps some grain rather than turn waxy)
COLOUR_SIGMA = 0.03  # the skin's colour estimate's blur, x texture side
LIPS_SIGMA = 0.006  # the lips' (smaller, so a narrower blur)
DETAIL_SCALE = 48  # fine detail: finer than the face's width over this (the mottle measure's blur)
DETAIL_MATCH = 1.0  # the source keeps all its detail where the live skin has this share of it
DETAIL_RATE = 0.1  # weight of the newest frame in a track's detail gain


def noise_level(grey: np.ndarray) -> float:
    """The standard deviation of a grey image's noise (Immerkaer 1996: the image against
    a Laplacian-difference kernel that cancels smooth shading and edges alike, its mean
    absolute response scaled), in grey levels."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(grey.astype(np.float32), -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).mean() / 6.0)


def denoise_face(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``photo`` with the luminance of the face (its landmarks' box, grown by half)
    denoised as strongly as its measured noise; colour is left for ``smooth_colour``."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    pad = 0.5 * (hi - lo)
    h, w = photo.shape[:2]
    x0, y0 = np.maximum(np.floor(lo - pad), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(hi + pad), [w, h]).astype(int)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return photo
    part = cv2.cvtColor(photo[y0:y1, x0:x1], cv2.COLOR_BGR2YCrCb)
    strength = min(NOISE_GAIN * noise_level(part[..., 0]), MAX_STRENGTH)
    if strength < 1.0:
        return photo
    part[..., 0] = cv2.fastNlMeansDenoising(part[..., 0], None, strength, 5, 11)
    out = photo.copy()
    out[y0:y1, x0:x1] = cv2.cvtColor(part, cv2.COLOR_YCrCb2BGR)
    return out


def smooth_colour(
    log: np.ndarray, trust: np.ndarray, seen: np.ndarray, lips: np.ndarray, low: int
) -> np.ndarray:
    """Log colour (S, S, 3) with its chroma replaced by a smooth estimate and its
    luminance kept. ``trust`` (S, S) in [0, 1]: how much each texel's own colour is the
    skin's (0: a highlight, a deep shadow, a filled texel); ``lips`` (S, S) in [0, 1]:
    the lips, estimated apart, from the texels ``seen`` (darker than the skin by
    nature, so not judged by ``trust``). Computed at ``low`` x ``low`` (it is smooth)."""
    size = log.shape[0]
    lum = np.log(np.maximum(np.exp(log) @ LUMA.astype(np.float32), 1e-4))
    chroma = log - lum[..., None]
    small = cv2.resize(chroma, (low, low), interpolation=cv2.INTER_AREA)
    m = cv2.resize(lips.astype(np.float32), (low, low), interpolation=cv2.INTER_AREA)
    out = np.zeros_like(small)
    for part, weight, sigma in ((1.0 - m, trust, COLOUR_SIGMA), (m, seen, LIPS_SIGMA)):
        t = cv2.resize(weight.astype(np.float32), (low, low), interpolation=cv2.INTER_AREA)
        w = (t * part + 1e-4).astype(np.float32)
        s = sigma * low
        est = cv2.GaussianBlur(small * w[..., None], (0, 0), s) / cv2.GaussianBlur(w, (0, 0), s)[..., None]
        out += part[..., None] * est
    smooth = cv2.resize(out, (size, size), interpolation=cv2.INTER_LINEAR)
    return (lum[..., None] + smooth).astype(np.float32)


def ring_detail(image: np.ndarray, points: np.ndarray, radius: float) -> float:
    """How textured a surface is at ``radius`` (pixels of ``image``): each point's log
    luminance against the mean of eight around it at that distance, a robust RMS over
    the points (the median absolute difference, scaled). ``image``: (H, W) linear
    luminance, or (H, W, 3) uint8 BGR (only the pixels looked at are converted)."""
    ring = radius * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    xy = np.concatenate([points, (points[:, None] + ring[None]).reshape(-1, 2)])
    h, w = image.shape[:2]
    x = np.clip(np.round(xy[:, 0]).astype(np.int64), 0, w - 1)
    y = np.clip(np.round(xy[:, 1]).astype(np.int64), 0, h - 1)
    v = image[y, x]
    if v.ndim == 2:
        v = to_linear(v) @ LUMA.astype(np.float32)
    log = np.log(np.maximum(v, 1e-4))
    d = log[: len(points)] - np.log(np.exp(log[len(points) :].reshape(len(points), 8)).mean(1))
    return float(1.4826 * np.median(np.abs(d))) if len(d) else 0.0


class DetailMatch:
    """How much of the source's fine skin detail a live face keeps (``u_detail``): the
    live skin's texture over the source photo's, measured alike on both (the skin's
    pixels at 1/DETAIL_SCALE of the face's width, the scale at which blotches show), at
    most 1, smoothed per track. Why: a source photo sharper than the camera (age spots, stubble, pores a
    softer or smaller video does not resolve) would otherwise sit on the live face as
    dirt; a camera as sharp as the photo keeps all of it."""

    def __init__(self, layout: UVLayout, rows: np.ndarray):
        self.rows = rows
        self.width = float(np.ptp(uv_landmarks(layout, 2)[JAW, 0]))  # of the face, in UV (0 to 1)
        self.source = 0.0
        self.tracks = TrackMemory()

    def fresh(self) -> DetailMatch:
        twin = copy.copy(self)
        twin.tracks = TrackMemory()
        return twin

    def set_source(self, detail: float, size: int) -> float:
        """The source photo's ``detail`` (``ring_detail`` of its skin, as ``gain`` measures
        the live frame's); returns the mip level of a ``size`` texture that holds the
        skin without it, for the shader's low pass."""
        self.source = detail
        self.tracks.clear()
        return float(np.log2(max(self.width * (size - 1) / DETAIL_SCALE, 1.0)))

    def gain(self, image: np.ndarray, rec: Reconstruction) -> float:
        if self.source <= 0:
            return 1.0
        radius = float(np.ptp(rec.landmarks[:, 0])) / DETAIL_SCALE
        live = ring_detail(image, rec.vertices[self.rows, :2].astype(np.float64), max(radius, 1.0))
        return self.tracks.smooth(rec.track_id, min(live / (DETAIL_MATCH * self.source), 1.0), DETAIL_RATE)
