"""Drawing in PRNet's UV layout, shared by the effects: texture size, the feathered
region an effect may change, and the supersampled canvas the masks are painted on
(the 68 landmarks' groups are realtime.core.landmarks'). A mask is an RGBA image in
PRNet's UV layout (stored BGRA, OpenCV's order), so one picture fits every face, pose
and expression. Textures are 1024 x 1024: a face 300-600 px wide on a 720p or 1080p
frame then gets a texel or more per pixel (mip-mapped, so smaller faces do not
shimmer); PRNet's own 256 x 256 layout images load at any square size."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.core.landmarks import BROW_L, BROW_R, EYE_L, EYE_R, LIPS, NOSE_BASE
from realtime.core.uv import UVLayout

TEX = 1024  # UV texture side: masks, the swap's source and the regions are drawn at this size
SS = 2  # supersampling when drawing masks, for smooth edges
FEATHER = 0.06  # width of the soft edge, as a fraction of the texture side


def uv_landmarks(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """(68, 2) float landmark (col, row) in a ``size`` texture of the layout."""
    return layout.kpt_ind.T.astype(np.float64) * (size - 1) / (layout.resolution - 1)


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, a smooth S between (GLSL's smoothstep)."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def inner_distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32: each pixel's distance (px) to the nearest pixel outside ``mask``
    (0 outside it); beyond the image's border counts as outside, so a region that
    reaches the border fades there too."""
    return cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]


def face_mask_tex(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """(size, size) bool: the layout's face pixels at texture resolution."""
    m = cv2.resize(layout.face_mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return m > 0


def effect_region(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """(size, size, 2) uint8: channel 0 the feathered region an effect may change (the
    hull of the 68 landmarks, faded inward so the face blends into the frame),
    channel 1 the whole face (for debug views). The hull is used whole: the holes in
    the face pixels (the mouth) have no mesh, so they need no fade."""
    k = uv_landmarks(layout, size)
    face = face_mask_tex(layout, size)
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(k).astype(np.int32)), 1)
    soft = smoothstep(0.0, FEATHER * size, inner_distance(hull))
    return np.stack([np.round(soft * 255), face * 255], -1).astype(np.uint8)


def feature_mask(layout: UVLayout, size: int, groups: tuple[list[int], ...], grow: float = 0.0) -> np.ndarray:
    """(size, size) bool: the hulls of these landmark groups, grown by ``grow`` x size."""
    k = uv_landmarks(layout, size)
    m = np.zeros((size, size), np.uint8)
    for group in groups:
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(k[group]).astype(np.int32)), 1)
    if grow > 0:
        g = int(round(grow * size)) * 2 + 1
        m = cv2.dilate(m, np.ones((g, g), np.uint8))
    return m > 0


def not_skin(layout: UVLayout, size: int = 256) -> np.ndarray:
    """(size, size) bool: where a face is not plain skin, for sampling its light: outside
    the effect region's solid part, or on the brows, eyes, nostrils and lips."""
    inner = effect_region(layout, size)[..., 0] > 200
    groups = (BROW_L, BROW_R, EYE_L, EYE_R, NOSE_BASE, LIPS)
    return ~inner | feature_mask(layout, size, groups, 0.025)


def canvas(size: int) -> np.ndarray:
    """A transparent (size, size) BGRA mask canvas at the supersampled resolution."""
    return np.zeros((size * SS, size * SS, 4), np.uint8)


def stroke_width(size: int, px: float) -> int:
    """A stroke ``px`` pixels wide on a 256 texture, at ``size``, on the supersampled canvas:
    masks keep their look at any texture size."""
    return max(1, int(round(px * size / 256 * SS)))


def canvas_points(k: np.ndarray, idx: list[int] | None = None) -> np.ndarray:
    """Landmarks as int32 points at supersampled resolution (cv2 drawing takes ints)."""
    p = k if idx is None else k[idx]
    return np.round(p * SS).astype(np.int32)


def finish_canvas(canvas: np.ndarray, size: int) -> np.ndarray:
    """Down-sample the supersampled canvas, averaging colour by alpha (so soft edges
    keep their colour instead of darkening toward the transparent black around them)."""
    c = canvas.astype(np.float32)
    a = c[..., 3:] / 255.0
    prem = cv2.resize(c[..., :3] * a, (size, size), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)[..., None]
    rgb = prem / np.maximum(alpha, 1e-4)
    return np.concatenate([rgb, alpha * 255], -1).clip(0, 255).round().astype(np.uint8)


def eye_centre(k: np.ndarray, eye: list[int]) -> np.ndarray:
    """The mean of an eye's six landmarks."""
    return k[eye].mean(0)
