"""Per-track memory for effects that smooth something over a face's frames (its light,
seam correction, tone, neutral shape, detail gain), bounded so that a long run with
faces coming and going does not grow it: past MAX_TRACKS it forgets every track at
once (a track then starts afresh, as a new face would)."""

from __future__ import annotations

from typing import Any

MAX_TRACKS = 64


class TrackMemory(dict[int, Any]):
    """A dict of track id -> state, bounded at MAX_TRACKS."""

    def put(self, track: int, value: Any) -> Any:
        if track not in self and len(self) >= MAX_TRACKS:
            self.clear()
        self[track] = value
        return value

    def smooth(self, track: int, value: Any, rate: float) -> Any:
        """``value`` averaged into the track's running value (exponentially, ``rate`` the
        newest frame's weight); a new track starts at ``value``."""
        old = self.get(track)
        return self.put(track, value if old is None else old + rate * (value - old))
