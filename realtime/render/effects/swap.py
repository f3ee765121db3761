"""Face swap: the source photo's face, unwrapped once into UV space, worn whole by the
live face under the live face's own light.

What a person should see is the source person, so inside the face region (the jaw
line, the cheeks and the forehead just above the brows) the swap draws the source's
albedo opaque: brows, lids, nose, lips and skin. The live frame shows through only
where it must: the eyeballs (inside the live lid contour, so gaze and blinks stay
real), the inside of the mouth (inside the live inner-lip contour, so teeth and
tongue move with speech) and whatever covers the face (the occlusion network's
map). Our mesh opens its mouth and lids less than a face does, so on the inner lips
and the lids the live frame decides, pixel by pixel: where it shows the mouth's dark,
teeth, the eye's white or the iris (against the live skin's colour), that shows
through the source's lips and lids (``live_bands``). The source texture is whole
(realtime.render.effects.swap_source: texels its photo saw badly or not at all are
taken from the mirrored side or filled from the surrounding skin), so there is no
hole for the live face to show through; its features sit where the layout has them
(swap_align), and its colour is a smooth estimate over luminance that keeps the
detail (swap_clean).

Each frame the shader renders albedo x the live face's shading (its light estimated
from the live pixels and mesh normals, realtime.render.lighting), so the swapped face
takes the room's light, times a gradient-domain correction (realtime.render.effects
.seam) that carries any step at the edge smoothly into the face. ``tone`` picks whose
skin tone the face has: "live" lets the correction match the live skin everywhere
(it fits the neck and ears) and, where the live skin is less colourful than the
source's (a grey, sepia or washed-out camera), turns the source's colour detail down
to match, so lips, blush and the photo's colour noise do not sit as coloured blotches
on a colourless face; "source" keeps the source's tone inside the face and
blends to the live one only at the edge. The source's fine skin detail is turned down
to what the live camera shows of its own (swap_clean.DetailMatch), and the face fades
into the live skin over a band measured on the face's surface and where it turns
away from the camera. ``shape`` S moves the live mesh toward the source's face shape,
its lids and lips left the live face's (swap_shape), and the frame around the face
is drawn warped with it, so the jaw line and cheeks' outline follow. ``live`` names
parts taken from the live face instead of the source ("lids", "lips", "brows": for
measuring what each carries).
``glasses``: a source's glasses are kept (True) or, like any hand, hair or microphone
the visibility network finds over the source face, filled in (False).
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from realtime.core.landmarks import BROW_L, BROW_R, EYE_L, EYE_R, JAW, LIPS, NOSE_BASE
from realtime.core.types import Reconstruction, UserError
from realtime.core.uv import UVLayout
from realtime.render.effects.base import Effect
from realtime.render.effects.seam import Seam
from realtime.render.effects.swap_clean import DetailMatch
from realtime.render.effects.swap_shape import FaceShape
from realtime.render.effects.swap_source import (
    Masks,
    SourceTexture,
    position_grid,
    unwrap,
)
from realtime.render.effects.uvdraw import (
    TEX,
    face_mask_tex,
    feature_mask,
    inner_distance,
    not_skin,
    smoothstep,
    uv_landmarks,
)
from realtime.render.lighting import (
    LUMA,
    SKIN,
    LightEstimator,
    exposure,
    frontal_skin,
    shader_coefficients,
)
from realtime.render.tracks import TrackMemory

__all__ = ["FaceSwap", "SwapError"]

ALBEDO_MAX = 2.0  # albedo stored as sqrt(albedo / ALBEDO_MAX) in 8 bits
SHINE = 1.25  # skin brighter than this x its surroundings is a highlight, pressed down
SHINE_KEEP = 0.3  # how much of a highlight's excess stays
SHINE_SIZE = 12  # shine is smaller than 1/SHINE_SIZE of the texture
CREASE = 0.85  # skin darker than this x its surroundings is an expression's crease, lifted
CREASE_KEEP = 0.3  # how much of a crease's depth below CREASE stays
CREASE_SIZE = 48  # creases are narrower than 1/CREASE_SIZE of the texture
BROW_LIFT = 0.05  # the region reaches this far (x texture side) above the brow landmarks
EDGE_FEATHER = 0.08  # the region fades in over this share of the face's width, on its surface
LIVE_EDGE = 0.003  # the live eyeballs' and mouth's soft edge (x texture side)
TONES = ("live", "source")
DEFAULT_SHAPE = 1.0  # --swap-shape's default: nearer the source in the ablation, no cost seen
DEFAULT_TONE = "live"  # --swap-tone's default: the source's tone bought no identity, cost self-swap dB
LIVE_PARTS = ("lids", "lips", "brows")
#: Layout texels the mouth's hole grows by (across, up and down), where the live mouth
#: shows. Our mesh opens its mouth about 3/4 as far as the face does, so a hole grown
#: by one texel drew the source's lips over the live opening. Grown by three up and
#: down (not across: the corners stay the source's), the swap's mouth opening on
#: carphone, MediaPipe on input and output, mean |difference| over the eye distance:
#: self-swap 0.050 -> 0.039, obama 0.059 -> 0.051 (session 16). Four gave 0.035 /
#: 0.045 but left little of the source's lips; a softer edge did not help. The eyes
#: grown so (1.5 texels) read nearer the live lids (obama 0.057 -> 0.041) but showed the
#: live lids' skin and lashes around them, a patchwork: EYE_BAND shows only the eye.
MOUTH_GROW = (1.0, 3.0)
#: Layout texels from the mouth's hole into the lips where the live frame decides: a
#: live pixel there that is not lip but the inside of a mouth (much darker than the
#: live skin, or teeth: as bright and far less red) shows through the source's lips.
#: Five texels reach over the lips and just past them: the mesh's mouth can open half as
#: far as the live one. The mouth's |difference| (MediaPipe on input and output, kpa
#: webcam self-swap): 0.033 with no band, 0.028 with 3 texels, 0.023 with 5 (carphone,
#: obama: 0.048, 0.043, 0.040). The dark must be under 0.45 of the skin's luminance
#: (0.55 cost 0.002 less on carphone) so that a moustache next to the lips stays the
#: source's.
MOUTH_BAND = 5.0
#: Layout texels around the lid contour where the live frame decides likewise: a live
#: pixel there that is eye (the white: as bright as the skin, far less red; the iris or
#: the lashes: much darker) shows through the source's lids. The mesh opens its lids
#: less than a wide-eyed face does (carphone: at most 0.12 of the eye distance where
#: MediaPipe reads 0.18), and the source's lids would narrow the live eyes.
EYE_BAND = 1.5
MAX_TONE = 0.8  # |log gain| of the source's tone against the live one, at most
#: With tone "live", the source's colour detail is scaled by the live skin's chroma
#: spread over the source's, divided by this (at most 1): a live face clearly less
#: colourful than the source's gets a face as colourless as its own. 100 AFLW pairs:
#: cross-swap mottle 1.21 -> 1.04, distance to the source 0.541 -> 0.543 (docs/swap_quality.json).
CHROMA_MATCH = 0.75


class SwapError(UserError, ValueError):
    """A source face that cannot be used; one line saying what to do."""


def closed_curve(points: np.ndarray, per_segment: int = 8) -> np.ndarray:
    """(N, 2) points of a closed contour -> a smooth closed polyline through them
    (Catmull-Rom): a lid or lip line is a curve, not the landmarks' polygon."""
    p = np.asarray(points, np.float64)
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(len(p)):
        p0, p1, p2, p3 = p[i - 1], p[i], p[(i + 1) % len(p)], p[(i + 2) % len(p)]
        out.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    return np.concatenate(out)


def swap_region(layout: UVLayout, size: int = TEX) -> tuple[np.ndarray, np.ndarray]:
    """(S, S) float in [0, 1], the part of the face the swap covers: inside the jaw line
    and a line BROW_LIFT above the brows (so the source's brows are drawn whole), faded
    in over EDGE_FEATHER of the face's width from its edge, measured on the face's
    surface (the mean face, in 3D), not in UV: the layout squeezes the cheeks toward the
    ears, where a fade as wide in UV is a step on a face turned to show them; and (S,
    S) bool, that outline filled."""
    k = uv_landmarks(layout, size)
    brows = k[BROW_L + BROW_R][::-1].copy()
    brows[:, 1] -= BROW_LIFT * size
    outline = np.concatenate([k[JAW], brows])
    inside = np.zeros((size, size), np.uint8)
    cv2.fillPoly(inside, [np.round(closed_curve(outline, 4)).astype(np.int32)], 1)
    uv = np.round(layout.vertex_uv * (size - 1)).astype(np.int64)
    within = inside[uv[:, 1], uv[:, 0]] > 0
    canon = layout.canonical.astype(np.float64)
    width = EDGE_FEATHER * float(np.ptp(canon[_jaw_rows(layout), 0]))
    # Each inside vertex's distance to the nearest outside one, for those near the edge
    # (within twice the feather in UV: the layout squeezes the surface at most that much).
    near = inner_distance(inside)[uv[:, 1], uv[:, 0]] < 2 * EDGE_FEATHER * size
    g = 2 * int(round(size / layout.resolution)) + 1  # two layout texels
    ring = cv2.dilate(inside, np.ones((g, g), np.uint8))[uv[:, 1], uv[:, 0]] > 0
    edge = canon[~within & ring]
    dist = np.where(within, np.inf, 0.0)
    for rows in np.array_split(np.flatnonzero(within & near), max(1, int((within & near).sum()) // 1024)):
        dist[rows] = np.sqrt(((canon[rows, None, :] - edge[None]) ** 2).sum(-1)).min(1)
    alpha = np.stack([smoothstep(0.0, width, dist)] * 3, 1)
    grid = position_grid(layout, alpha.astype(np.float32))[..., 0]  # the mouth's hole: its edge's value
    r = layout.resolution
    t = np.arange(size, dtype=np.float32) * (r - 1) / (size - 1)
    alpha = cv2.remap(grid, *np.meshgrid(t, t), cv2.INTER_LINEAR)
    return (alpha * (inside > 0)).astype(np.float32), inside > 0


def _jaw_rows(layout: UVLayout) -> np.ndarray:
    """The dense vertex rows of the jaw line's landmarks."""
    flat = layout.kpt_ind[1, JAW] * layout.resolution + layout.kpt_ind[0, JAW]
    return np.searchsorted(layout.face_ind, flat)


def fill_curves(size: int, curves: list[np.ndarray], grow: float = 0.0) -> np.ndarray:
    """(S, S) float: closed curves filled, grown by ``grow`` x size, with a soft edge."""
    m = np.zeros((size, size), np.uint8)
    for c in curves:
        cv2.fillPoly(m, [np.round(c).astype(np.int32)], 1)
    if grow > 0:
        g = int(round(grow * size)) * 2 + 1
        m = cv2.dilate(m, np.ones((g, g), np.uint8))
    return cv2.GaussianBlur(m.astype(np.float32), (0, 0), LIVE_EDGE * size)


def mouth_hole(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """(S, S) bool: the layout's hole between the lips (no mesh there). On a live face
    it opens with the mouth, so inside it is the live inner mouth (teeth, tongue); the
    inner-lip landmarks' polygon is larger (it holds a strip of lip)."""
    k = uv_landmarks(layout, size)
    near = fill_curves(size, [closed_curve(k[LIPS])]) > 0.5
    return near & ~face_mask_tex(layout, size)


def live_bands(layout: UVLayout, size: int = 256) -> np.ndarray:
    """(R, R, 2) float32 in [0, 1] at the layout's resolution R (small: it is uploaded
    with each face's uniforms), drawn at ``size``: where swap.frag lets the live frame
    decide. Channel 0: the inner lips, MOUTH_BAND layout texels from the mouth's hole
    (the live mouth's inside shows wherever the live frame has it); channel 1: the lids,
    EYE_BAND texels around the lid contour (the live eye shows likewise). Why: the mesh
    opens its mouth and lids less than the face does (the mouth about 3/4 as far on
    carphone, half on a small webcam), so the source's lips and lids would cover teeth,
    the dark of an open mouth and the whites of wide eyes."""
    k = uv_landmarks(layout, size)
    eyes = fill_curves(size, [closed_curve(k[EYE_L]), closed_curve(k[EYE_R])]) > 0.5
    out = []
    for part, texels in ((mouth_hole(layout, size), MOUTH_BAND), (eyes, EYE_BAND)):
        r = int(round(texels * size / layout.resolution)) * 2 + 1
        grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r, r))
        band = cv2.dilate(part.astype(np.uint8), grow).astype(np.float32)
        out.append(cv2.GaussianBlur(band, (0, 0), LIVE_EDGE * size))
    side = (layout.resolution, layout.resolution)
    return cv2.resize(np.stack(out, -1), side, interpolation=cv2.INTER_AREA)


def live_mask(layout: UVLayout, size: int = TEX, parts: tuple[str, ...] = ()) -> np.ndarray:
    """(S, S) float in [0, 1]: where the live face shows. Always the eyeballs (inside
    the lid contour) and the inside of the mouth (the hole between the lips, grown by
    MOUTH_GROW layout texels: the mesh opens less than the live mouth, and a coarser
    mesh's triangles over it stay clear); with ``parts``
    also the whole lids, lips or brows."""
    k = uv_landmarks(layout, size)
    m = fill_curves(size, [closed_curve(k[EYE_L]), closed_curve(k[EYE_R])])
    gx, gy = (int(round(g * size / layout.resolution)) * 2 + 1 for g in MOUTH_GROW)
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gx, gy))
    hole = cv2.dilate(mouth_hole(layout, size).astype(np.uint8), grow).astype(np.float32)
    m = np.maximum(m, cv2.GaussianBlur(hole, (0, 0), LIVE_EDGE * size))
    if "lids" in parts:
        m = np.maximum(m, fill_curves(size, [closed_curve(k[EYE_L]), closed_curve(k[EYE_R])], 0.02))
    if "lips" in parts:
        m = np.maximum(m, fill_curves(size, [closed_curve(k[LIPS])], 0.008))
    if "brows" in parts:
        m = np.maximum(m, fill_curves(size, [k[BROW_L], k[BROW_R]], 0.02))
    return m


def _against_skin(
    albedo: np.ndarray, skin: np.ndarray, op: int, size: int, blur: float
) -> tuple[np.ndarray, np.ndarray]:
    """At 512 x 512: each texel's luminance over the skin around it without its small
    features of one kind (``op``: a grey opening, erode then dilate, takes out bright
    features narrower than ``size`` texels; a closing, dark ones), blurred by ``blur``;
    and how much each texel is plain skin."""
    low = 512
    small = cv2.resize(albedo, (low, low), interpolation=cv2.INTER_AREA)
    lum = small @ LUMA.astype(np.float32)
    on_skin = cv2.resize(skin.astype(np.float32), (low, low), interpolation=cv2.INTER_AREA)
    filled = np.where(on_skin > 0.5, lum, np.median(lum[on_skin > 0.5])).astype(np.float32)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size | 1, size | 1))
    base = cv2.GaussianBlur(cv2.morphologyEx(filled, op, k), (0, 0), blur)
    return lum / np.maximum(base, 1e-4), on_skin


def _rescaled(albedo: np.ndarray, ratio: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``albedo`` with each texel's luminance ratio (512 x 512) moved to ``target``."""
    size = albedo.shape[0]
    scale = target / np.maximum(ratio, 1e-6)
    return albedo * cv2.resize(scale, (size, size), interpolation=cv2.INTER_LINEAR)[..., None]


def highlights_down(albedo: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Press shine on the skin (specular highlights the photo's light left, which a
    diffuse model cannot divide out) down toward its surroundings: shine is brighter
    than the skin around it, and smaller than 1/SHINE_SIZE of the texture."""
    ratio, on_skin = _against_skin(albedo, skin, cv2.MORPH_OPEN, 512 // SHINE_SIZE, 512 / 100)
    excess = np.maximum(ratio - SHINE, 0.0) * on_skin
    return _rescaled(albedo, ratio, ratio - (1 - SHINE_KEEP) * excess)


def creases_up(albedo: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Lift the deep, narrow creases of the photo's expression (a smile's folds from
    the nose to the mouth, crow's feet, a squint's lines) toward the skin around them.
    Why: they are the photo's shadows, not the skin's colour, so de-lighting leaves
    them as hard dark lines, and drawn on a live face that is not smiling they read as
    ink on a latex mask. Skin darker than CREASE x its surroundings (a grey closing
    takes out dark features narrower than 1/CREASE_SIZE of the texture) keeps only
    CREASE_KEEP of the rest of its depth; shallower lines, pores and stubble are left
    as they are, and the eyes, brows, nostrils and lips are not skin here."""
    ratio, on_skin = _against_skin(albedo, skin, cv2.MORPH_CLOSE, 512 // CREASE_SIZE, 1.5)
    deficit = np.maximum(CREASE - ratio, 0.0) * on_skin
    return _rescaled(albedo, ratio, ratio + (1 - CREASE_KEEP) * deficit)


def edge_band(layout: UVLayout, inside: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(S, S) float in [0, 1]: where the face meets hair, ears and background (the band
    along the region's outline, and everything above the brows), features excepted."""
    size = inside.shape[0]
    band = np.clip(1.0 - (inner_distance(inside) - 0.06 * size) / (0.04 * size), 0.0, 1.0)
    top = uv_landmarks(layout, size)[BROW_L + BROW_R, 1].mean()
    rows = np.arange(size, dtype=np.float32)[:, None]
    above = np.clip((top - rows) / (0.02 * size), 0.0, 1.0)
    return np.maximum(band, np.broadcast_to(above, band.shape)) * ~features


class FaceSwap(Effect):
    """One source face, worn by the faces it is drawn on. Give it the source photo and
    that photo's face as reconstructed (``set_source_face``; again at any time to switch
    faces); ``warnings`` then holds one line per thing a better photo would fix.
    ``shape``, ``tone`` and ``live``: see the module docstring. Users pick the swap as
    "swap", a FaceMap (realtime.render.effects.facemap) holding a FaceSwap per source
    face: neither is registered by name, as both need a photo first."""

    name = "source-face"
    shader = "swap.frag"
    vertex_shader = "swap.vert"
    normals = True
    whole_face = True  # the region reaches above the brows, past the landmarks' hull

    def __init__(
        self,
        layout: UVLayout,
        photo: np.ndarray | None = None,
        face: Reconstruction | None = None,
        shape: float = 0.0,
        *,
        tone: str = DEFAULT_TONE,
        live: tuple[str, ...] = (),
        glasses: bool = True,
    ):
        super().__init__(layout)
        if tone not in TONES:
            raise SwapError(f"swap tone {tone!r}: use one of {', '.join(TONES)}")
        if set(live) - set(LIVE_PARTS):
            raise SwapError(f"live parts {live}: choose from {', '.join(LIVE_PARTS)}")
        self.shape, self.tone, self.live, self.glasses = float(shape), tone, tuple(live), glasses
        # swap.frag samples the frame: the live mouth's inside, and with a shape the
        # frame around the face, drawn warped.
        self.reads_frame = True  # type: ignore[misc]
        self.face_shape = FaceShape(layout)
        self._warp_grid: np.ndarray | None = None
        self.prepared: SourceTexture | None = None
        self.warnings: list[str] = []
        self.drawn = TrackMemory()  # per track: this frame's mesh as drawn
        self.face = face_mask_tex(layout, TEX)
        self.region, inside = swap_region(layout, TEX)
        self.keep = live_mask(layout, TEX, self.live)
        self.bands = live_bands(layout)
        self.bands.flags.writeable = False  # the same every frame: uploaded once per face slot
        features = feature_mask(layout, TEX, (BROW_L, BROW_R, EYE_L, EYE_R, NOSE_BASE, LIPS), 0.015)
        skin = (self.region > 0.5) & ~features
        k = uv_landmarks(layout, TEX)
        lips = fill_curves(TEX, [closed_curve(k[LIPS])])
        mouth = fill_curves(TEX, [closed_curve(k[LIPS])], 0.012) > 0.5
        eyes = fill_curves(TEX, [closed_curve(k[EYE_L]), closed_curve(k[EYE_R]), k[[21, 22, 28]]], 0.05) > 0.5
        edge = edge_band(layout, inside, features)
        self.masks = Masks(self.face, skin, edge, mouth, eyes if glasses else None, lips)
        self.light = LightEstimator(layout, not_skin(layout))
        self.detail = DetailMatch(layout, self.light.rows)
        self.detail_lod = 0.0
        self.seam = Seam(layout, self.region, self.keep > 0.05, self.light.normals, skin)
        uv = np.round(layout.vertex_uv * (TEX - 1)).astype(np.int64)
        self.seam_px = uv[self.seam.rows]
        self.seam_albedo = np.zeros((len(self.seam.rows), 3))
        self.seam_cover = np.zeros(len(self.seam.rows))
        # Where the source's tone holds (1) rather than the edge's match to the live skin.
        g = self.seam.grid
        k = (np.arange(g) * (TEX - 1) / (g - 1)).astype(np.float32)
        at_cells = cv2.remap(self.region, *np.meshgrid(k, k), cv2.INTER_LINEAR)
        self.tone_weight = np.clip((at_cells - 0.9) / 0.1, 0.0, 1.0)[..., None].astype(np.float32)
        self.tone_offset = TrackMemory()
        self.skin_chroma = (SKIN / float(SKIN @ LUMA)).astype(np.float32)  # compose sets the source's
        if photo is not None and face is not None:
            self.set_source_face(photo, face)

    def set_source_face(self, photo: np.ndarray, face: Reconstruction) -> None:
        """Unwrap ``face`` (the photo's face as reconstructed, in photo pixels) into the
        swap texture: (S, S, 4) BGRA albedo, alpha = the region minus the live parts."""
        if photo is None or photo.ndim != 3 or photo.shape[2] != 3:
            raise SwapError("source face photo must be a colour image (H, W, 3 BGR)")
        if face.vertices.shape != (len(self.layout.face_ind), 3):
            raise SwapError(
                f"source reconstruction has {len(face.vertices)} vertices but the layout "
                f"has {len(self.layout.face_ind)}: reconstruct it with the same weights"
            )
        prepared = unwrap(self.layout, photo, face, self.light, self.masks)
        if (prepared.seen[self.masks.skin] > 0.5).mean() < 0.2:
            raise SwapError("the source face is barely visible in its photo: use a photo facing the camera")
        prepared.albedo = creases_up(highlights_down(prepared.albedo, self.masks.skin), self.masks.skin)
        self.prepared, self.warnings = prepared, list(prepared.warnings)
        aligned = face.vertices if prepared.vertices is None else prepared.vertices
        self.face_shape.set_source(Reconstruction(face.track_id, face.landmarks, aligned, face.pose))
        self.compose()

    def variant(self, **options) -> FaceSwap:
        """A new swap of the same prepared source with other ``shape``, ``tone`` or
        ``live``: options compared without unwrapping the photo again."""
        kw = {"shape": self.shape, "tone": self.tone, "live": self.live, **options}
        other = FaceSwap(
            self.layout, shape=kw["shape"], tone=kw["tone"], live=tuple(kw["live"]), glasses=self.glasses
        )
        if self.prepared is not None:
            other.prepared, other.warnings = self.prepared, self.warnings
            other.face_shape = self.face_shape.fresh()
            other.compose()
        return other

    def preview_copy(self) -> FaceSwap:
        """A copy sharing the prepared source and the masks, with its own per-face
        state (the running face shapes, the light, the seam, the tone)."""
        twin = copy.copy(self)
        twin.light, twin.seam = self.light.fresh(), self.seam.fresh()
        twin.face_shape, twin.detail = self.face_shape.fresh(), self.detail.fresh()
        twin.drawn, twin.tone_offset = TrackMemory(), TrackMemory()
        return twin

    def compose(self) -> None:
        """The texture from the prepared source and the current ``live`` parts."""
        albedo = self.prepared.albedo
        self.keep = live_mask(self.layout, TEX, self.live)
        code = np.sqrt(np.clip(albedo / ALBEDO_MAX, 0.0, 1.0)) * 255
        a = self.region * (1.0 - self.keep) * self.face
        self.texture = np.concatenate([code, a[..., None] * 255], -1).round().astype(np.uint8)
        # What the seam correction needs of the texture: its (blurred) albedo and cover
        # at the boundary samples.
        soft = cv2.GaussianBlur(albedo.astype(np.float32), (0, 0), TEX / 200)
        y, x = self.seam_px[:, 1], self.seam_px[:, 0]
        self.seam_albedo = soft[y, x].astype(np.float64)
        self.seam_cover = a[y, x]
        # The colour a texel keeps when the chroma match turns its colour down: the
        # source's median skin chroma (its luminance is the texel's own).
        skin = np.exp(np.median(np.log(np.maximum(albedo[self.masks.skin], 1e-4)), 0))
        self.skin_chroma = (skin / max(float(skin @ LUMA), 1e-4)).astype(np.float32)
        self.detail_lod = self.detail.set_source(self.prepared.detail, TEX)
        self.light.tracks.clear()
        self.seam.tracks.clear()
        self.tone_offset.clear()
        self.version += 1

    def vertices(self, rec: Reconstruction) -> np.ndarray:
        """The live mesh, moved toward the source's shape by ``shape`` (its lids and
        lips the live face's: realtime.render.effects.swap_shape)."""
        v = rec.vertices
        if self.shape and self.face_shape.source is not None:
            v = self.face_shape.vertices(rec, self.shape)
        self.drawn.put(rec.track_id, v)
        return v

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        """This face's light (estimated from its pixels and mesh, smoothed per track),
        seam correction and, with ``tone`` "source", the source's tone inside the face."""
        light = self.light.update(image, rec)
        detail = self.detail.gain(image, rec)
        drawn = self.drawn.get(rec.track_id)
        warp = None
        if drawn is not None and drawn is not rec.vertices:  # the seam looks where the swap is drawn
            warp = self._warp(drawn, rec.vertices)
            rec = Reconstruction(rec.track_id, rec.landmarks, drawn, rec.pose)
        chroma = self.chroma(rec.track_id)
        seam_albedo = self.seam_albedo
        if chroma < 1.0:  # the seam sees the albedo as the shader draws it
            grey = (seam_albedo @ LUMA)[:, None] * self.skin_chroma
            seam_albedo = grey + chroma * (seam_albedo - grey)
        seam = self.seam.update(image, rec, light, seam_albedo, self.seam_cover)
        if self.tone == "source" and self.prepared is not None:
            seam = seam + self.tone_weight * self._tone(image, rec.track_id, light)
        out = {
            "u_sh": shader_coefficients(light),
            "u_seam": seam,
            "u_chroma": chroma,
            "u_detail": detail,
            "u_detail_lod": self.detail_lod,
            "u_skin_chroma": self.skin_chroma,
            "u_albedo_max": ALBEDO_MAX,
            "u_seam_size": float(self.seam.grid),
            "u_warped": warp is not None,
            "u_live_bands": self.bands,
            "u_live_skin": self._live_skin(rec.track_id),
        }
        if warp is not None:
            out["u_warp"] = warp
        return out

    def _live_skin(self, track: int) -> np.ndarray:
        """(3,) the live skin's colour, BGR in [0, 1] as the frame texture holds it (gamma
        2): the median of the skin samples the light estimator read this frame."""
        return np.sqrt(self.light.skin_colour(track)).astype(np.float32)

    def chroma(self, track: int) -> float:
        """How much of the source's colour detail this face keeps (1: all): with tone
        "live", the live skin's chroma spread (its running light estimate's albedo) over
        the source's, over CHROMA_MATCH, at most 1."""
        if self.tone != "live" or self.prepared is None or self.prepared.spread <= 0:
            return 1.0
        live = self.light.spread(track)
        if live is None:
            return 1.0
        return min(live / (CHROMA_MATCH * self.prepared.spread), 1.0)

    def _warp(self, drawn: np.ndarray, live: np.ndarray) -> np.ndarray:
        """(R, R, 3) float32 per layout pixel: where the mesh is drawn minus where the
        live face is (x, y frame pixels), and how much of the warped frame to draw
        there: swap.vert samples the frame at the live place, so the frame around the
        face (the jaw line, the cheeks' edge) follows the new shape."""
        if self._warp_grid is None:  # the weight channel is fixed: made once
            r = self.layout.resolution
            self._warp_grid = np.zeros((r * r, 3), np.float32)
            self._warp_grid[self.layout.face_ind, 2] = self.face_shape.weight
        grid = self._warp_grid.copy()  # each face's uniforms are uploaded after all are made
        grid[self.layout.face_ind, :2] = drawn[:, :2] - live[:, :2]
        return grid.reshape(self.layout.resolution, self.layout.resolution, 3)

    def _tone(self, image: np.ndarray, track: int, light: np.ndarray) -> np.ndarray:
        """(3,) log gain that gives the face the source's skin tone: its chroma, and
        half its lightness against its photo's exposure, over the live skin's."""
        live_skin = frontal_skin(light)
        live_exposure = exposure(image)
        src = self.prepared

        def tone(skin: np.ndarray, expo: float) -> np.ndarray:
            lum = max(float(skin @ LUMA), 1e-4)
            return np.log(np.maximum(skin, 1e-4) / lum) + 0.5 * np.log(lum / max(expo, 1e-4))

        offset = np.clip(tone(src.skin, src.exposure) - tone(live_skin, live_exposure), -MAX_TONE, MAX_TONE)
        return self.tone_offset.smooth(track, offset, 0.1).astype(np.float32)
