"""The render stage of the live loop: each frame's faces drawn with the chosen effect,
on the main thread, which owns the GL context.

The effect can be changed from any thread (realtime.app.controls: the window's keys,
a control panel): the choice is a name read once per frame, so a change shows on the
next frame drawn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import moderngl
import numpy as np

from realtime.core.types import FaceResult, Frame
from realtime.render.effects import EFFECTS, Effect
from realtime.render.renderer import Renderer


class RenderStage:
    """Draws each frame with the current effect, reading the pixels back only when
    ``read`` (an output needs them); else it returns None and the window shows the
    renderer's texture. ``on_drawn(image, texture)`` hears of every frame drawn (the
    window's view keeps the texture to show)."""

    def __init__(
        self,
        renderer: Renderer,
        effect: str,
        read: bool = True,
        on_drawn: Callable[[np.ndarray | None, moderngl.Texture], None] | None = None,
    ):
        self.renderer, self.read_back, self.on_drawn = renderer, read, on_drawn
        # Without a window nothing shows the renderer's texture, so only the faces'
        # boxes of each frame go up and come back (read() puts them into the frame):
        # on llvmpipe the whole-frame upload, clear and read-back cost more than a face.
        renderer.whole_frame = on_drawn is not None
        self.status = ""
        self.boxes: dict[int, list[float]] = {}  # track id -> landmark box, last frame drawn
        self._effect = effect
        self._lock = threading.Lock()
        renderer.effect(effect)  # an unknown name or a bad mask fails here, before the run

    @property
    def effects(self) -> list[str]:
        """The names a user can pick, in the keys' order: the built-in ones, then any
        added (the swap, masks from files)."""
        names = list(EFFECTS)
        return names + [n for n in self.renderer.named if n not in names]

    @property
    def effect(self) -> str:
        return self._effect

    @property
    def draws_surfaces(self) -> bool:
        """Whether the current effect paints the face's surface (masks, swap, depth):
        only those read a face's visibility."""
        return self.renderer.effect(self.effect).kind == "surface"

    def set_effect(self, name: str) -> None:
        """Switch to ``name`` from the next frame; EffectError (one line) if unknown."""
        if name not in self.renderer.named:
            self.renderer.effect(name)  # built (no GL) and checked on the caller's thread
        with self._lock:
            self._effect = name

    def add_effect(self, effect: Effect, select: bool = True) -> None:
        """Make ``effect`` available by its name (e.g. a face swap from an uploaded
        photo), and switch to it."""
        self.renderer.add_effect(effect)
        if select:
            self.set_effect(effect.label)

    def __call__(self, frame: Frame, result: FaceResult | None) -> np.ndarray | None:
        faces = result.reconstructions if result is not None else []
        self.status = result.status if result is not None else ""
        self.boxes = {
            r.track_id: [*map(float, r.landmarks[:, :2].min(0)), *map(float, r.landmarks[:, :2].max(0))]
            for r in faces
        }
        image = self.renderer.render(frame.image, faces, self.effect, read=self.read_back)
        if self.on_drawn is not None:
            self.on_drawn(image, self.renderer.output)
        return image

    def read(self) -> np.ndarray:
        """The last drawn frame's pixels (the pipeline asks when it needs them)."""
        return self.renderer.read()
