"""The face swap's source, prepared once per photo: fitted, unwrapped, de-lit and
cleaned into one whole albedo texture in UV space.

Why so much work once: the swap draws the source's albedo opaque over the whole inner
face, so every texel shows. A texel the photo did not see well (the far side, a cheek
seen edge-on, hair or a background past the mesh's edge, a deep shadow) must hold a
plausible skin instead of a hole, and noise the photo had (a small face, JPEG chroma
blocks) must not turn into blotches. The photo is prepared once, so it can afford
many times a frame's compute:

* its face is reconstructed by the face processor over several crops, each also
  mirrored, and averaged (realtime.live.faces.FaceProcessor.reconstruct_photo with
  PHOTO_CROPS); this module takes that reconstruction.
* ``unwrap``: each texel's photo colour, divided by the photo's own light on the mesh
  (an albedo); its confidence is how squarely the photo saw it, that nothing nearer
  covered it, that it was not in deep shadow and that it looks like this face's skin
  where the face's edge meets hair or background. Low-confidence texels take the
  mirrored texel, then a membrane fill from the surrounding skin (push-pull: weighted
  averages down a pyramid, filled back up), so nothing is left empty.
* Chroma is smoothed more than luminance: the colour of skin varies slowly, while
  luminance carries pores, brows and lids, which carry who a face is.

All images here are (S, S, ...) float32 textures in the layout's UV space.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.core.types import Reconstruction
from realtime.core.uv import UVLayout
from realtime.render.effects.swap_align import SIDE, FeatureAligner, outline, warp
from realtime.render.effects.swap_clean import DETAIL_SCALE, denoise_face, ring_detail, smooth_colour
from realtime.render.effects.uvdraw import smoothstep
from realtime.render.lighting import LUMA, LightEstimator, exposure, frontal_skin, shade, to_linear

MIN_SHADE = 0.04  # de-lighting divides by at least this (deep shadow carries no albedo)
SMALL_FACE = 150  # photo pixels across the face below which the albedo is smoothed, with a warning
TURNED_DEG = 30.0  # a source turned further than this gets a warning
CUT_OFF = 0.03  # fraction of the skin outside the photo above which the face is cut off
FACING = (0.2, 0.5)  # photo normal z over which a texel's own colour fades in (grazing: filled)
SHADOW = (0.12, 0.35)  # shading / median skin shading over which de-lit colour is trusted
LOW = 256  # resolution of the confidence, outlier and fill computations (smooth at this scale)


@dataclass
class SourceTexture:
    """A prepared source: ``albedo`` (S, S, 3) float32 linear BGR, whole over the face;
    ``seen`` (S, S) float32 how much of each texel is the photo's own colour (the rest
    is mirrored or filled); ``warnings``
    one line each (cut off, turned, small); ``skin`` (3,) the mean skin colour the
    photo shows (linear BGR) and ``exposure`` the photo's mean luminance, for
    ``--swap-tone source``; ``spread`` how colourful its skin is
    (realtime.render.lighting.chroma_spread), which a live face's is compared with;
    ``found`` (70, 2) where its features were in the texture before they were moved to
    the layout's places and ``flow`` (SIDE, SIDE, 2) the warp that moved them
    (realtime.render.effects.swap_align, texels at SIDE); ``vertices`` (F, 3) the
    source's mesh warped alike (its features where the photo has them); ``detail`` how
    textured its skin is in the photo (realtime.render.effects.swap_clean.DetailMatch)."""

    albedo: np.ndarray
    seen: np.ndarray
    warnings: list[str] = field(default_factory=list)
    skin: np.ndarray = field(default_factory=lambda: np.ones(3))
    exposure: float = 1.0
    spread: float = 0.0
    found: np.ndarray | None = None
    flow: np.ndarray | None = None
    vertices: np.ndarray | None = None
    detail: float = 0.0


# -- texture helpers --------------------------------------------------------------------
def position_grid(layout: UVLayout, vertices: np.ndarray) -> np.ndarray:
    """(R, R, 3) float32 position map from dense vertices, the non-face pixels filled
    with their nearest face pixel so that interpolating near the edge stays on the face."""
    r = layout.resolution
    grid = np.zeros((r * r, 3), np.float32)
    grid[layout.face_ind] = vertices
    zero_at_face = (~layout.face_mask).astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels(zero_at_face, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    return grid[layout.face_ind[labels.ravel() - 1]].reshape(r, r, 3)


def upsample_grid(grid: np.ndarray, size: int) -> np.ndarray:
    """(R, R, 3) -> (size, size, 3), texel t of the texture taking layout point
    t * (R-1) / (size-1), matching how the renderer maps UVs."""
    r = grid.shape[0]
    coords = np.arange(size, dtype=np.float32) * (r - 1) / (size - 1)
    mx, my = np.meshgrid(coords, coords)
    return cv2.remap(grid, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_mesh(layout: UVLayout, vertices: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(F, 3) the mesh with the same warp as its texture: each vertex moved to the mesh's
    point at its UV plus ``flow`` (SIDE, SIDE, 2), so that where the layout has a feature
    the mesh has the photo's (its shape, not only its texture, is the source's)."""
    r = layout.resolution
    at = layout.vertex_uv * (SIDE - 1)
    move = cv2.remap(flow, at[:, :1].copy(), at[:, 1:].copy(), cv2.INTER_LINEAR)[:, 0]
    to = ((at + move) * (r - 1) / (SIDE - 1)).astype(np.float32)
    grid = position_grid(layout, vertices)
    out = cv2.remap(
        grid, to[:, :1].copy(), to[:, 1:].copy(), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out[:, 0].astype(np.float32)


def facing_and_unoccluded(pos: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, S) normal z (how squarely the photo saw each texel, 1 = head-on) and (S, S)
    in [0, 1] whether nothing nearer covered it (a coarse z-buffer over ~96 cells)."""
    smooth = cv2.GaussianBlur(pos, (0, 0), 0.012 * pos.shape[0])  # normals of the shape, not its noise
    n = np.cross(np.gradient(smooth, axis=1), np.gradient(smooth, axis=0))
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    if n[face, 2].mean() < 0:
        n = -n
    xy, z = pos[face][:, :2], pos[face][:, 2]
    lo = xy.min(0)
    cell = max(float(np.ptp(xy[:, 0])), 1.0) / 96.0
    ij = ((xy - lo) / cell).astype(np.int64)
    zbuf = np.full(ij.max(0) + 1, -np.inf)
    np.maximum.at(zbuf, (ij[:, 0], ij[:, 1]), z)
    tol = 4.0 * cell
    unoccluded = np.zeros(face.shape, np.float32)
    unoccluded[face] = np.clip(1.0 - (zbuf[ij[:, 0], ij[:, 1]] - z - tol) / tol, 0.0, 1.0)
    return n[..., 2].astype(np.float32), unoccluded


def push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``values`` (H, W, C) where ``weight`` (H, W) in [0, 1] says they hold, filled
    everywhere else smoothly from what surrounds it: weighted means down a pyramid to
    one texel, then each level blended back up, w * own + (1 - w) * coarser (a
    membrane-like fill, as a Poisson fill with zero gradient, in O(texels))."""
    h, w = weight.shape
    if h <= 2 or w <= 2 or weight.sum() <= 0:
        total = max(float(weight.sum()), 1e-9)
        mean = (values * weight[..., None]).reshape(-1, values.shape[2]).sum(0) / total
        return np.broadcast_to(mean, values.shape).astype(np.float32)
    half = ((w + 1) // 2, (h + 1) // 2)
    sw = cv2.resize(weight, half, interpolation=cv2.INTER_AREA)
    sv = cv2.resize(values * weight[..., None], half, interpolation=cv2.INTER_AREA)
    sv = sv.reshape(half[1], half[0], -1) / np.maximum(sw, 1e-9)[..., None]
    coarse = push_pull(sv, np.minimum(1.0, 4.0 * sw))  # a texel a quarter seen counts at the coarser level
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    return (weight[..., None] * values + (1 - weight[..., None]) * up).astype(np.float32)


# -- unwrapping -------------------------------------------------------------------------
@dataclass
class Masks:
    """The layout's parts the unwrapping needs, at texture size S: ``face`` (the
    layout's face pixels), ``skin`` (plain skin: the swap region minus brows, eyes,
    nostrils and lips), ``edge`` (where the face meets hair, ears and background: the
    forehead above the brows and the outer cheeks, in [0, 1]), ``mouth`` (the lips and
    a little around them, where a source's open mouth can leave teeth on the lips),
    ``glasses`` (around the eyes and over the nose's bridge: there the visibility
    network's "covered" is not followed, so a source's glasses are kept; None: they
    are filled in like any occluder), ``lips`` (in [0, 1], the lips alone: their colour
    is estimated apart from the skin's; None: ``mouth``)."""

    face: np.ndarray
    skin: np.ndarray
    edge: np.ndarray
    mouth: np.ndarray
    glasses: np.ndarray | None = None
    lips: np.ndarray | None = None


def unwrap(
    layout: UVLayout, photo: np.ndarray, rec: Reconstruction, light: LightEstimator, masks: Masks
) -> SourceTexture:
    """The source's whole albedo texture (see the module docstring)."""
    size = masks.face.shape[0]
    warnings = check_photo(photo, rec, masks, layout)
    spread = light.photo_spread(photo, rec.vertices)  # before any blur: as a live frame is seen
    face_px = float(np.ptp(rec.landmarks[:, 0]))
    detail = ring_detail(photo, rec.vertices[light.rows, :2].astype(np.float64), face_px / DETAIL_SCALE)
    photo = denoise_face(photo, rec.landmarks)  # before dividing by the light: its noise is not the skin's
    grid = cv2.GaussianBlur(
        position_grid(layout, rec.vertices), (0, 0), 0.8
    )  # the mesh's jitter, not its shape
    pos = upsample_grid(grid, size)
    # Photo pixels per texel: a photo sharper than the texture is blurred to it first, so
    # the sampling does not alias; a small face's noise is blurred a little more.
    step = np.linalg.norm(np.diff(pos[::8], axis=1), axis=-1)[masks.face[::8, 1:]]
    rate = float(np.median(step)) if step.size else 1.0
    # The features moved to where the layout has them (realtime.render.effects.swap_align).
    found, flow = align_features(layout, photo, grid, rate * size / SIDE)
    tex_flow = cv2.resize(flow, (size, size), interpolation=cv2.INTER_LINEAR) * (size - 1) / (SIDE - 1)
    pos = warp(pos, tex_flow)
    sigma = 0.5 * np.sqrt(max(rate * rate - 1.0, 0.0))
    if face_px < SMALL_FACE:
        sigma = max(sigma, 0.7)
    if sigma > 0.05:
        photo = cv2.GaussianBlur(photo, (0, 0), sigma)
    colour = cv2.remap(photo, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # The photo's light on its own mesh, per layout vertex, interpolated over the texture
    # (and warped with it: a texel's shading is its photo point's).
    src_light, _ = light.estimate(photo, rec.vertices)
    per_vertex = shade(src_light, light.normals(rec.vertices))
    shading = warp(upsample_grid(position_grid(layout, per_vertex), size), tex_flow)
    albedo = to_linear(colour) / np.maximum(shading, MIN_SHADE)
    # Confidence at LOW x LOW (smooth), then upsampled.
    k = size // LOW
    face_lo = masks.face[::k, ::k]
    nz, unoccluded = facing_and_unoccluded(pos[::k, ::k], face_lo)
    shade_lo = cv2.resize(shading @ LUMA.astype(np.float32), (LOW, LOW), interpolation=cv2.INTER_AREA)
    skin_lo = cv2.resize(masks.skin.astype(np.float32), (LOW, LOW), interpolation=cv2.INTER_AREA) > 0.5
    lit = shade_lo / max(float(np.median(shade_lo[skin_lo])), 1e-6)
    covered = uncovered(rec, pos[::k, ::k])
    if masks.glasses is not None:
        keep = cv2.resize(masks.glasses.astype(np.float32), (LOW, LOW), interpolation=cv2.INTER_AREA)
        covered = np.maximum(covered, keep)
    inside = inside_photo(pos[::k, ::k], photo.shape) * covered
    conf = smoothstep(*FACING, nz) * unoccluded * smoothstep(*SHADOW, lit) * inside * face_lo
    small = cv2.resize(albedo, (LOW, LOW), interpolation=cv2.INTER_AREA)
    edge_lo = cv2.resize(masks.edge.astype(np.float32), (LOW, LOW), interpolation=cv2.INTER_AREA)
    mouth_lo = cv2.resize(masks.mouth.astype(np.float32), (LOW, LOW), interpolation=cv2.INTER_AREA)
    conf = conf * not_this_skin(small, conf, skin_lo, edge_lo, mouth_lo)
    conf_full = cv2.resize(conf, (size, size), interpolation=cv2.INTER_LINEAR)
    # The mirrored side first, where it was seen better; then the fill.
    mirror_conf = conf_full[:, ::-1] * masks.face
    take_mirror = (1 - conf_full) * mirror_conf
    weight = conf_full + take_mirror
    both = conf_full[..., None] * albedo + take_mirror[..., None] * albedo[:, ::-1]
    mixed = both / np.maximum(weight, 1e-6)[..., None]
    # What is left: a fill from the surrounding skin, in log colour (ratios blend as skin does).
    log = np.log(np.maximum(mixed, 1e-3))
    w_lo = cv2.resize(np.minimum(weight, 1.0), (LOW, LOW), interpolation=cv2.INTER_AREA) * face_lo
    fill_lo = push_pull(cv2.resize(log, (LOW, LOW), interpolation=cv2.INTER_AREA), w_lo**2)
    fill = cv2.resize(fill_lo, (size, size), interpolation=cv2.INTER_LINEAR)
    wt = np.minimum(weight, 1.0)[..., None]
    log = wt * log + (1 - wt) * fill
    # Colour from a smooth estimate of the skin's (and the lips'), highlights and deep
    # shadows left out of it; luminance keeps the detail (realtime.render.effects.swap_clean).
    trust = wt[..., 0] * cv2.resize(plain_skin(log, masks.face), (size, size), interpolation=cv2.INTER_LINEAR)
    lips = masks.lips if masks.lips is not None else masks.mouth
    log = smooth_colour(log, trust, wt[..., 0], lips, 2 * LOW)
    albedo = np.exp(log).astype(np.float32)
    skin = frontal_skin(src_light)  # as the live side measures its own (--swap-tone source)
    return SourceTexture(
        albedo,
        conf_full.astype(np.float32),
        warnings,
        skin,
        exposure(photo),
        spread,
        found,
        flow,
        warp_mesh(layout, rec.vertices, flow),
        detail,
    )


def align_features(
    layout: UVLayout, photo: np.ndarray, grid: np.ndarray, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Where the source's features are in its texture (70, 2, texels at SIDE) and the
    warp (SIDE, SIDE, 2) that moves them to the layout's places. ``rate``: photo pixels
    per texel at SIDE (the photo is blurred to it first)."""
    aligner = FeatureAligner.load()
    small = upsample_grid(grid, SIDE)
    sigma = 0.5 * np.sqrt(max(rate * rate - 1.0, 0.0))
    soft = cv2.GaussianBlur(photo, (0, 0), sigma) if sigma > 0.05 else photo
    colour = cv2.remap(soft, small[..., 0], small[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    found = aligner.locate(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    return found, aligner.flow(found, outline(layout), SIDE)


def inside_photo(pos: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(S, S) 1 where a texel's photo position is inside the photo, fading to 0 at its edge."""
    h, w = shape[:2]
    x, y = pos[..., 0], pos[..., 1]
    margin = np.minimum(np.minimum(x, w - 1 - x), np.minimum(y, h - 1 - y))
    return np.clip(margin / 2.0, 0.0, 1.0).astype(np.float32)


def uncovered(rec: Reconstruction, pos: np.ndarray) -> np.ndarray:
    """(S, S) in [0, 1]: the visibility network's say (``rec.visibility``, if any) that
    nothing (a hand, a microphone, hair, glasses) covers each texel's photo position."""
    if rec.visibility is None:
        return np.ones(pos.shape[:2], np.float32)
    to_map = np.linalg.inv(np.vstack([rec.visibility.to_frame, [0.0, 0.0, 1.0]]))
    xy = pos[..., :2] @ to_map[:2, :2].T.astype(np.float32) + to_map[:2, 2].astype(np.float32)
    vis = cv2.remap(
        rec.visibility.mask.astype(np.float32), xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderValue=1.0
    )
    return smoothstep(0.3, 0.7, vis)


def not_this_skin(
    albedo: np.ndarray, conf: np.ndarray, skin: np.ndarray, edge: np.ndarray, mouth: np.ndarray
) -> np.ndarray:
    """(S, S) in [0, 1]: 0 where a texel is not this face's skin, lips or features.
    Near the face's edge (``edge``: the forehead band, the outer cheeks): hair, a hat or
    background, much darker than the median skin, another hue, or much brighter. On the
    lips (``mouth``): teeth (as bright as skin and far less red: a source's open mouth
    the mesh closed) and the dark inside of a mouth. The inner face is kept whatever
    its colour (freckles, stubble, a beard, a shadow are the person)."""
    log = np.log(np.maximum(albedo, 1e-3))
    ref = (conf > 0.5) & skin
    if ref.sum() < 50:
        return np.ones(conf.shape, np.float32)
    log = log - np.median(log[ref], axis=0)
    lum = log @ LUMA.astype(np.float32)
    chroma = np.abs(log - lum[..., None]).max(-1)
    dev = np.maximum(-lum - 0.4, 0.0) + np.maximum(lum - 0.6, 0.0) + 1.5 * np.maximum(chroma - 0.2, 0.0)
    dev = cv2.GaussianBlur(dev, (0, 0), 1.5)
    redness = log[..., 2] - log[..., 1]  # BGR: red over green, against the skin's
    teeth = smoothstep(-0.3, -0.1, lum) * smoothstep(0.1, 0.3, -redness)
    hollow = smoothstep(1.0, 1.4, -lum)
    inside_mouth = cv2.GaussianBlur(np.maximum(teeth, hollow).astype(np.float32), (0, 0), 1.0)
    keep = (1.0 - edge * smoothstep(0.05, 0.3, dev)) * (1.0 - mouth * smoothstep(0.2, 0.5, inside_mouth))
    return keep.astype(np.float32)


def plain_skin(log: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(LOW, LOW) in [0, 1]: 1 where a texel's luminance is near its surroundings', 0 on
    a highlight (brighter: the light's colour) or a deep shadow (a nostril, a lid
    crease: darker, its colour the light's too); the skin's colour estimate leaves them out."""
    small = cv2.resize(log, (LOW, LOW), interpolation=cv2.INTER_AREA) @ LUMA.astype(np.float32)
    on = cv2.resize(face.astype(np.float32), (LOW, LOW), interpolation=cv2.INTER_AREA)
    base = cv2.GaussianBlur(small * on, (0, 0), 6) / np.maximum(cv2.GaussianBlur(on, (0, 0), 6), 1e-3)
    dev = small - base
    return ((1 - smoothstep(0.15, 0.35, dev)) * (1 - smoothstep(0.25, 0.6, -dev))).astype(np.float32)


def check_photo(photo: np.ndarray, rec: Reconstruction, masks: Masks, layout: UVLayout) -> list[str]:
    """One line per problem a user can fix with another photo."""
    out = []
    h, w = photo.shape[:2]
    lm = rec.landmarks[:, :2]
    outside = (lm[:, 0] < 0) | (lm[:, 0] > w - 1) | (lm[:, 1] < 0) | (lm[:, 1] > h - 1)
    v = rec.vertices[:, :2]
    uv = np.round(layout.vertex_uv * (masks.skin.shape[0] - 1)).astype(np.int64)
    on_skin = masks.skin[uv[:, 1], uv[:, 0]]
    cut = ((v[:, 0] < 0) | (v[:, 0] > w - 1) | (v[:, 1] < 0) | (v[:, 1] > h - 1))[on_skin].mean()
    if outside.any() or cut > CUT_OFF:
        out.append(
            "the source face is cut off by the photo's edge: the missing part is filled in; "
            "a photo showing the whole face looks better"
        )
    pitch, yaw = (abs(float(a)) for a in rec.pose.angles[:2])
    if max(pitch, yaw) > TURNED_DEG:
        out.append(
            f"the source face is turned {max(pitch, yaw):.0f} degrees: its far side is filled in; "
            "a photo facing the camera looks better"
        )
    width = float(np.ptp(lm[:, 0]))
    if width < SMALL_FACE:
        out.append(
            f"the source face is small ({width:.0f} px across): its skin is smoothed; "
            f"a larger photo (over {SMALL_FACE} px) would look better"
        )
    return out
