"""The face swap as users pick it ("swap"): each person in view gets their own source
face.

A ``FaceMap`` holds one ``FaceSwap`` (realtime.render.effects.swap: one source face
unwrapped, drawn on the faces given it) per source photo and says which face each
draws. Source faces are given to faces in the order the faces are first found, left to
right among faces found on the same frame, and a face keeps its own for as long as its
track lives; a source face whose face left is free for the next face found. A face can
also be given a source face by its track id (the control panel's cards), or be kept
live. Faces beyond the source faces get the first (``rest="first"``) or stay live
(``"none"``). Neither is registered by name: both need source photos first
(--source-face, the panel), so the run's RenderStage is given the FaceMap.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from realtime.core.types import Reconstruction
from realtime.render.effects.base import Effect


class FaceMap(Effect):
    """Draws each face with the swap (an Effect per source face, a FaceSwap) mapped to it.

    swaps: one per source face, in the order faces take them; names: where each came
    from (a file name). rest: "first" or "none", for faces beyond them.
    """

    name = "swap"
    listed = False  # made from source photos (--source-face, the panel), not by name
    RESTS: ClassVar[tuple[str, ...]] = ("first", "none")

    def __init__(self, swaps: list[Effect], names: list[str] | None = None, rest: str = "first"):
        super().__init__()
        if rest not in self.RESTS:
            raise ValueError(f"rest must be one of {self.RESTS}, not {rest!r}")
        self.swaps = list(swaps)
        self.names = list(names) if names is not None else [s.label for s in swaps]
        self.rest = rest
        self.assigned: dict[int, int] = {}  # track id -> index in swaps, or -1: live
        self.pinned: dict[int, tuple[Effect | None, str]] = {}  # track id -> its own swap (None: live)
        self._lock = threading.Lock()  # the panel pins from its thread

    # -- steering (any thread) -------------------------------------------------------
    def pin(self, track: int, swap: Effect | None, name: str = "") -> None:
        """Give face ``track`` its own swap, or with None its live self, for as long
        as its track lives."""
        with self._lock:
            self.pinned[track] = (swap, name or (swap.label if swap is not None else ""))

    def mapping(self) -> dict[int, str | None]:
        """Track id -> the name of its source face (None: live), for the faces seen last frame."""
        with self._lock:
            out = {t: (self.names[k] if k >= 0 else None) for t, k in self.assigned.items()}
            out.update({t: (name if swap is not None else None) for t, (swap, name) in self.pinned.items()})
            return out

    def preview_copy(self) -> FaceMap:
        """A map of the swaps' preview copies with no faces assigned (see Effect.preview_copy)."""
        twin = FaceMap([s.preview_copy() for s in self.swaps], self.names, self.rest)
        with self._lock:
            twin.pinned = {
                t: (None if swap is None else swap.preview_copy(), name)
                for t, (swap, name) in self.pinned.items()
            }
        return twin

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
                    effect = self.swaps[k] if k >= 0 else None
                if effect is not None:
                    groups.setdefault(id(effect), (effect, []))[1].append(i)
            return list(groups.values())

    def _assign(self, faces: list[Reconstruction]) -> None:
        """Forget tracks that ended; give new faces, left to right, the free swaps."""
        alive = {r.track_id for r in faces}
        self.assigned = {t: k for t, k in self.assigned.items() if t in alive}
        self.pinned = {t: p for t, p in self.pinned.items() if t in alive}
        new = [r for r in faces if r.track_id not in self.assigned and r.track_id not in self.pinned]
        for rec in sorted(new, key=lambda r: float(r.landmarks[:, 0].mean())):
            taken = set(self.assigned.values())
            free = [k for k in range(len(self.swaps)) if k not in taken]
            if free:
                self.assigned[rec.track_id] = free[0]
            else:
                self.assigned[rec.track_id] = 0 if self.rest == "first" and self.swaps else -1
