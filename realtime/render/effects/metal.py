"""A chrome mask that mirrors the live face's light, with a highlight toward its
dominant light (shaders/metal.frag)."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.core.landmarks import EYE_L, EYE_R, JAW, LIPS, NOSE_BRIDGE
from realtime.core.types import Reconstruction
from realtime.core.uv import UVLayout
from realtime.render.effects.base import PaintedMask, register
from realtime.render.effects.uvdraw import (
    SS,
    TEX,
    canvas,
    canvas_points,
    eye_centre,
    finish_canvas,
    stroke_width,
    uv_landmarks,
)
from realtime.render.lighting import dominant_direction, shade, shader_coefficients


def make_metal(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """A chrome mask for the metal shader, which lights it from the mesh normals;
    engraved rings around the eyes, eye and mouth holes left open."""
    k = uv_landmarks(layout, size)
    cv = canvas(size)
    face_w = k[16, 0] - k[0, 0]
    cv[...] = (200, 198, 192, 255)
    for eye in (EYE_L, EYE_R):
        c = eye_centre(k, eye)
        cc = tuple(int(v) for v in np.round(c * SS))
        for r, col in ((0.15, (150, 140, 130, 255)), (0.12, (225, 220, 215, 255))):
            cv2.circle(cv, cc, int(r * face_w * SS), col, -1, cv2.LINE_AA)
        hull = cv2.convexHull(canvas_points(k, eye))
        cv2.fillPoly(cv, [hull], (0, 0, 0, 0), cv2.LINE_AA)
    bridge = canvas_points(k, NOSE_BRIDGE)
    cv2.polylines(cv, [bridge], False, (240, 240, 240, 255), stroke_width(size, 2), cv2.LINE_AA)
    cv2.polylines(
        cv, [canvas_points(k, JAW)], False, (130, 120, 115, 255), stroke_width(size, 3), cv2.LINE_AA
    )
    cv2.fillPoly(cv, [canvas_points(k, LIPS)], (0, 0, 0, 0), cv2.LINE_AA)
    cv2.polylines(
        cv, [canvas_points(k, LIPS)], True, (120, 110, 100, 255), stroke_width(size, 2), cv2.LINE_AA
    )
    return finish_canvas(cv, size)


@register
class Metal(PaintedMask):
    name = "metal"
    group = "mask"
    order = 30
    shader = "metal.frag"

    paint = staticmethod(make_metal)

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        """The light, and its dominant direction and strength for the highlight (some
        highlight even under flat light, or chrome looks like grey paint)."""
        light = self.light.update(image, rec)
        direction, _ = dominant_direction(light)
        toward, away = shade(light, np.stack([direction, -direction]))
        colour = np.maximum(toward - away, 0.3 * toward)
        return {
            "u_sh": shader_coefficients(light),
            "u_light_dir": tuple(float(v) for v in direction),
            "u_light_col": tuple(float(v) for v in colour),
        }
