"""The frame's own face re-shaded by a known light: ground truth for the light
estimate and for the relit swap benchmark (realtime.eval.swap), where the
answer has to be known. Not listed: made with a light, not picked by name."""

from __future__ import annotations

import numpy as np

from realtime.core.types import Reconstruction
from realtime.core.uv import UVLayout
from realtime.render.effects.base import Effect, register
from realtime.render.lighting import shader_coefficients


@register
class Relight(Effect):
    """Multiplies the face's linear colour by ``light`` (9, 3) evaluated at the mesh
    normals (e.g. lighting.directional_light), inside the feathered effect region."""

    name = "relight"
    shader = "relight.frag"
    normals = True
    reads_frame = True
    listed = False

    def __init__(self, layout: UVLayout | None = None, argument: str = "", light: np.ndarray | None = None):
        super().__init__(layout, argument)
        self.light = np.zeros((9, 3)) if light is None else np.asarray(light, np.float64)
        if light is None:
            self.light[0] = 1 / 0.282095  # shading 1 everywhere: the frame unchanged

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        return {"u_sh": shader_coefficients(self.light)}
