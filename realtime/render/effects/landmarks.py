"""Debug view: the 68 landmarks as green dots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from realtime.core.types import Reconstruction
from realtime.render.effects.base import Effect, register

if TYPE_CHECKING:
    from realtime.render.effects.base import Overlay


@register
class Landmarks(Effect):
    name = "landmarks"
    kind = "overlay"
    group = "debug"
    order = 60

    def draw_overlay(self, overlay: Overlay, faces: list[Reconstruction]) -> None:
        for rec in faces:
            overlay.points(
                np.asarray(rec.landmarks, np.float32), (0.2, 1.0, 0.2, 1.0), max(3.0, 4.0 * overlay.unit)
            )
