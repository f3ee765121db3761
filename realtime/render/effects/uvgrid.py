"""The debug UV grid: a wrong UV mapping shows at a glance."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.core.uv import UVLayout
from realtime.render.effects.base import Effect, register
from realtime.render.effects.uvdraw import (
    TEX,
    uv_landmarks,
)


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
    lw = max(1, size // 256)  # lines one 256th of the texture wide at any size
    on = np.arange(size) % step < lw
    img[on, :, :3] = 255
    img[:, on, :3] = 255
    mid = (np.arange(size) >= step * 8) & (np.arange(size) < step * 8 + lw)
    img[mid, :, :3] = (0, 255, 0)
    img[:, mid, :3] = (0, 255, 0)
    for c, r in np.round(uv_landmarks(layout, size)).astype(int):
        cv2.circle(img, (c, r), 2 * lw, (255, 255, 255, 255), -1)
    return img


@register
class UVGrid(Effect):
    name = "grid"
    group = "mask"
    order = 40

    def __init__(self, layout: UVLayout, argument: str = ""):
        super().__init__(layout, argument)
        self.texture = make_uv_grid(layout)
