"""The swap source's features moved to where the UV layout has them.

Why: the source texture is the photo sampled through the network's mesh of it, and
that mesh is a few texels off at each feature (at 256 px UV the shipped network's
eyes, nose and lips land 2-7 px from where a reader that follows the image puts
them; more where the photo's mouth is open or its eyes narrowed, which the mesh
barely follows). Drawn on a live face whose mesh puts the layout's features on the
live ones, such a texture shows a nostril shadow on the nose tip, a smiling eye
stretched over the live eye, teeth on the lips.

So, once per photo, ``FeatureAligner.locate`` finds the eyes, brows, nose and
nostrils, and lips in the texture itself (a supervised-descent cascade, Xiong & De la
Torre 2013: five stages of linear regressors from image patches around the current
guess to its correction, per feature, run on the texture and its mirror image and
averaged), and ``flow`` turns where they are against where the layout has them into a
smooth warp of UV space (a thin-plate spline that is zero on the face's outline), so
that the unwrapping samples the photo where its features really are. The regressors
and the layout's feature places were learned offline (``python -m realtime.eval
uv-align --build``: AFLW training crops unwrapped through their 3DMM fits, MediaPipe
Face Mesh's points in them as the truth, the places its medians over closed mouths);
at run time nothing but these few hundred kilobytes is needed.
"""

from __future__ import annotations

import io
from functools import cache

import cv2
import numpy as np

from realtime.core.landmarks import BROW_L, BROW_R, JAW
from realtime.core.paths import PACKAGE
from realtime.core.uv import MIRROR_68, UVLayout
from realtime.render.effects.uvdraw import uv_landmarks

SIDE = 256  # the aligner works on the texture at this size (its model's places are in these texels)
#: The points it finds, in the 68 scheme, then the two nostril openings (68, 69).
GROUPS: dict[str, list[int]] = {
    "eye_l": list(range(36, 42)),
    "eye_r": list(range(42, 48)),
    "brow_l": list(range(17, 22)),
    "brow_r": list(range(22, 27)),
    "nose": [*range(27, 36), 68, 69],
    "lips": list(range(48, 68)),
}
MIRROR_70 = np.r_[MIRROR_68, 69, 68]
#: Each stage: patch side (samples), spacing (texels) and the blur of the image it samples.
STAGES = ((7, 6.0, 3.0), (7, 4.0, 2.0), (7, 3.0, 1.5), (7, 2.0, 1.0), (7, 1.5, 0.7))
BLUR = 1.0  # texels: the training crops' textures are this soft; a sharp photo's is blurred to match
MAX_MOVE = 12.0  # texels at SIDE: a feature found further than this from its place is not moved further
#: The groups the warp moves. The lips stay where the mesh puts them: since stage 9 the
#: network's lips are trained to the same reader's lip contours (issue 34), and on the
#: shared portraits they land 2.5-6.5 texels from their places, where the cascade
#: (learned on the fits' closed-mouth textures) finds them 3.2-5.6 texels off.
MOVED = ("eye_l", "eye_r", "brow_l", "brow_r", "nose")
MODEL = PACKAGE / "render" / "data" / "swap_align.npz"


def detail(grey: np.ndarray, blur: float = 0.0) -> np.ndarray:
    """(S, S) float32 in (-1, 1): the texture's luminance detail, its light taken out
    (log, minus a wide blur, over the local contrast) so that one photo's light and
    skin tone look like another's."""
    g = np.log(grey.astype(np.float32) + 8.0)
    if blur > 0:
        g = cv2.GaussianBlur(g, (0, 0), blur)
    d = g - cv2.GaussianBlur(g, (0, 0), 8)
    d = d / (np.sqrt(cv2.GaussianBlur(d * d, (0, 0), 8)) + 0.01)
    return np.tanh(d / 2).astype(np.float32)


def stage_images(d: np.ndarray) -> dict[float, np.ndarray]:
    """The detail image at each stage's blur."""
    return {b: cv2.GaussianBlur(d, (0, 0), b) for b in sorted({s[2] for s in STAGES})}


def describe(images: dict[float, np.ndarray], points: np.ndarray, stage: tuple) -> dict[str, np.ndarray]:
    """Per group: its points' patches (each zero-mean, unit-norm) and a 1, the stage's
    regressor input."""
    n, spacing, blur = stage
    a = (np.arange(n) - (n - 1) / 2) * spacing
    grid = np.stack(np.meshgrid(a, a), -1).reshape(-1, 2).astype(np.float32)
    xy = points[:, None, :].astype(np.float32) + grid[None]
    v = cv2.remap(images[blur], xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    v = v - v.mean(1, keepdims=True)
    v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-3)
    return {g: np.concatenate([v[ix].ravel(), [1.0]]).astype(np.float32) for g, ix in GROUPS.items()}


def mirror_points(points: np.ndarray) -> np.ndarray:
    """(70, 2) points of a texture -> the same features in its mirror image (the
    layout is left-right symmetric: u -> SIDE - 1 - u, left and right swapped)."""
    out = points[MIRROR_70].copy()
    out[:, 0] = SIDE - 1 - out[:, 0]
    return out


class FeatureAligner:
    """The learned cascade (``stages``: per stage, per group, a (D + 1, 2K) matrix) and
    the layout's feature ``places`` (70, 2) texels at SIDE. ``load()`` the shipped one."""

    def __init__(self, places: np.ndarray, stages: list[dict[str, np.ndarray]]):
        self.places = np.asarray(places, np.float32)
        self.stages = stages

    @staticmethod
    @cache
    def load() -> FeatureAligner:
        """The shipped model (realtime/render/data/swap_align.npz), read once."""
        with np.load(io.BytesIO(MODEL.read_bytes())) as f:
            stages = [{g: f[f"s{k}_{g}"].astype(np.float32) for g in GROUPS} for k in range(len(STAGES))]
            return FeatureAligner(f["places"], stages)

    def save(self, path) -> None:
        arrays = {f"s{k}_{g}": r.astype(np.float16) for k, s in enumerate(self.stages) for g, r in s.items()}
        np.savez_compressed(path, places=self.places, **arrays)

    def run(self, images: dict[float, np.ndarray], start: np.ndarray) -> np.ndarray:
        """The cascade from ``start`` (70, 2) on one texture's stage images."""
        x = start.astype(np.float32).copy()
        for regressors, stage in zip(self.stages, STAGES, strict=True):
            f = describe(images, x, stage)
            for g, ix in GROUPS.items():
                x[ix] += (f[g] @ regressors[g]).reshape(len(ix), 2)
        return x

    def locate(self, grey: np.ndarray) -> np.ndarray:
        """(70, 2) texels: where the features are in a (SIDE, SIDE) grey texture of a
        face, found on it and on its mirror image, averaged."""
        d = detail(grey, BLUR)
        a = self.run(stage_images(d), self.places)
        b = mirror_points(self.run(stage_images(np.ascontiguousarray(d[:, ::-1])), self.places))
        return (a + b) / 2

    def flow(self, found: np.ndarray, anchors: np.ndarray, size: int) -> np.ndarray:
        """(size, size, 2) float32: for each texel of a ``size`` texture, how far (in its
        texels) from itself to sample the texture so that the features ``found`` move
        to their places (the MOVED groups; the rest are held where they are); zero at
        ``anchors`` (the face's outline, K x 2 texels at SIDE) and beyond them. A
        thin-plate spline through the moves, each at most MAX_MOVE."""
        move = np.zeros_like(self.places)
        for g in MOVED:
            move[GROUPS[g]] = found[GROUPS[g]] - self.places[GROUPS[g]]
        length = np.linalg.norm(move, axis=1, keepdims=True)
        move = move * np.minimum(1.0, MAX_MOVE / np.maximum(length, 1e-6))
        ctrl = np.concatenate([self.places, anchors]).astype(np.float64)
        value = np.concatenate([move, np.zeros((len(anchors), 2))])
        k = len(ctrl)
        kernel = _tps(np.linalg.norm(ctrl[:, None] - ctrl[None], axis=-1))
        poly = np.concatenate([np.ones((k, 1)), ctrl], 1)
        a = np.zeros((k + 3, k + 3))
        a[:k, :k] = kernel + 1e-3 * np.eye(k)
        a[:k, k:], a[k:, :k] = poly, poly.T
        coef = np.linalg.solve(a, np.concatenate([value, np.zeros((3, 2))]))
        small = 64  # the spline is smooth: evaluated on a coarse grid, then resized
        t = np.linspace(0, SIDE - 1, small)
        grid = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
        field = _tps(np.linalg.norm(grid[:, None] - ctrl[None], axis=-1)) @ coef[:k]
        field += np.concatenate([np.ones((len(grid), 1)), grid], 1) @ coef[k:]
        field = field.reshape(small, small, 2).astype(np.float32)
        outside = cv2.resize(_outside(anchors, small), (small, small)) > 0
        field[outside] = 0.0
        field = cv2.GaussianBlur(field, (0, 0), 0.7)
        return cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC) * (size - 1) / (SIDE - 1)


def outline(layout: UVLayout, lift: float = 0.12) -> np.ndarray:
    """(K, 2) texels at SIDE where the warp is zero: the jaw line and a line ``lift`` (x
    SIDE) above the brows, so it moves only the inner face."""
    k = uv_landmarks(layout, SIDE)
    brows = k[BROW_L + BROW_R] - [0.0, lift * SIDE]
    return np.concatenate([k[JAW], brows[::-1]]).astype(np.float32)


def _tps(r: np.ndarray) -> np.ndarray:
    """The thin-plate kernel r^2 log r (0 at r = 0)."""
    return np.where(r > 0, r * r * np.log(np.maximum(r, 1e-12)), 0.0)


def _outside(anchors: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8: 1 outside the anchors' hull (at ``size`` texels)."""
    m = np.ones((size, size), np.uint8)
    hull = cv2.convexHull(np.round(anchors * (size - 1) / (SIDE - 1)).astype(np.int32))
    cv2.fillConvexPoly(m, hull, 0)
    return m


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (S, S, C) sampled at each texel plus ``flow`` (S, S, 2)."""
    s = flow.shape[0]
    t = np.arange(s, dtype=np.float32)
    mx, my = np.meshgrid(t, t)
    return cv2.remap(
        image, mx + flow[..., 0], my + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
