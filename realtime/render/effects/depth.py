"""Debug view: the whole face mesh shaded by depth, near bright, far dark."""

from __future__ import annotations

import numpy as np

from realtime.render.effects.base import Effect, register
from realtime.types import Reconstruction
from realtime.uv import UVLayout


@register
class Depth(Effect):
    name = "depth"
    shader = "depth.frag"
    whole_face = True
    group = "debug"
    order = 90

    def __init__(self, layout: UVLayout | None = None, argument: str = ""):
        super().__init__()

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        z = rec.vertices[:, 2]
        return {"u_zrange": (float(z.max()), float(z.min()))}
