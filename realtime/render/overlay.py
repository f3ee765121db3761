"""What overlay effects draw with (``GLOverlay``: points, bars, the mesh's grid lines)
and the uniform setter every program of the renderer uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import moderngl
import numpy as np


def set_uniform(prog: moderngl.Program, name: str, value: object) -> None:
    """Set a uniform the compiler kept (unused ones are optimised away); an array
    (e.g. the light's (9, 3) ``u_sh``) is written as raw float32."""
    if name in prog:
        uniform = cast(moderngl.Uniform, prog[name])
        if isinstance(value, np.ndarray):
            uniform.write(np.ascontiguousarray(value, np.float32).tobytes())
        else:
            uniform.value = value


def thick_segments(segments: np.ndarray, width: float) -> np.ndarray:
    """(N, 2, 3) segments -> (N * 6, 3) triangle vertices of screen-space bars (core GL
    draws only 1 px lines)."""
    d = segments[:, 1, :2] - segments[:, 0, :2]
    perp = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    off = np.concatenate([perp * width / 2, np.zeros((len(d), 1))], 1)
    a0, a1 = segments[:, 0] - off, segments[:, 0] + off
    b0, b1 = segments[:, 1] - off, segments[:, 1] + off
    return np.stack([a0, a1, b0, a1, b1, b0], 1).reshape(-1, 3).astype(np.float32)


class GLOverlay:
    """The renderer's ``effects.base.Overlay``: what overlay effects draw with, in frame
    pixels; colours are BGRA in [0, 1] (the framebuffer holds BGR). ``unit`` is the
    frame's size over 640 px, to scale marks with the frame.

    Built by the renderer with its flat program, ``draw(vertices, mode)`` (frame-pixel
    vertices drawn with that program) and ``wire(face)`` (a face's grid lines)."""

    def __init__(
        self,
        flat: moderngl.Program,
        draw: Callable[[np.ndarray, int], None],
        wire: Callable[[int], None],
    ):
        self.flat, self._draw, self._wire = flat, draw, wire
        self.unit = 1.0

    def points(self, points: np.ndarray, colour: tuple[float, ...], size: float) -> None:
        """(N, 3) points as round dots ``size`` pixels across."""
        prog = self.flat
        set_uniform(prog, "u_round", True)
        set_uniform(prog, "u_point_size", float(size))
        set_uniform(prog, "u_color", colour)
        self._draw(points, moderngl.POINTS)

    def bars(self, segments: np.ndarray, colour: tuple[float, ...], width: float) -> None:
        """(N, 2, 3) segments as bars ``width`` pixels wide (core GL draws 1 px lines)."""
        prog = self.flat
        set_uniform(prog, "u_round", False)
        set_uniform(prog, "u_color", colour)
        self._draw(thick_segments(segments, width), moderngl.TRIANGLES)

    def wire(self, face: int, colour: tuple[float, ...]) -> None:
        """Face number ``face``'s UV grid lines (its vertices are already uploaded)."""
        prog = self.flat
        set_uniform(prog, "u_round", False)
        set_uniform(prog, "u_color", colour)
        self._wire(face)
