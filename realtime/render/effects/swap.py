"""Face swap: the source photo's face, unwrapped once into UV space, worn by the live
face under the live face's own light.

The source is reconstructed once (its position map says where each UV texel sits in
the photo), so the texture is a plain lookup, sampled from the full-resolution photo
at 1024 x 1024 (mip-mapped) so the skin stays sharp on a 720p or 1080p face. It is
de-lit once: the photo's own light is estimated on its mesh (realtime.render.lighting)
and divided out, leaving an albedo, and bright specular spots on the skin are pressed
down to their surroundings, so the source's highlights and shadows stay behind. Each
frame the shader renders albedo x the live face's shading (its light estimated from
the live pixels and mesh normals), so the swapped face takes the room's light, times
a gradient-domain correction (realtime.render.effects.seam) that carries any step at
the edge smoothly into the face. Texels the photo did not see take the mirrored
texel; where neither side was seen, and on the live eyes and inner mouth, the texture
is transparent so the live face shows, and blinks and speech stay real. The edge is
feathered over the landmark hull (a distance transform in UV) and where the surface
turns away from the camera, so no silhouette is cut hard.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.core.types import Reconstruction, UserError
from realtime.core.uv import UVLayout
from realtime.render.effects.base import Effect, register
from realtime.render.effects.seam import Seam
from realtime.render.effects.uvdraw import (
    BROW_L,
    BROW_R,
    EYE_L,
    EYE_R,
    LIPS,
    NOSE_BASE,
    TEX,
    effect_region,
    face_mask_tex,
    feature_mask,
    not_skin,
)
from realtime.render.lighting import LUMA, LightEstimator, shade, shader_coefficients, to_linear

SOURCE_BLUR = 0.8  # layout pixels
NEUTRAL_RATE = 0.05  # weight of the newest frame in a track's running neutral mesh
ALBEDO_MAX = 2.0  # albedo stored as sqrt(albedo / ALBEDO_MAX) in 8 bits
MIN_SHADE = 0.04  # de-lighting divides by at least this (deep shadow carries no albedo)
SHINE = 1.25  # skin brighter than this x its surroundings is a highlight, pressed down
SHINE_KEEP = 0.3  # how much of a highlight's excess stays
SHINE_SIZE = 12  # shine is smaller than 1/SHINE_SIZE of the texture
SKIN_SPREAD = 0.9  # log-colour distance from the skin's median where a texel starts to fade


class SwapError(UserError, ValueError):
    """A source face that cannot be used; one line saying what to do."""


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


def pose_free(rec: Reconstruction) -> np.ndarray:
    """(F, 3) float64 the mesh in the face's own frame: the head pose's similarity
    (frame = scale * rotation @ canonical + translation) undone."""
    p = rec.pose
    return (rec.vertices.astype(np.float64) - p.translation) @ p.rotation.astype(np.float64) / p.scale


def live_features(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """(S, S) float in [0, 1]: the eyes and lips, whose live pixels the swap keeps
    (blinks, gaze and speech stay real), with soft edges. The eyes are kept tight: the
    lids come from the source, they carry much of who a face is."""
    m = feature_mask(layout, size, (EYE_L, EYE_R), 0.008) | feature_mask(layout, size, (LIPS,), 0.02)
    return cv2.GaussianBlur(m.astype(np.float32), (0, 0), 0.008 * size)


def skin_likeness(albedo: np.ndarray, skin: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(S, S) float in [0, 1]: how much each texel looks like this face's skin. Hair over
    the cheeks, a background seen past a rough mesh's edge or a frame of glasses are far
    from the skin's median colour; there the swap lets the live face show instead of
    pasting them on. Brows, eyes and nostrils (``features``) are exempt."""
    small = cv2.resize(albedo, (256, 256), interpolation=cv2.INTER_AREA)
    on = cv2.resize(skin.astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST) > 0
    log = np.log(np.maximum(small, 1e-3))
    log -= np.median(log[on], axis=0)
    # Darker than skin, or another hue; brighter is a highlight, pressed down elsewhere.
    lum = log @ LUMA
    chroma = np.abs(log - lum[..., None]).max(-1)
    dev = np.maximum(-lum, 0.0) + 1.5 * chroma
    like = np.clip(1.0 - (cv2.GaussianBlur(dev, (0, 0), 2.0) - SKIN_SPREAD) / SKIN_SPREAD, 0.0, 1.0)
    like = cv2.resize(like, albedo.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    return np.maximum(like, features)


def highlights_down(albedo: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Press shine on the skin (specular highlights the photo's light left, which a
    diffuse model cannot divide out) down toward its surroundings: shine is brighter
    than the skin around it (a grey opening, erode then dilate, removes bright features
    smaller than its kernel: the skin without its shine)."""
    size = albedo.shape[0]
    low = 512  # highlights are broad at this scale: found at 512 x 512, applied at full size
    small = cv2.resize(albedo, (low, low), interpolation=cv2.INTER_AREA)
    lum = small @ LUMA.astype(np.float32)
    on_skin = cv2.resize(skin.astype(np.float32), (low, low), interpolation=cv2.INTER_AREA)
    # Brows, eyes and the face's outside would drag the erosion down: they count as
    # median skin.
    filled = np.where(on_skin > 0.5, lum, np.median(lum[on_skin > 0.5])).astype(np.float32)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (low // SHINE_SIZE | 1, low // SHINE_SIZE | 1))
    base = cv2.GaussianBlur(cv2.morphologyEx(filled, cv2.MORPH_OPEN, k), (0, 0), low / 100)
    ratio = lum / np.maximum(base, 1e-4)
    excess = np.maximum(ratio - SHINE, 0.0) * on_skin
    scale = (ratio - (1 - SHINE_KEEP) * excess) / np.maximum(ratio, 1e-6)
    return albedo * cv2.resize(scale, (size, size), interpolation=cv2.INTER_LINEAR)[..., None]


@register
class FaceSwap(Effect):
    """The ``swap`` effect. Give it the source photo and that photo's reconstruction
    (``set_source``; again at any time to switch faces). ``shape`` S moves the live
    mesh toward the source's face shape: the source's pose-free mesh minus the live
    face's running neutral mesh, times S, added in the face's own frame (0: the live
    geometry)."""

    name = "swap"
    shader = "swap.frag"
    vertex_shader = "swap.vert"
    normals = True
    listed = False  # made from a source photo (--source-face, the panel), not by name

    def __init__(
        self,
        layout: UVLayout,
        photo: np.ndarray | None = None,
        source: Reconstruction | None = None,
        shape: float = 0.0,
    ):
        super().__init__(layout)
        self.shape = float(shape)
        self.source_shape: np.ndarray | None = None
        self.neutral: dict[int, np.ndarray] = {}  # per track: the running pose-free mesh
        self.drawn: dict[int, np.ndarray] = {}  # per track: this frame's mesh as drawn
        self.face = face_mask_tex(layout, TEX)
        self.keep = live_features(layout, TEX)
        region = effect_region(layout, TEX)[..., 0] / 255.0
        self.skin = (region > 0.5) & (self.keep < 0.05)
        # Features that are not skin-coloured but belong to the face (not the lips: a
        # source's teeth show there when it smiles, and skin_likeness must fade them).
        self.features = feature_mask(layout, TEX, (BROW_L, BROW_R, EYE_L, EYE_R, NOSE_BASE), 0.02)
        self.light = LightEstimator(layout, not_skin(layout))
        self.seam = Seam(layout, region, self.keep > 0.05, self.light.normals)
        uv = np.round(layout.vertex_uv * (TEX - 1)).astype(np.int64)
        self.seam_px = uv[self.seam.rows]
        self.seam_albedo = np.zeros((len(self.seam.rows), 3))
        self.seam_cover = np.zeros(len(self.seam.rows))
        if photo is not None and source is not None:
            self.set_source(photo, source)

    def set_source(self, photo: np.ndarray, source: Reconstruction) -> None:
        """Unwrap ``source`` (the photo's reconstruction, in photo pixels) into the
        swap texture: (S, S, 4) BGRA albedo, alpha = seen by the photo, minus eyes and
        mouth."""
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
        # Photo pixels per texel: a photo sharper than the texture is blurred to it first,
        # so the sampling does not alias.
        step = np.linalg.norm(np.diff(pos[::8], axis=1), axis=-1)[self.face[::8, 1:]]
        rate = float(np.median(step)) if step.size else 1.0
        if rate > 1.0:
            photo = cv2.GaussianBlur(photo, (0, 0), 0.5 * np.sqrt(rate * rate - 1.0))
        colour = cv2.remap(photo, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Visibility is smooth: a 256 x 256 estimate, upsampled, is as good and 16x cheaper.
        low = TEX // 256
        vis = visibility(pos[::low, ::low], self.face[::low, ::low]).astype(np.float32)
        vis = cv2.resize(vis, (TEX, TEX), interpolation=cv2.INTER_LINEAR) * self.face
        # The photo's light on its own mesh, shaded per layout vertex (as the live face is)
        # and interpolated over the texture.
        light, _ = self.light.estimate(photo, source.vertices)
        per_vertex = shade(light, self.light.normals(source.vertices))
        shading = upsample_grid(position_grid(self.layout, per_vertex), TEX)
        albedo = to_linear(colour) / np.maximum(shading, MIN_SHADE)
        # De-lit, each side of the face can stand in for the other where it was unseen.
        # A texel seen at all keeps its own colour (a foreshortened cheek is still the
        # cheek); only where it was barely seen does the other side stand in.
        own = np.minimum(1.0, 3.0 * vis)
        mirror_a, mirror_v = albedo[:, ::-1], vis[:, ::-1]
        alpha = np.maximum(own, mirror_v)
        fill = own[..., None] * albedo + ((1 - own) * mirror_v)[..., None] * mirror_a
        albedo = fill / np.maximum(own + (1 - own) * mirror_v, 1e-6)[..., None]
        if (alpha[self.skin] > 0.5).mean() < 0.2:
            raise SwapError("the source face is barely visible in its photo: use a photo facing the camera")
        albedo = highlights_down(albedo, self.skin)
        code = np.sqrt(np.clip(albedo / ALBEDO_MAX, 0.0, 1.0)) * 255
        a = alpha * (1.0 - self.keep) * self.face * skin_likeness(albedo, self.skin, self.features)
        self.texture = np.concatenate([code, a[..., None] * 255], -1).round().astype(np.uint8)
        # What the seam correction needs of the texture: its (blurred) albedo and cover
        # at the boundary samples.
        soft = cv2.GaussianBlur(albedo.astype(np.float32), (0, 0), TEX / 200)
        y, x = self.seam_px[:, 1], self.seam_px[:, 0]
        self.seam_albedo = soft[y, x].astype(np.float64)
        self.seam_cover = a[y, x]
        self.source_shape = pose_free(source)
        self.light.tracks.clear()
        self.seam.tracks.clear()
        self.version += 1

    def vertices(self, rec: Reconstruction) -> np.ndarray:
        """The live mesh, moved toward the source's shape by ``shape``."""
        v = rec.vertices
        if self.shape and self.source_shape is not None:
            here = pose_free(rec)
            old = self.neutral.get(rec.track_id)
            if old is None and len(self.neutral) >= 64:
                self.neutral.clear()
            neutral = here if old is None else old + NEUTRAL_RATE * (here - old)
            self.neutral[rec.track_id] = neutral
            offset = (self.source_shape - neutral) @ rec.pose.rotation.T.astype(np.float64)
            v = (v + self.shape * rec.pose.scale * offset).astype(np.float32)
        if len(self.drawn) >= 64:
            self.drawn.clear()
        self.drawn[rec.track_id] = v
        return v

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        """This face's light (estimated from its pixels and mesh, smoothed per track)
        and seam correction."""
        light = self.light.update(image, rec)
        drawn = self.drawn.get(rec.track_id)
        if drawn is not None and drawn is not rec.vertices:  # the seam looks where the swap is drawn
            rec = Reconstruction(rec.track_id, rec.landmarks, drawn, rec.pose)
        return {
            "u_sh": shader_coefficients(light),
            "u_seam": self.seam.update(image, rec, light, self.seam_albedo, self.seam_cover),
            "u_albedo_max": ALBEDO_MAX,
            "u_seam_size": float(self.seam.grid),
        }
