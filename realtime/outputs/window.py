"""The live window: shows the frames and steers the run from the keyboard.

``Window`` is the glfw window and the GL context the renderer draws in, so showing a
frame the renderer drew is drawing its output texture into the back buffer: no
read-back, no upload. ``WindowView`` is the pipeline's view on it: each frame comes by
one route, ``show(image)`` (None: the picture the renderer just drew, still on the
GPU; an image: e.g. one the HUD was drawn on, realtime.outputs.hud, uploaded), and its
keys steer a ``Steering`` (the app's ``Controls``, the one control surface of a run).
Keys: right / space / E next effect, left previous, 1-9 pick one, H toggles the HUD,
Q or Esc quits; the close button quits too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import glfw
import moderngl
import numpy as np

from realtime.render.context import GLContextError, create_context
from realtime.render.renderer import load_program

if TYPE_CHECKING:
    from realtime.render.context import GlfwWindow


class Steering(Protocol):
    """What the window's keys steer (realtime.app.controls.Controls is one)."""

    @property
    def effect(self) -> str: ...

    @property
    def hud(self) -> bool: ...

    def step_effect(self, step: int) -> None: ...

    def pick_effect(self, index: int) -> None: ...

    def set_hud(self, on: bool) -> None: ...


class EffectCycle:
    """An effect list and a HUD switch of its own, for a window with no run to steer
    (a viewer of the effects, a test of the window)."""

    def __init__(self, effects: tuple[str, ...] | list[str], effect: str | None = None):
        self.effects = list(effects)
        self.index = self.effects.index(effect) if effect in self.effects else 0
        self.hud = True

    @property
    def effect(self) -> str:
        return self.effects[self.index]

    def step_effect(self, step: int) -> None:
        self.index = (self.index + step) % len(self.effects)

    def pick_effect(self, index: int) -> None:
        if 0 <= index < len(self.effects):
            self.index = index

    def set_hud(self, on: bool) -> None:
        self.hud = on


NO_DISPLAY = (
    "no display for the window: run on a desktop, set DISPLAY (or start Xvfb), "
    "or run without a window (--no-window)"
)


class Window:
    """A glfw window with an OpenGL 3.3 context (``ctx``: give it to the Renderer).

    ``show(texture)`` draws a texture letterboxed and handles the window's events; it
    returns False once the user asked to quit (Q, Esc, the close button). Other keys
    are kept for ``keys()`` (the WindowView steers with them)."""

    def __init__(self, width: int, height: int, title: str = "PRNet Live", visible: bool = True):
        if not glfw.init():
            raise GLContextError(NO_DISPLAY)
        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.VISIBLE, visible)
        # EGL first: the headless renderer also uses EGL, and a GLX context made in a
        # process that has an EGL one current kills it with an X error. Where EGL is
        # not there (Windows, macOS), the platform's own API.
        handle = None
        for api in (glfw.EGL_CONTEXT_API, glfw.NATIVE_CONTEXT_API):
            glfw.window_hint(glfw.CONTEXT_CREATION_API, api)
            handle = glfw.create_window(width, height, title, None, None)
            if handle:
                break
        if not handle:
            glfw.terminate()
            raise GLContextError("could not open an OpenGL 3.3 window: " + NO_DISPLAY)
        try:
            self.ctx = create_context(handle)
        except Exception:
            glfw.destroy_window(handle)
            glfw.terminate()
            raise
        self.handle: GlfwWindow | None = handle  # None once closed
        glfw.swap_interval(0)  # never block on vsync: latency matters more than tearing
        self.quit = False
        self.prog = load_program(self.ctx, "screen.vert", "screen.frag")
        corners = np.array([0, 0, 1, 0, 0, 1, 1, 1], np.float32)
        self.quad = self.ctx.vertex_array(self.prog, [(self.ctx.buffer(corners), "2f", "in_vert")])
        self.shown: np.ndarray | None = None
        self._keys: list[int] = []
        glfw.set_key_callback(handle, self._on_key)

    def press(self, key: int) -> None:
        """One key press (the key callback calls this; so can tests): Q and Esc quit,
        the others wait in ``keys()``."""
        if key in (glfw.KEY_Q, glfw.KEY_ESCAPE):
            self.quit = True
            if self.handle is not None:
                glfw.set_window_should_close(self.handle, True)
        else:
            self._keys.append(key)

    def keys(self) -> list[int]:
        """The keys pressed since the last call, oldest first."""
        keys, self._keys = self._keys, []
        return keys

    def _on_key(self, _win: object, key: int, _scancode: int, action: int, _mods: int) -> None:
        if action == glfw.PRESS:
            self.press(key)

    @property
    def open(self) -> bool:
        return self.handle is not None and not self.quit and not glfw.window_should_close(self.handle)

    def show(self, frame: moderngl.Texture, capture: bool = False) -> bool:
        """Draw ``frame`` (a texture: the renderer's output, or an uploaded image)
        letterboxed and process window events. Returns whether the window is still
        open. With ``capture``, what was drawn is kept in ``shown`` ((H, W, 3) BGR)."""
        assert self.handle is not None, "the window is closed"
        glfw.make_context_current(self.handle)
        fw, fh = glfw.get_framebuffer_size(self.handle)
        ctx = self.ctx
        ctx.screen.use()
        ctx.viewport = (0, 0, fw, fh)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.clear(0.0, 0.0, 0.0)
        if fw > 0 and fh > 0:
            s = min(fw / frame.width, fh / frame.height)
            x, y = frame.width * s / fw, frame.height * s / fh
            frame.use(0)
            self.prog["u_tex"] = 0
            self.prog["u_rect"] = (-x, -y, x, y)
            self.quad.render(moderngl.TRIANGLE_STRIP)
        if capture:
            data = ctx.screen.read(viewport=(0, 0, fw, fh), components=3, alignment=1)
            self.shown = np.frombuffer(data, np.uint8).reshape(fh, fw, 3)[::-1, :, ::-1].copy()
        glfw.swap_buffers(self.handle)
        glfw.poll_events()
        return self.open

    def poll(self) -> bool:
        """Process window events without drawing (nothing to show yet), so Q and the
        close button work while the first frame is on its way."""
        glfw.poll_events()
        return self.open

    def close(self) -> None:
        """Destroy the window and end glfw (the context goes with the window)."""
        if self.handle is not None:
            glfw.destroy_window(self.handle)
            self.handle = None
            glfw.terminate()


class WindowView:
    """The pipeline's view on a Window (see the module docstring): ``show(None)`` draws
    the renderer's output texture (``drawn()``: the picture it just drew, no upload),
    ``show(image)`` uploads ``image`` (a frame with the HUD or a status bar on it, or a
    run with no renderer). After each frame and poll, the keys pressed steer
    ``steering``."""

    def __init__(
        self,
        window: Window,
        steering: Steering,
        drawn: Callable[[], moderngl.Texture] | None = None,
    ):
        self.window, self.steering, self.drawn = window, steering, drawn
        self.texture: moderngl.Texture | None = None  # for images that come as pixels

    def show(self, image: np.ndarray | None, capture: bool = False) -> None:
        if image is None:
            assert self.drawn is not None, "nothing rendered to show"
            texture = self.drawn()
        else:
            h, w = image.shape[:2]
            if self.texture is None or self.texture.size != (w, h):
                if self.texture is not None:
                    self.texture.release()
                self.texture = self.window.ctx.texture((w, h), 3, alignment=1)
            self.texture.write(np.ascontiguousarray(image))
            texture = self.texture
        self.window.show(texture, capture)
        self._steer()

    def poll(self) -> None:
        """Handle window events (keys, close) while there is nothing to show yet."""
        self.window.poll()
        self._steer()

    def _steer(self) -> None:
        for key in self.window.keys():
            self.handle_key(key)

    def handle_key(self, key: int) -> None:
        """Act on one key press (Q and Esc the window handles itself)."""
        s = self.steering
        if key in (glfw.KEY_RIGHT, glfw.KEY_SPACE, glfw.KEY_E):
            s.step_effect(1)
        elif key == glfw.KEY_LEFT:
            s.step_effect(-1)
        elif glfw.KEY_1 <= key <= glfw.KEY_9:
            s.pick_effect(key - glfw.KEY_1)
        elif key == glfw.KEY_H:
            s.set_hud(not s.hud)

    def should_close(self) -> bool:
        return not self.window.open

    def close(self) -> None:
        if self.texture is not None:
            self.texture.release()
            self.texture = None
        self.window.close()
