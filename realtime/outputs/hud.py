"""The HUD: the run's live figures (fps, latency percentiles, dropped frames, each
stage's time), the faces' status line and each face's number, drawn on the picture.

One drawing for every place the picture goes: the pipeline draws it once on the frame
the outputs get, and the window shows that same frame, so a file, the virtual camera,
the stream, the panel and the window all show one HUD. One switch, ``Hud.on``, which
the run's Controls sets (the window's H key, the panel's checkbox, ``--hud``).
"""

from __future__ import annotations

import time
from typing import Protocol

import cv2
import numpy as np

from realtime.core.types import FaceResult

GREEN = (120, 255, 120)


class Figures(Protocol):
    """Where the figures come from (realtime.live.profiler.Profiler is one)."""

    dropped: int

    def rolling(self) -> dict: ...


def figure_lines(figures: Figures) -> list[str]:
    """The rolling figures as text: fps and latency, dropped frames, one line a stage."""
    s = figures.rolling()
    lat = s["latency_ms"]
    lines = [
        f"{s['fps']:.1f} fps  latency p50 {lat['p50']:.0f} p95 {lat['p95']:.0f} p99 {lat['p99']:.0f} ms",
        f"dropped {figures.dropped}",
    ]
    lines += [f"{k:<7} {v['p50']:6.1f} {v['p95']:6.1f} ms" for k, v in s["stages"].items()]
    return lines


def face_tags(result: FaceResult | None) -> tuple[tuple[int, tuple[float, float]], ...]:
    """(track id, top-left of its landmarks) of each face, for the faces' numbers."""
    if result is None:
        return ()
    return tuple((r.track_id, tuple(r.landmarks[:, :2].min(0))) for r in result.reconstructions)


def draw_hud(image: np.ndarray, lines: list[str], faces: tuple = ()) -> np.ndarray:
    """A copy of ``image`` with ``lines`` in its top-left corner on a darkened box, and
    each face's number (its track id, as the control panel's cards show it) above it:
    ``faces`` are (track id, (x, y)) pairs."""
    out = image.copy()
    scale = max(0.35, min(out.shape[:2]) / 1000)
    for track, (x, y) in faces:
        org = (int(x), max(int(y) - 6, 12))
        for colour, thickness in (((0, 0, 0), 3), (GREEN, 1)):  # outlined: readable on any skin
            cv2.putText(
                out, f"#{track}", org, cv2.FONT_HERSHEY_SIMPLEX, 1.4 * scale, colour, thickness, cv2.LINE_AA
            )
    step = int(22 * scale / 0.5)
    width = int(max(len(t) for t in lines) * 11 * scale / 0.5)
    h = min(out.shape[0], step * len(lines) + step // 2)
    w = min(out.shape[1], width)
    out[:h, :w] = (out[:h, :w] * 0.35).astype(np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(out, text, (6, step * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, GREEN, 1, cv2.LINE_AA)
    return out


class Hud:
    """``hud(image, result)``: the frame with the HUD while ``on``, else the frame
    itself. The figures' text is refreshed every ``period_s`` (readable numbers, and
    no statistics a frame); the status and the faces' numbers follow every frame."""

    def __init__(self, figures: Figures, on: bool = False, period_s: float = 0.25):
        self.figures, self.on, self.period_s = figures, on, period_s
        self._lines: list[str] = []
        self._at = -1e9

    def set(self, on: bool) -> None:
        self.on = bool(on)

    def lines(self) -> list[str]:
        """The figures' text, at most ``period_s`` old."""
        now = time.monotonic()
        if now - self._at >= self.period_s:
            self._lines, self._at = figure_lines(self.figures), now
        return self._lines

    def __call__(self, image: np.ndarray, result: FaceResult | None) -> np.ndarray:
        if not self.on:
            return image
        status = result.status if result is not None else ""
        return draw_hud(image, [status, *self.lines()] if status else self.lines(), face_tags(result))
