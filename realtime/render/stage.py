"""The render stage of the live loop: each frame's faces drawn with the chosen effect,
on the main thread, which owns the GL context; and the run's effect catalogue.

The catalogue (``named``) holds the run's Effect objects by name: the built-in ones,
built on first use and kept (their state, a mask's light per face, lasts from frame to
frame), and the ones added while the run goes on (the face swap, from a source
photo). The renderer draws the Effect the stage gives it.

The effect can be changed from any thread (realtime.app.controls: the window's keys,
a control panel): the choice is a name read once per frame, so a change shows on the
next frame drawn.
"""

from __future__ import annotations

import numpy as np

from realtime.core.types import FaceResult, Frame
from realtime.render.effects import EFFECTS, Effect, get_effect
from realtime.render.renderer import Renderer


class RenderStage:
    """Draws each frame with the current effect, reading the pixels back only when
    ``read`` (an output needs them); else it returns None and the picture stays in the
    renderer's ``output`` texture. ``on_screen``: a window shows that texture, so the
    whole frame goes up each frame (without one, only the faces' boxes go up and come
    back: on llvmpipe the whole-frame upload, clear and read-back cost more than a
    face)."""

    def __init__(self, renderer: Renderer, effect: str, read: bool = True, on_screen: bool = False):
        self.renderer, self.read_back = renderer, read
        renderer.whole_frame = on_screen
        self.status = ""
        self.boxes: dict[int, list[float]] = {}  # track id -> landmark box, last frame drawn
        self.named: dict[str, Effect] = {}
        self._effect = effect
        self.effect_for(effect)  # an unknown name or a bad mask fails here, before the run

    # -- the catalogue (any thread) -----------------------------------------------------
    @property
    def effects(self) -> list[str]:
        """The names a user can pick, in the keys' order: the built-in ones, then any
        added (the swap, masks from files)."""
        names = list(EFFECTS)
        return names + [n for n in self.named if n not in names]

    def effect_for(self, name: str) -> Effect:
        """The run's Effect called ``name``: built on first use (no GL, so any thread
        may ask) and kept; EffectError (one line) if there is no such effect."""
        if name not in self.named:
            self.named[name] = get_effect(name, self.renderer.layout)
        return self.named[name]

    def add_effect(self, effect: Effect, select: bool = True) -> None:
        """Make ``effect`` available by its label (e.g. a face swap from an uploaded
        photo, as "swap"), and with ``select`` switch to it."""
        self.named[effect.label] = effect
        if select:
            self.set_effect(effect.label)

    @property
    def effect(self) -> str:
        """The name of the effect drawn."""
        return self._effect

    @property
    def draws_surfaces(self) -> bool:
        """Whether the current effect paints the face's surface (masks, swap, depth):
        only those read a face's visibility."""
        return self.effect_for(self.effect).kind == "surface"

    def set_effect(self, name: str) -> None:
        """Switch to ``name`` from the next frame; EffectError (one line) if unknown."""
        self.effect_for(name)  # built and checked on the caller's thread
        self._effect = name

    # -- drawing (the GL thread) --------------------------------------------------------
    def __call__(self, frame: Frame, result: FaceResult | None) -> np.ndarray | None:
        faces = result.reconstructions if result is not None else []
        self.status = result.status if result is not None else ""
        self.boxes = {
            r.track_id: [*map(float, r.landmarks[:, :2].min(0)), *map(float, r.landmarks[:, :2].max(0))]
            for r in faces
        }
        return self.renderer.render(frame.image, faces, self.effect_for(self.effect), read=self.read_back)

    def read(self) -> np.ndarray:
        """The last drawn frame's pixels (the pipeline asks when it needs them)."""
        return self.renderer.read()
