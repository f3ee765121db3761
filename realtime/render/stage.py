"""The render stage of the live loop: each frame's faces drawn with the chosen effect,
on the main thread, which owns the GL context.

The effect can be changed from any thread (the window's keys, a control panel): the
choice is a name read once per frame, so a change shows on the next frame drawn.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from realtime.render.effects import EFFECTS, Effect
from realtime.render.renderer import Renderer
from realtime.types import FaceResult, Frame

if TYPE_CHECKING:  # glfw is imported only when a window is opened: headless runs lack it
    from realtime.render.window import Window, WindowView


class RenderStage:
    """Draws each frame with the current effect, reading the pixels back only when
    ``read`` (an output needs them); else it returns None and the window shows the
    renderer's texture."""

    def __init__(
        self,
        renderer: Renderer,
        effect: str,
        window: Window | None = None,
        view: WindowView | None = None,
        read: bool = True,
    ):
        self.renderer, self.window, self.view = renderer, window, view
        self.read_back = read
        self.status = ""
        self._effect = effect
        self._lock = threading.Lock()
        renderer.effect(effect)  # an unknown name or a bad mask fails here, before the run

    @property
    def effects(self) -> list[str]:
        """The names a user can pick: the built-in ones and any added (swap, masks)."""
        names = list(self.window.effects) if self.window is not None else list(EFFECTS)
        return names + [n for n in self.renderer.named if n not in names]

    @property
    def effect(self) -> str:
        return self.window.effect if self.window is not None else self._effect

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
            if self.window is not None:
                self.window.effect = name

    def add_effect(self, effect: Effect, select: bool = True) -> None:
        """Make ``effect`` available by its name (e.g. a face swap from an uploaded
        photo), and switch to it."""
        self.renderer.add_effect(effect)
        if self.window is not None and effect.name not in self.window.effects:
            self.window.effects.append(effect.name)
        if select:
            self.set_effect(effect.name)

    def __call__(self, frame: Frame, result: FaceResult | None) -> np.ndarray | None:
        faces = result.reconstructions if result is not None else []
        self.status = result.status if result is not None else ""
        image = self.renderer.render(frame.image, faces, self.effect, read=self.read_back)
        if self.view is not None:
            self.view.rendered = (image, self.renderer.output)
        return image

    def read(self) -> np.ndarray:
        """The last drawn frame's pixels (the pipeline asks when it needs them)."""
        return self.renderer.read()
