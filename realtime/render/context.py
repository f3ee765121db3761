"""Where GL comes from: the live window's context, or a headless EGL one.

Tests, batch runs and servers have no display, so they render through EGL (Mesa's
llvmpipe on a CPU-only machine); the live app renders into its glfw window's context
so the frame can be shown without a copy. Either way the renderer sees one
``moderngl.Context``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import moderngl

from realtime.core.types import UserError

if TYPE_CHECKING:  # glfw's stub names a window handle; glfw itself is imported only when used
    from glfw import _GLFWwindowPointerT as GlfwWindow

GL_VERSION = 330


def raster_threads(cores: int | None = None) -> int:
    """llvmpipe's rasteriser threads for a machine of ``cores``: all but the two the
    inference thread and onnxruntime's helper keep busy, at least one, at most four.

    llvmpipe starts one per core by default; on 2 cores its two threads woke at each
    frame's flush and took both cores from the inference thread and onnxruntime's
    helper at once (the pipeline's critical path), for no gain in CPU: one helper
    keeps the rasterising off the GL thread and fights half as hard. Measured on the
    2-core EPYC beside a load of 10 (tiger mask, 640x480): the process's CPU per frame
    the same with 0, 1 or 2 threads within the noise, paced p95 latency 88 ms with 1
    against 100 with 2 and 102 with 0 (runs there vary by a third: docs/benchmarks.md)."""
    n = cores if cores is not None else (os.cpu_count() or 2)
    return max(1, min(4, n - 2))


# Mesa reads it when the first context of the process is made (the window's or EGL's),
# and every module that makes one imports this one first; a value the user set wins.
os.environ.setdefault("LP_NUM_THREADS", str(raster_threads()))
INSTALL_HINT = (
    "install EGL and Mesa (apt-get install libegl1 libgl1 libgl1-mesa-dri libegl-mesa0) for "
    "headless rendering, or run with a display (set DISPLAY, or start Xvfb)"
)


class GLContextError(UserError, RuntimeError):
    """No OpenGL 3.3 context could be made; the message says what to install."""


def create_context(window: GlfwWindow | None = None) -> moderngl.Context:
    """A moderngl context: the current one of ``window`` (a glfw window) when given,
    else a standalone headless EGL context.

    Raises GLContextError with one line saying what to install or set."""
    if window is not None:
        import glfw

        glfw.make_context_current(window)
        try:
            moderngl.init_context(_GlfwLoader())
            ctx = moderngl.get_context()
            if ctx.version_code < GL_VERSION:
                raise RuntimeError(f"OpenGL {ctx.version_code} < {GL_VERSION}")
        except Exception as e:
            raise GLContextError(
                f"the window's OpenGL context is unusable ({_first_line(e)}): "
                "OpenGL 3.3 is needed; " + INSTALL_HINT
            ) from None
        return ctx
    try:
        # the stub types each of create_context's extra keywords as a dict
        return moderngl.create_context(standalone=True, backend="egl", require=GL_VERSION)  # pyright: ignore[reportArgumentType]
    except Exception as e:
        raise GLContextError(f"no headless OpenGL context ({_first_line(e)}): {INSTALL_HINT}") from None


class GilFreeSync:
    """glFlush and glFinish called through ctypes, which lets go of Python's lock (the
    GIL) for the call, for software rasterisers: the GL thread then waits for llvmpipe's
    rasteriser threads, or with none does the rasterising itself, while the inference
    thread runs Python. moderngl's calls keep the lock, and a texture upload that made
    llvmpipe finish the previous frame held up every other thread for that whole time
    (a Python thread beside the renderer saw gaps of 10-38 ms at 640x480; 4-5 ms with
    the renderer idle, from the machine's load). The renderer finishes each frame's
    drawing with ``flush`` and waits with ``finish`` before it touches the frame's
    textures again or reads pixels, so moderngl's own calls find nothing to wait for.

    ``for_context`` gives None on a hardware GPU (waiting there would only stall the
    pipelined GPU) or where the GL functions cannot be found (moderngl then waits, as
    before)."""

    def __init__(self, flush: Callable[[], None], finish: Callable[[], None]):
        self.flush, self.finish = flush, finish

    @classmethod
    def for_context(cls, ctx: moderngl.Context, software: bool) -> GilFreeSync | None:
        if not software:
            return None
        found = _gl_flush_finish()
        if found is None:
            return None
        sync = cls(*found)
        ctx.finish()
        sync.finish()  # callable with this context current: it works here
        return sync


@functools.cache
def _gl_flush_finish() -> tuple[Callable[[], None], Callable[[], None]] | None:
    """glFlush and glFinish as ctypes functions (looked up once a process: finding the
    library runs ldconfig), from EGL's or GLX's loader: glvnd's entry points dispatch
    to whatever context is current on the calling thread."""
    for name in ("EGL", "GL"):
        path = ctypes.util.find_library(name)
        if path is None:
            continue
        try:
            lib = ctypes.CDLL(path)
            get = lib.eglGetProcAddress if name == "EGL" else lib.glXGetProcAddressARB
        except (OSError, AttributeError):
            continue
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        flush, finish = get(b"glFlush"), get(b"glFinish")
        if flush and finish:
            proto = ctypes.CFUNCTYPE(None)
            return proto(flush), proto(finish)
    return None


class _GlfwLoader:
    """Looks GL functions up through glfw, so moderngl works with the window's
    context whether glfw made it with EGL or GLX (moderngl's own detection knows
    only GLX on Linux)."""

    def load_opengl_function(self, name: str) -> int:
        import glfw

        # ctypes returns the function's c_void_p as an int (None for NULL); the stub says c_void_p
        return cast("int | None", glfw.get_proc_address(name)) or 0

    def release(self) -> None:
        pass


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
