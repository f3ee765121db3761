"""Debug view: the mesh's UV grid as green lines, every 1/32 of the layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from realtime.core.types import Reconstruction
from realtime.render.effects.base import Effect, register

if TYPE_CHECKING:
    from realtime.render.effects.base import Overlay


@register
class Wireframe(Effect):
    name = "wireframe"
    kind = "overlay"
    group = "debug"
    order = 70

    def draw_overlay(self, overlay: Overlay, faces: list[Reconstruction]) -> None:
        for i in range(len(faces)):
            overlay.wire(i, (0.3, 1.0, 0.3, 0.7))
