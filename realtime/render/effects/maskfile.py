"""``mask:PATH``: a user's mask, a PNG in PRNet's 256x256 UV layout."""

from __future__ import annotations

from realtime.core.uv import UVLayout
from realtime.render.effects.base import LitEffect, register
from realtime.render.effects.uvdraw import load_mask


@register
class MaskFile(LitEffect):
    name = "mask"
    takes_argument = True
    order = 50

    def __init__(self, layout: UVLayout, argument: str = ""):
        super().__init__(layout, argument)
        self.texture = load_mask(argument)
