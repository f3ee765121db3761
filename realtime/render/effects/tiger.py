"""A tiger mask: orange fur, white muzzle and brows, black stripes."""

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


def make_tiger(layout: UVLayout, size: int = TEX) -> np.ndarray:
    """Tiger: orange fur, white muzzle and brows, black stripes from the sides and brow."""
    k = uv_landmarks(layout, size)
    cv = canvas(size)
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
        white_patch((k[brow].mean(0) + eye_centre(k, eye)) / 2, 0.12, 0.06)
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
        cv2.polylines(cv, [canvas_points(k, eye)], True, black, stroke_width(size, 3), cv2.LINE_AA)
        cv2.fillPoly(cv, [canvas_points(k, eye)], (0, 0, 0, 0), cv2.LINE_AA)
    nose = np.concatenate([k[[31, 32, 33, 34, 35]], k[[30]]])  # black nose pad
    cv2.fillPoly(cv, [cv2.convexHull(canvas_points(nose))], black, cv2.LINE_AA)
    cv2.line(
        cv,
        tuple(canvas_points(k[[33]])[0]),
        tuple(canvas_points(k[[51]])[0]),
        black,
        stroke_width(size, 2),
        cv2.LINE_AA,
    )
    cv2.fillPoly(cv, [canvas_points(k, LIPS)], (20, 20, 30, 240), cv2.LINE_AA)
    cv2.fillPoly(cv, [canvas_points(k, MOUTH_IN)], (0, 0, 0, 0), cv2.LINE_AA)
    return finish_canvas(cv, size)


@register
class Tiger(PaintedMask):
    name = "tiger"
    group = "mask"
    order = 20

    paint = staticmethod(make_tiger)
