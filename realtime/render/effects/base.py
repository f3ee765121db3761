"""The Effect base class and the registry the effect modules add themselves to (see
realtime.render.effects for what the renderer reads of an effect)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

import numpy as np

from realtime.core.types import Reconstruction, UserError
from realtime.core.uv import UVLayout
from realtime.render.effects.uvdraw import not_skin
from realtime.render.lighting import LightEstimator, shader_coefficients


class EffectError(UserError, ValueError):
    """An unknown effect name or an unusable mask file; one line saying what to do."""


class Overlay(Protocol):
    """What overlay effects draw with (the renderer gives one), in frame pixels;
    colours are BGRA in [0, 1] (the framebuffer holds BGR). ``unit`` is the frame's
    size over 640 px, to scale marks with the frame."""

    unit: float

    def points(self, points: np.ndarray, colour: tuple[float, ...], size: float) -> None:
        """(N, 3) points as round dots ``size`` pixels across."""
        ...

    def bars(self, segments: np.ndarray, colour: tuple[float, ...], width: float) -> None:
        """(N, 2, 3) segments as bars ``width`` pixels wide."""
        ...

    def wire(self, face: int, colour: tuple[float, ...]) -> None:
        """Face number ``face``'s UV grid lines."""
        ...


class Effect:
    """One visual effect (see the module docstring for what the renderer reads).
    Built by the registry as ``cls(layout, argument)``.

    name: what users pick it by; ``takes_argument`` effects are named NAME:ARGUMENT
        (mask:PATH.png). group: "mask", "debug" or "" (where lists show it).
    order: its place in the lists; ``listed`` False keeps it out (the face swap needs
        a source photo first).
    texture: (S, S, 4) uint8 BGRA in the UV layout, or None; ``version`` changes
        whenever it does, so the renderer uploads it again.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "surface"
    shader: ClassVar[str] = "mask.frag"
    vertex_shader: ClassVar[str] = "mesh.vert"
    normals: ClassVar[bool] = False
    reads_frame: ClassVar[bool] = False
    whole_face: ClassVar[bool] = False
    group: ClassVar[str] = ""
    order: ClassVar[int] = 100
    listed: ClassVar[bool] = True
    takes_argument: ClassVar[bool] = False

    def __init__(self, layout: UVLayout | None = None, argument: str = ""):
        """What the registry passes every effect: the UV layout and, for
        ``takes_argument`` effects, the text after the colon (mask:PATH)."""
        self.layout = layout
        self.texture: np.ndarray | None = None
        self.opacity = 1.0
        self.version = 0
        self.label = self.name

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        """Per-face shader inputs by uniform name, computed from this frame: numbers,
        tuples, (N, C) float arrays for array uniforms (the light's ``u_sh``), and
        (H, W, C) float32 arrays, which the renderer uploads as a small texture of the
        face (the swap's seam correction). None by default."""
        return {}

    def vertices(self, rec: Reconstruction) -> np.ndarray:
        """(F, 3) the mesh to draw this face with (the swap can take on the source's
        shape); called once per face per frame, before ``face_uniforms``."""
        return rec.vertices

    def draw_overlay(self, overlay: Overlay, faces: list[Reconstruction]) -> None:
        """Overlay effects draw here; surface effects need not."""

    def per_face(self, faces: list[Reconstruction]) -> list[tuple[Effect, list[int]]]:
        """Which effect draws which of this frame's faces, as (effect, face numbers)
        pairs: this one draws them all; a face left out is drawn as it is (a face
        mapping gives each person their own source face)."""
        return [(self, list(range(len(faces))))]

    def preview_copy(self) -> Effect:
        """A copy to draw previews with (the control panel's thumbnails) that shares
        the heavy parts (textures, masks) but keeps its own per-face state, so the live
        run never sees a preview's face in its smoothing. An effect with no per-face
        state is shared as it is; effects that keep some override this."""
        return self


class LitEffect(Effect):
    """A surface that takes the live face's own light, so it looks worn rather than
    pasted on: the light is estimated per face per frame (realtime.render.lighting)
    and handed to the shader as ``u_sh``; the shader decides what to do with it
    (shaders/mask.frag: diffuse paint; metal.frag adds a highlight)."""

    normals = True

    def __init__(self, layout: UVLayout, argument: str = ""):
        super().__init__(layout, argument)
        self.light = LightEstimator(layout, not_skin(layout))

    def face_uniforms(self, image: np.ndarray, rec: Reconstruction) -> dict:
        return {"u_sh": shader_coefficients(self.light.update(image, rec))}

    def preview_copy(self) -> LitEffect:
        """A copy with a light estimator of its own (the light is kept per face)."""
        twin = copy.copy(self)
        twin.light = self.light.fresh()
        return twin


class PaintedMask(LitEffect):
    """A lit mask whose UV texture is painted once from the layout's landmarks by the
    subclass's ``paint`` (a staticmethod: layout -> (S, S, 4) BGRA)."""

    paint: ClassVar[Callable[[UVLayout], np.ndarray]]

    def __init__(self, layout: UVLayout, argument: str = ""):
        super().__init__(layout, argument)
        self.texture = self.paint(layout)


REGISTRY: dict[str, type[Effect]] = {}
E = TypeVar("E", bound=type[Effect])


def register(cls: E) -> E:
    """Class decorator: make ``cls`` available by ``cls.name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two effects named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls
