"""Face mapping: each person in view gets their own swap source.

Sources are given to faces in the order the faces are first found, left to right among
faces found on the same frame, and a face keeps its source for as long as its track
lives; a source whose face left is free for the next face found. A face can also be
given a source by its track id (the control panel's cards), or be kept live. Faces
beyond the sources get the first source (``rest="first"``) or stay live (``"none"``).
"""

from __future__ import annotations

import threading
from typing import ClassVar

from realtime.core.types import Reconstruction
from realtime.render.effects.base import Effect


class FaceMap(Effect):
    """Draws each face with the swap (an Effect per source, e.g. FaceSwap) mapped to it.

    sources: the swaps, in the order faces take them; names: where each came from (a
    file name). rest: "first" or "none", for faces beyond the sources.
    """

    name = "swap"
    listed = False  # made from source photos (--source-face, the panel), not by name
    RESTS: ClassVar[tuple[str, ...]] = ("first", "none")

    def __init__(self, sources: list[Effect], names: list[str] | None = None, rest: str = "first"):
        super().__init__()
        if rest not in self.RESTS:
            raise ValueError(f"rest must be one of {self.RESTS}, not {rest!r}")
        self.sources = list(sources)
        self.names = list(names) if names is not None else [s.label for s in sources]
        self.rest = rest
        self.assigned: dict[int, int] = {}  # track id -> index in sources, or -1: live
        self.pinned: dict[int, tuple[Effect | None, str]] = {}  # track id -> its own source (None: live)
        self._lock = threading.Lock()  # the panel pins from its thread

    # -- steering (any thread) -------------------------------------------------------
    def pin(self, track: int, source: Effect | None, name: str = "") -> None:
        """Give face ``track`` its own source, or with None its live self, for as long
        as its track lives."""
        with self._lock:
            self.pinned[track] = (source, name or (source.label if source is not None else ""))

    def mapping(self) -> dict[int, str | None]:
        """Track id -> the name of its source (None: live), for the faces seen last frame."""
        with self._lock:
            out = {t: (self.names[k] if k >= 0 else None) for t, k in self.assigned.items()}
            out.update({t: (name if src is not None else None) for t, (src, name) in self.pinned.items()})
            return out

    # -- drawing (the render thread) ---------------------------------------------------
    def per_face(self, faces: list[Reconstruction]) -> list[tuple[Effect, list[int]]]:
        with self._lock:
            self._assign(faces)
            groups: dict[int, tuple[Effect, list[int]]] = {}
            for i, rec in enumerate(faces):
                if rec.track_id in self.pinned:
                    effect = self.pinned[rec.track_id][0]
                else:
                    k = self.assigned[rec.track_id]
                    effect = self.sources[k] if k >= 0 else None
                if effect is not None:
                    groups.setdefault(id(effect), (effect, []))[1].append(i)
            return list(groups.values())

    def _assign(self, faces: list[Reconstruction]) -> None:
        """Forget tracks that ended; give new faces, left to right, the free sources."""
        alive = {r.track_id for r in faces}
        self.assigned = {t: k for t, k in self.assigned.items() if t in alive}
        self.pinned = {t: p for t, p in self.pinned.items() if t in alive}
        new = [r for r in faces if r.track_id not in self.assigned and r.track_id not in self.pinned]
        for rec in sorted(new, key=lambda r: float(r.landmarks[:, 0].mean())):
            taken = set(self.assigned.values())
            free = [k for k in range(len(self.sources)) if k not in taken]
            if free:
                self.assigned[rec.track_id] = free[0]
            else:
                self.assigned[rec.track_id] = 0 if self.rest == "first" and self.sources else -1
