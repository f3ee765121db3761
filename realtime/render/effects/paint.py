"""Festival face paint: butterfly wings around the eyes, dots, painted lips."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.core.landmarks import BROW_L, BROW_R, EYE_L, EYE_R, LIPS, MOUTH_IN
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


def make_face_paint(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """Festival face paint: butterfly wings around the eyes, dots, painted lips."""
    k = uv_landmarks(layout, size)
    cv = canvas(size)
    face_w = k[16, 0] - k[0, 0]
    rng = np.random.default_rng(5)
    for eye, brow, side in ((EYE_L, BROW_L, -1), (EYE_R, BROW_R, 1)):
        c = eye_centre(k, eye)
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
            cv2.ellipse(cv, cc, axes, ang, 0, 360, (60, 10, 40, 255), stroke_width(size, 2), cv2.LINE_AA)
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
        cv2.fillPoly(cv, [canvas_points(k, eye)], (0, 0, 0, 0), cv2.LINE_AA)
        cv2.polylines(cv, [canvas_points(k, eye)], True, (40, 0, 30, 255), stroke_width(size, 1), cv2.LINE_AA)
    for _ in range(40):  # glitter on the cheekbones and forehead
        p = k[27] + rng.normal(0, 1, 2) * np.array([0.28, 0.16]) * face_w
        cv2.circle(
            cv,
            tuple(int(v) for v in np.round(p * SS)),
            stroke_width(size, 1),
            (255, 240, 255, 220),
            -1,
            cv2.LINE_AA,
        )
    cv2.fillPoly(cv, [canvas_points(k, LIPS)], (120, 20, 150, 220), cv2.LINE_AA)
    cv2.fillPoly(cv, [canvas_points(k, MOUTH_IN)], (0, 0, 0, 0), cv2.LINE_AA)
    return finish_canvas(cv, size)


@register
class FacePaint(PaintedMask):
    name = "paint"
    group = "mask"
    order = 10

    paint = staticmethod(make_face_paint)
