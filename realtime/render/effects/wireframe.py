"""Debug view: the mesh's UV grid as green lines, every 1/32 of the layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from realtime.render.effects.base import Effect, register
from realtime.types import Reconstruction
from realtime.uv import UVLayout

if TYPE_CHECKING:
    from realtime.render.renderer import Overlay


@register
class Wireframe(Effect):
    name = "wireframe"
    kind = "overlay"
    group = "debug"
    order = 70

    def __init__(self, layout: UVLayout | None = None, argument: str = ""):
        super().__init__()

    def draw_overlay(self, overlay: Overlay, faces: list[Reconstruction]) -> None:
        for i in range(len(faces)):
            overlay.wire(i, (0.3, 1.0, 0.3, 0.7))
