"""Face swap: the source photo's face, unwrapped once into UV space, worn by the live
face.

The source is reconstructed once (its position map says where each UV texel sits in
the photo), so the texture is a plain lookup. Texels the photo did not see (facing
away, or hidden behind the nose) take the mirrored texel, and where neither side was
seen the texture is transparent so the live face shows. The live eyes and mouth are
kept (their UV regions from the landmark layout), so blinks and speech stay real.
Each frame the shader moves the texture's CIE Lab mean and spread toward the live
face's, so the swapped skin takes the room's light.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.render.effects.base import Effect, register
from realtime.render.effects.uvdraw import EYE_L, EYE_R, LIPS, TEX, effect_region, face_mask_tex, uv_landmarks
from realtime.types import Reconstruction, UserError
from realtime.uv import UVLayout

LIVE_SAMPLES = 1500  # live skin pixels sampled per face per frame for colour statistics
SOURCE_BLUR = 0.8  # layout pixels
SMOOTHING = 0.3  # weight of the newest frame in the running colour statistics
WHITE = np.array([0.95047, 1.0, 1.08883])
RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)


class SwapError(UserError, ValueError):
    """A source face that cannot be used; one line saying what to do."""


def bgr_to_lab(bgr: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 BGR -> CIE Lab (D65), the same formula as swap.frag, so the
    statistics measured here are what the shader transforms."""
    c = bgr[..., ::-1].astype(np.float64) / 255.0
    lin = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = lin @ RGB_TO_XYZ.T / WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _stats(lab: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    mean = np.average(lab, axis=0, weights=weights)
    std = np.sqrt(np.average((lab - mean) ** 2, axis=0, weights=weights))
    return mean, np.maximum(std, 1.0)


def position_grid(layout: UVLayout, vertices: np.ndarray) -> np.ndarray:
    """(R, R, 3) float32 position map from dense vertices, the non-face pixels filled
    with their nearest face pixel so that interpolating near the edge stays on the face."""
    r = layout.resolution
    grid = np.zeros((r * r, 3), np.float32)
    grid[layout.face_ind] = vertices
    zero_at_face = (~layout.face_mask).astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels(zero_at_face, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    return grid[layout.face_ind[labels.ravel() - 1]].reshape(r, r, 3)


def upsample_grid(grid: np.ndarray, size: int = TEX) -> np.ndarray:
    """(R, R, 3) -> (size, size, 3), texel t of the texture taking layout point
    t * (R-1) / (size-1), matching how the renderer maps UVs."""
    r = grid.shape[0]
    coords = np.arange(size, dtype=np.float32) * (r - 1) / (size - 1)
    mx, my = np.meshgrid(coords, coords)
    return cv2.remap(grid, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def visibility(pos: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(S, S) float in [0, 1]: how well the photo saw each texel. A texel counts when
    its surface faces the camera and nothing nearer covers it (a coarse z-buffer)."""
    smooth = cv2.GaussianBlur(pos, (0, 0), 0.012 * pos.shape[0])  # normals of the shape, not its noise
    du = np.gradient(smooth, axis=1)
    dv = np.gradient(smooth, axis=0)
    n = np.cross(du, dv)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    if n[face, 2].mean() < 0:
        n = -n
    facing = np.clip((n[..., 2] - 0.1) / 0.3, 0.0, 1.0)
    xy, z = pos[face][:, :2], pos[face][:, 2]
    lo = xy.min(0)
    cell = max(float(np.ptp(xy[:, 0])), 1.0) / 96.0  # ~96 cells across the face
    ij = ((xy - lo) / cell).astype(np.int64)
    zbuf = np.full(ij.max(0) + 1, -np.inf)
    np.maximum.at(zbuf, (ij[:, 0], ij[:, 1]), z)
    tol = 4.0 * cell
    unoccluded = np.zeros(face.shape, np.float64)
    unoccluded[face] = np.clip(1.0 - (zbuf[ij[:, 0], ij[:, 1]] - z - tol) / tol, 0.0, 1.0)
    return facing * unoccluded * face


def live_features(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """(S, S) float in [0, 1]: the eyes and mouth, whose live pixels the swap keeps,
    with soft edges."""
    k = uv_landmarks(layout, size)
    m = np.zeros((size, size), np.uint8)
    for group in (EYE_L, EYE_R, LIPS):
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(k[group]).astype(np.int32)), 255)
    grow = int(round(0.02 * size)) * 2 + 1
    m = cv2.dilate(m, np.ones((grow, grow), np.uint8))
    return cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), 0.012 * size)


@register
class FaceSwap(Effect):
    """The ``swap`` effect. Give it the source photo and that photo's reconstruction
    (``set_source``; again at any time to switch faces). ``transfer`` is how far the
    texture's colours move to the live face's (1: fully; lower keeps more of the
    source's own skin tone)."""

    name = "swap"
    shader = "swap.frag"
    listed = False  # made from a source photo (--source-face, the panel), not by name

    def __init__(
        self,
        layout: UVLayout,
        photo: np.ndarray | None = None,
        source: Reconstruction | None = None,
        transfer: float = 0.8,
    ):
        super().__init__()
        self.layout = layout
        self.transfer = transfer
        self.face = face_mask_tex(layout, TEX)
        self.keep = live_features(layout, TEX)
        region = effect_region(layout, TEX)[..., 0] / 255.0
        self.skin = (region > 0.5) & (self.keep < 0.05)
        # Dense vertices inside the skin region, for sampling the live face's colours.
        uv = np.round(layout.vertex_uv * (TEX - 1)).astype(np.int64)
        rows = np.flatnonzero(self.skin[uv[:, 1], uv[:, 0]])
        self.skin_rows = rows[np.linspace(0, len(rows) - 1, min(LIVE_SAMPLES, len(rows))).astype(np.int64)]
        self.src_mean = np.array([60.0, 10.0, 15.0])
        self.src_std = np.ones(3)
        self.live: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if photo is not None and source is not None:
            self.set_source(photo, source)

    def set_source(self, photo: np.ndarray, source: Reconstruction) -> None:
        """Unwrap ``source`` (the photo's reconstruction, in photo pixels) into the
        swap texture: (S, S, 4) BGRA, alpha = seen by the photo, minus eyes and mouth."""
        if photo is None or photo.ndim != 3 or photo.shape[2] != 3:
            raise SwapError("source face photo must be a colour image (H, W, 3 BGR)")
        if source.vertices.shape != (len(self.layout.face_ind), 3):
            raise SwapError(
                f"source reconstruction has {len(source.vertices)} vertices but the layout "
                f"has {len(self.layout.face_ind)}: reconstruct it with the same weights"
            )
        # A light blur in UV space: real faces are smooth at this scale, and it keeps a
        # rough reconstruction's jitter from scrambling the texture.
        grid = cv2.GaussianBlur(position_grid(self.layout, source.vertices), (0, 0), SOURCE_BLUR)
        pos = upsample_grid(grid, TEX)
        colour = cv2.remap(
            photo, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        ).astype(np.float64)
        vis = visibility(pos, self.face)
        mirror_c, mirror_v = colour[:, ::-1], vis[:, ::-1]
        alpha = vis + (1 - vis) * mirror_v
        fill = vis[..., None] * colour + ((1 - vis) * mirror_v)[..., None] * mirror_c
        colour = fill / np.maximum(alpha, 1e-6)[..., None]
        if (alpha[self.skin] > 0.5).mean() < 0.2:
            raise SwapError("the source face is barely visible in its photo: use a photo facing the camera")
        bgr = colour.clip(0, 255).round().astype(np.uint8)
        lab = bgr_to_lab(bgr[self.skin])
        self.src_mean, self.src_std = _stats(lab, alpha[self.skin] + 1e-6)
        a = alpha * (1.0 - self.keep) * self.face
        self.texture = np.concatenate([bgr, np.round(a * 255).astype(np.uint8)[..., None]], -1)
        self.live.clear()
        self.version += 1

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        """Colour statistics of this live face (nearest-pixel samples of its skin),
        smoothed per track so the colour does not flicker."""
        h, w = image.shape[:2]
        xy = rec.vertices[self.skin_rows, :2]
        x = np.clip(np.round(xy[:, 0]).astype(np.int64), 0, w - 1)
        y = np.clip(np.round(xy[:, 1]).astype(np.int64), 0, h - 1)
        mean, std = _stats(bgr_to_lab(image[y, x]))
        old = self.live.get(rec.track_id)
        if old is not None:
            mean = old[0] + SMOOTHING * (mean - old[0])
            std = old[1] + SMOOTHING * (std - old[1])
        if len(self.live) > 64:
            self.live.clear()
        self.live[rec.track_id] = (mean, std)
        return {
            "u_src_mean": tuple(self.src_mean),
            "u_src_std": tuple(self.src_std),
            "u_dst_mean": tuple(mean),
            "u_dst_std": tuple(std),
            "u_transfer": float(self.transfer),
        }
