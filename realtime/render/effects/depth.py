"""Debug view: the whole face mesh shaded by depth, near bright, far dark."""

from __future__ import annotations

import numpy as np

from realtime.core.types import Reconstruction
from realtime.render.effects.base import Effect, register


@register
class Depth(Effect):
    name = "depth"
    shader = "depth.frag"
    whole_face = True
    group = "debug"
    order = 90

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        z = rec.vertices[:, 2]
        return {"u_zrange": (float(z.max()), float(z.min()))}
