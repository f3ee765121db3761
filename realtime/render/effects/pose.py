"""Debug view: the head pose as three axes from the nose tip (x red, y green, z blue
in RGB; the colours below are BGRA)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from realtime.core.types import Reconstruction
from realtime.render.effects.base import Effect, register

if TYPE_CHECKING:
    from realtime.render.effects.base import Overlay

AXIS_COLOURS = ((0.1, 0.1, 1.0, 1.0), (0.1, 1.0, 0.1, 1.0), (1.0, 0.3, 0.1, 1.0))


@register
class PoseAxes(Effect):
    name = "pose"
    kind = "overlay"
    group = "debug"
    order = 80

    def draw_overlay(self, overlay: Overlay, faces: list[Reconstruction]) -> None:
        for rec in faces:
            origin = rec.landmarks[30].astype(np.float64)
            length = 90.0 * rec.pose.scale
            for axis, colour in enumerate(AXIS_COLOURS):
                end = origin + rec.pose.rotation[:, axis] * length
                overlay.bars(np.array([[origin, end]]), colour, max(2.0, 3.0 * overlay.unit))
