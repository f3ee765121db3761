"""The live window: shows rendered frames, steers the run from the keyboard, and
draws the HUD.

The window owns the GL context the renderer draws in, so showing a frame is drawing
the renderer's output texture into the back buffer: no read-back. Keys: right /
space / E next effect, left previous, 1-9 pick one, H toggles the HUD, Q or Esc
quits; the close button quits too. The keys steer through a ``Steering`` (the app's
``Controls``, the one control surface of a run; a standalone window cycles its own
list of effects).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import cv2
import glfw
import moderngl
import numpy as np

from realtime.render.context import GLContextError, create_context
from realtime.render.effects import EFFECTS
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
    """A window's own effect list and HUD switch, for a window with no run to steer."""

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

    Each frame: ``show(renderer.output, hud_lines)``; it returns False once the
    user asked to quit. The keys steer ``steering``; without one, the window cycles
    ``effects`` itself (``effect`` is the one picked)."""

    def __init__(
        self,
        width: int,
        height: int,
        title: str = "PRNet Live",
        effects: tuple[str, ...] | list[str] = EFFECTS,
        effect: str | None = None,
        visible: bool = True,
        steering: Steering | None = None,
    ):
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
        self.steering: Steering = steering if steering is not None else EffectCycle(effects, effect)
        self.quit = False
        self.prog = load_program(self.ctx, "screen.vert", "screen.frag")
        corners = np.array([0, 0, 1, 0, 0, 1, 1, 1], np.float32)
        self.quad = self.ctx.vertex_array(self.prog, [(self.ctx.buffer(corners), "2f", "in_vert")])
        self.hud_tex: moderngl.Texture | None = None
        self.hud_text: list[str] = []
        self.shown: np.ndarray | None = None
        glfw.set_key_callback(handle, self._on_key)

    @property
    def effect(self) -> str:
        return self.steering.effect

    @property
    def hud(self) -> bool:
        return self.steering.hud

    def handle_key(self, key: int) -> None:
        """Act on one key press (the key callback calls this; so can tests)."""
        s = self.steering
        if key in (glfw.KEY_RIGHT, glfw.KEY_SPACE, glfw.KEY_E):
            s.step_effect(1)
        elif key == glfw.KEY_LEFT:
            s.step_effect(-1)
        elif glfw.KEY_1 <= key <= glfw.KEY_9:
            s.pick_effect(key - glfw.KEY_1)
        elif key == glfw.KEY_H:
            s.set_hud(not s.hud)
        elif key in (glfw.KEY_Q, glfw.KEY_ESCAPE):
            self.quit = True
            if self.handle is not None:
                glfw.set_window_should_close(self.handle, True)

    def _on_key(self, _win: object, key: int, _scancode: int, action: int, _mods: int) -> None:
        if action == glfw.PRESS:
            self.handle_key(key)

    @property
    def open(self) -> bool:
        return self.handle is not None and not self.quit and not glfw.window_should_close(self.handle)

    def show(
        self, frame: moderngl.Texture, hud_lines: list[str] | None = None, capture: bool = False
    ) -> bool:
        """Draw ``frame`` (a renderer's output texture) letterboxed, the HUD on top,
        and process window events. Returns whether the window is still open. With
        ``capture``, what was drawn is kept in ``shown`` ((H, W, 3) BGR) for checks."""
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
            self._draw(frame, (-x, -y, x, y))
            if self.hud:
                self._draw_hud(
                    [f"effect: {self.effect}  (arrows: change, H: HUD, Q: quit)", *(hud_lines or [])], fw, fh
                )
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

    def _draw(self, tex: moderngl.Texture, rect: tuple[float, float, float, float]) -> None:
        tex.use(0)
        self.prog["u_tex"] = 0
        self.prog["u_rect"] = rect
        self.quad.render(moderngl.TRIANGLE_STRIP)

    def _draw_hud(self, lines: list[str], fw: int, fh: int) -> None:
        """Text is drawn with OpenCV into a small texture, only when it changes."""
        if lines != self.hud_text or self.hud_tex is None:
            self.hud_text = list(lines)
            width = 12 + max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] for t in lines)
            img = np.zeros((10 + 20 * len(lines), width, 4), np.uint8)
            img[..., 3] = 140
            for i, t in enumerate(lines):
                cv2.putText(
                    img,
                    t,
                    (6, 22 + 20 * i - 6),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.5,
                    (255, 255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
            if self.hud_tex is not None:
                self.hud_tex.release()
            self.hud_tex = self.ctx.texture((img.shape[1], img.shape[0]), 4, img, alignment=1)
        w, h = self.hud_tex.size
        x1, y0 = -1 + 2 * w / fw, 1 - 2 * h / fh
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self._draw(self.hud_tex, (-1.0, y0, x1, 1.0))
        self.ctx.disable(moderngl.BLEND)

    def close(self) -> None:
        """Destroy the window and end glfw (the context goes with the window)."""
        if self.handle is not None:
            if self.hud_tex is not None:
                self.hud_tex.release()
            glfw.destroy_window(self.handle)
            self.handle = None
            glfw.terminate()


class WindowView:
    """The pipeline's View on a Window: shows the renderer's output texture when the
    frame is the one it just drew (``drawn``, the render stage's ``on_drawn``: no
    upload; its image is None when it was not read back), else the frame itself
    uploaded to a texture (pass-through, status bar). The HUD text is redrawn at
    ``hud_period_s`` (readable figures, no per-frame text)."""

    def __init__(self, window: Window, hud_lines: Callable[[], list[str]], hud_period_s: float = 0.25):
        self.window, self.hud_lines, self.hud_period_s = window, hud_lines, hud_period_s
        self.rendered: tuple[np.ndarray | None, moderngl.Texture] | None = None  # the renderer's last
        self.texture: moderngl.Texture | None = None
        self._hud: list[str] = []
        self._hud_t = -1e9

    def drawn(self, image: np.ndarray | None, texture: moderngl.Texture) -> None:
        self.rendered = (image, texture)

    def show(self, image: np.ndarray | None) -> None:
        if self.rendered is not None and image is self.rendered[0]:
            texture = self.rendered[1]
        else:
            assert image is not None, "nothing rendered to show"
            h, w = image.shape[:2]
            if self.texture is None or self.texture.size != (w, h):
                if self.texture is not None:
                    self.texture.release()
                self.texture = self.window.ctx.texture((w, h), 3, alignment=1)
            self.texture.write(image)
            texture = self.texture
        hud = None
        if self.window.hud:
            now = time.monotonic()
            if now - self._hud_t >= self.hud_period_s:
                self._hud, self._hud_t = self.hud_lines(), now
            hud = self._hud
        self.window.show(texture, hud)

    def poll(self) -> None:
        """Handle window events (keys, close) while there is nothing to show yet."""
        self.window.poll()

    def should_close(self) -> bool:
        return not self.window.open

    def close(self) -> None:
        if self.texture is not None:
            self.texture.release()
            self.texture = None
        self.window.close()
