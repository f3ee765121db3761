"""What is drawn on a face: UV-space masks, debug views and the effect registry.

A mask is an RGBA image in PRNet's 256 x 256 UV layout (stored BGRA, OpenCV's order),
so one picture fits every face, pose and expression: the renderer looks each mesh
vertex up at its UV coordinate. The four shipped masks are drawn here from the
layout's landmarks rather than shipped as files, so they follow any layout
resolution and need no assets. ``mask:PATH`` loads a user PNG in the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.types import Reconstruction, UserError
from realtime.uv import UVLayout

TEX = 256  # PRNet's UV texture side: masks are drawn and stored at this size
SS = 2  # supersampling when drawing masks, for smooth edges
FEATHER = 0.06  # width of the soft edge, as a fraction of the texture side

MASKS = ("paint", "tiger", "metal", "grid")
DEBUG_VIEWS = ("landmarks", "wireframe", "pose", "depth")
EFFECTS = ("none", *MASKS, *DEBUG_VIEWS)

# 68-point landmark groups.
JAW = list(range(0, 17))
BROW_L, BROW_R = list(range(17, 22)), list(range(22, 27))
NOSE_BRIDGE, NOSE_BASE = list(range(27, 31)), list(range(31, 36))
EYE_L, EYE_R = list(range(36, 42)), list(range(42, 48))
LIPS, MOUTH_IN = list(range(48, 60)), list(range(60, 68))


class EffectError(UserError, ValueError):
    """An unknown effect name or an unusable mask file; one line saying what to do."""


@dataclass
class Effect:
    """One effect. ``program`` picks the shader (mask, metal, swap, depth, or a debug
    overlay); ``texture`` is (S, S, 4) uint8 BGRA in the UV layout for the textured
    ones. ``version`` changes whenever the texture does, so the renderer re-uploads."""

    name: str
    program: str
    texture: np.ndarray | None = None
    opacity: float = 1.0
    version: int = 0

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        """Per-face shader uniforms (the swap's colour statistics); none by default."""
        return {}


def uv_landmarks(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """(68, 2) float landmark (col, row) in a ``size`` texture of the layout."""
    return layout.kpt_ind.T.astype(np.float64) * (size - 1) / (layout.resolution - 1)


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
    inside = hull > 0
    dist = cv2.distanceTransform(np.pad(inside, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    t = np.clip(dist / (FEATHER * size), 0.0, 1.0)
    soft = t * t * (3 - 2 * t)
    return np.stack([np.round(soft * 255), face * 255], -1).astype(np.uint8)


def _canvas(size: int) -> np.ndarray:
    return np.zeros((size * SS, size * SS, 4), np.uint8)


def _pts(k: np.ndarray, idx: list[int] | None = None) -> np.ndarray:
    """Landmarks as int32 points at supersampled resolution (cv2 drawing takes ints)."""
    p = k if idx is None else k[idx]
    return np.round(p * SS).astype(np.int32)


def _finish(canvas: np.ndarray, size: int) -> np.ndarray:
    """Down-sample the supersampled canvas, averaging colour by alpha (so soft edges
    keep their colour instead of darkening toward the transparent black around them)."""
    c = canvas.astype(np.float32)
    a = c[..., 3:] / 255.0
    prem = cv2.resize(c[..., :3] * a, (size, size), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)[..., None]
    rgb = prem / np.maximum(alpha, 1e-4)
    return np.concatenate([rgb, alpha * 255], -1).clip(0, 255).round().astype(np.uint8)


def _eye_centre(k: np.ndarray, eye: list[int]) -> np.ndarray:
    return k[eye].mean(0)


def make_face_paint(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """Festival face paint: butterfly wings around the eyes, dots, painted lips."""
    k = uv_landmarks(layout, size)
    cv = _canvas(size)
    face_w = k[16, 0] - k[0, 0]
    rng = np.random.default_rng(5)
    for eye, brow, side in ((EYE_L, BROW_L, -1), (EYE_R, BROW_R, 1)):
        c = _eye_centre(k, eye)
        wing_top = np.array([c[0] + side * 0.22 * face_w, k[brow, 1].min() - 0.06 * face_w])
        wing_low = np.array([c[0] + side * 0.17 * face_w, c[1] + 0.2 * face_w])
        for tip, rad, colour in ((wing_top, 0.17, (220, 60, 200)), (wing_low, 0.11, (240, 200, 40))):
            centre = (c + tip) / 2
            d = tip - c
            axes = (int(np.hypot(*d) / 2 * 1.15 * SS), int(rad * face_w * SS))
            ang = float(np.degrees(np.arctan2(d[1], d[0])))
            cc = tuple(int(v) for v in np.round(centre * SS))
            cv2.ellipse(cv, cc, axes, ang, 0, 360, (*colour, 235), -1, cv2.LINE_AA)
            inner = (int(axes[0] * 0.62), int(axes[1] * 0.55))
            lighter = tuple(int(255 - (255 - v) * 0.45) for v in colour)
            cv2.ellipse(cv, cc, inner, ang, 0, 360, (*lighter, 235), -1, cv2.LINE_AA)
            cv2.ellipse(cv, cc, axes, ang, 0, 360, (60, 10, 40, 255), 2 * SS, cv2.LINE_AA)
            for t in np.linspace(0.15, 0.85, 5):  # dots along the wing
                a = np.radians(ang + 360 * t)
                p = centre + 0.8 * np.array([np.cos(a) * axes[0], np.sin(a) * axes[1]]) / SS
                cv2.circle(
                    cv,
                    tuple(int(v) for v in np.round(p * SS)),
                    int(0.012 * face_w * SS),
                    (255, 255, 255, 255),
                    -1,
                    cv2.LINE_AA,
                )
        # Leave the eye itself unpainted: the live eye shows through.
        cv2.fillPoly(cv, [_pts(k, eye)], (0, 0, 0, 0), cv2.LINE_AA)
        cv2.polylines(cv, [_pts(k, eye)], True, (40, 0, 30, 255), SS, cv2.LINE_AA)
    for _ in range(40):  # glitter on the cheekbones and forehead
        p = k[27] + rng.normal(0, 1, 2) * np.array([0.28, 0.16]) * face_w
        cv2.circle(cv, tuple(int(v) for v in np.round(p * SS)), SS, (255, 240, 255, 220), -1, cv2.LINE_AA)
    cv2.fillPoly(cv, [_pts(k, LIPS)], (120, 20, 150, 220), cv2.LINE_AA)
    cv2.fillPoly(cv, [_pts(k, MOUTH_IN)], (0, 0, 0, 0), cv2.LINE_AA)
    return _finish(cv, size)


def make_tiger(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """Tiger: orange fur, white muzzle and brows, black stripes from the sides and brow."""
    k = uv_landmarks(layout, size)
    cv = _canvas(size)
    s = size * SS
    face_w = k[16, 0] - k[0, 0]
    yy, xx = np.mgrid[0:s, 0:s] / SS
    centre_x = k[27, 0]
    # Orange that deepens toward the sides.
    side = np.clip(np.abs(xx - centre_x) / (face_w / 2), 0, 1)
    orange = np.array([20, 130, 250], np.float32)
    dark = np.array([0, 70, 190], np.float32)
    cv[..., :3] = (orange + (dark - orange) * side[..., None] ** 1.5).astype(np.uint8)
    cv[..., 3] = 240
    white = (245, 245, 250, 245)

    def white_patch(centre: np.ndarray, rx: float, ry: float) -> None:
        """Filled white ellipse; radii in face widths."""
        c = tuple(int(v) for v in np.round(centre * SS))
        axes = (int(rx * face_w * SS), int(ry * face_w * SS))
        cv2.ellipse(cv, c, axes, 0, 0, 360, white, -1, cv2.LINE_AA)

    # Muzzle: two cheek pads around the upper lip, and the chin.
    for corner in (48, 54):
        white_patch((k[corner] + k[33]) / 2, 0.16, 0.11)
    white_patch((k[8] + k[57]) / 2, 0.17, 0.09)
    for eye, brow in ((EYE_L, BROW_L), (EYE_R, BROW_R)):  # white patch above each eye
        white_patch((k[brow].mean(0) + _eye_centre(k, eye)) / 2, 0.12, 0.06)
    black = (15, 10, 10, 250)
    rng = np.random.default_rng(7)
    for sgn in (-1, 1):  # cheek stripes: tapered wedges pointing inward
        edge_x = k[0, 0] if sgn < 0 else k[16, 0]
        for y in np.linspace(k[36, 1] - 0.05 * face_w, k[5, 1], 5):
            length = face_w * rng.uniform(0.18, 0.27)
            width = face_w * rng.uniform(0.035, 0.05)
            bend = face_w * rng.uniform(-0.04, 0.04)
            start = np.array([edge_x - sgn * 0.03 * face_w, y])
            tip = start + np.array([-sgn * length, bend + 0.05 * face_w])
            mid = (start + tip) / 2 + np.array([0, -0.03 * face_w])
            poly = np.array(
                [
                    start + [0, -width],
                    mid + [0, -width * 0.5],
                    tip,
                    mid + [0, width * 0.5],
                    start + [0, width],
                ]
            )
            cv2.fillPoly(cv, [np.round(poly * SS).astype(np.int32)], black, cv2.LINE_AA)
    top = k[BROW_L + BROW_R, 1].min()
    for dx in (-0.16, -0.08, 0.0, 0.08, 0.16):  # forehead stripes down from the brow line
        x = centre_x + dx * face_w
        length = face_w * (0.2 - 0.35 * abs(dx))
        w = face_w * 0.03
        poly = np.array([[x - w, top - 0.1 * face_w], [x + w, top - 0.1 * face_w], [x, top + length]])
        cv2.fillPoly(cv, [np.round(poly * SS).astype(np.int32)], black, cv2.LINE_AA)
    for eye in (EYE_L, EYE_R):  # dark rim around the eyes, eye itself left live
        cv2.polylines(cv, [_pts(k, eye)], True, black, 3 * SS, cv2.LINE_AA)
        cv2.fillPoly(cv, [_pts(k, eye)], (0, 0, 0, 0), cv2.LINE_AA)
    nose = np.concatenate([k[[31, 32, 33, 34, 35]], k[[30]]])  # black nose pad
    cv2.fillPoly(cv, [cv2.convexHull(_pts(nose))], black, cv2.LINE_AA)
    cv2.line(cv, tuple(_pts(k[[33]])[0]), tuple(_pts(k[[51]])[0]), black, 2 * SS, cv2.LINE_AA)
    cv2.fillPoly(cv, [_pts(k, LIPS)], (20, 20, 30, 240), cv2.LINE_AA)
    cv2.fillPoly(cv, [_pts(k, MOUTH_IN)], (0, 0, 0, 0), cv2.LINE_AA)
    return _finish(cv, size)


def make_metal(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """A chrome mask for the metal shader, which lights it from the mesh normals;
    engraved rings around the eyes, eye and mouth holes left open."""
    k = uv_landmarks(layout, size)
    cv = _canvas(size)
    face_w = k[16, 0] - k[0, 0]
    cv[...] = (200, 198, 192, 255)
    for eye in (EYE_L, EYE_R):
        c = _eye_centre(k, eye)
        cc = tuple(int(v) for v in np.round(c * SS))
        for r, col in ((0.15, (150, 140, 130, 255)), (0.12, (225, 220, 215, 255))):
            cv2.circle(cv, cc, int(r * face_w * SS), col, -1, cv2.LINE_AA)
        hull = cv2.convexHull(_pts(k, eye))
        cv2.fillPoly(cv, [hull], (0, 0, 0, 0), cv2.LINE_AA)
    bridge = _pts(k, NOSE_BRIDGE)
    cv2.polylines(cv, [bridge], False, (240, 240, 240, 255), 2 * SS, cv2.LINE_AA)
    cv2.polylines(cv, [_pts(k, JAW)], False, (130, 120, 115, 255), 3 * SS, cv2.LINE_AA)
    cv2.fillPoly(cv, [_pts(k, LIPS)], (0, 0, 0, 0), cv2.LINE_AA)
    cv2.polylines(cv, [_pts(k, LIPS)], True, (120, 110, 100, 255), 2 * SS, cv2.LINE_AA)
    return _finish(cv, size)


def make_uv_grid(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """Debug grid: colour ramps along u (blue) and v (red), lines every 1/16, and the
    68 landmarks as white dots, so a wrong UV mapping shows at a glance."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    img = np.zeros((size, size, 4), np.uint8)
    img[..., 0] = 60 + 195 * xx
    img[..., 1] = 90
    img[..., 2] = 60 + 195 * yy
    img[..., 3] = 220
    step = size // 16
    img[::step, :, :3] = 255
    img[:, ::step, :3] = 255
    img[step * 8, :, :3] = (0, 255, 0)
    img[:, step * 8, :3] = (0, 255, 0)
    for c, r in np.round(uv_landmarks(layout, size)).astype(int):
        cv2.circle(img, (c, r), 2, (255, 255, 255, 255), -1)
    return img


def load_mask(path: str | Path, size: int = TEX) -> np.ndarray:
    """A user mask PNG in PRNet's UV layout (any square size), as (size, size, 4) BGRA."""
    path = Path(path)
    if not path.is_file():
        raise EffectError(f"mask {path} not found: give a PNG in PRNet's 256x256 UV layout")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise EffectError(f"mask {path} is not a readable image: give a PNG in PRNet's 256x256 UV layout")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    h, w = img.shape[:2]
    if h != w:
        raise EffectError(f"mask {path} is {w}x{h}: a UV mask must be square (PRNet's layout is 256x256)")
    if h != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if h > size else cv2.INTER_LINEAR)
    return np.ascontiguousarray(img)


_MAKERS = {"paint": make_face_paint, "tiger": make_tiger, "metal": make_metal, "grid": make_uv_grid}


def get_effect(name: str, layout: UVLayout) -> Effect:
    """The effect called ``name``: one of EFFECTS, or ``mask:PATH``. (The face swap
    is made from a source photo: see realtime.render.swap.FaceSwap.)"""
    if name.startswith("mask:"):
        return Effect(name, "mask", load_mask(name[5:]))
    if name in _MAKERS:
        return Effect(name, "metal" if name == "metal" else "mask", _MAKERS[name](layout))
    if name in DEBUG_VIEWS or name == "none":
        return Effect(name, name)
    raise EffectError(f"unknown effect {name!r}: use one of {', '.join(EFFECTS)}, or mask:PATH.png")
