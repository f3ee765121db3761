"""The panel's two pipeline outputs: the feed (the newest frame, for the page's stream
and snapshots) and a recording (an mp4 started and stopped from the page).

Both are ``realtime.pipeline.Output``s, written on the render thread, so ``write``
must never wait on a viewer: the feed only keeps a reference to the frame and, when
someone watches, pokes the server's event loop; the viewers' side encodes the JPEG,
once per frame whoever asks first. A slow viewer simply finds a newer frame when it
comes back (frames are dropped, never queued).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from realtime.outputs import VideoFileOutput


class PanelFeed:
    """The newest output frame, shared by every viewer of the stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop, quality: int = 80):
        self.loop, self.quality = loop, quality
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._count = 0  # frames written so far
        self._jpeg: tuple[int, bytes] | None = None  # (frame count, JPEG) cached for all viewers
        self._event = asyncio.Event()  # replaced on every frame; only touched on the loop
        self.viewers = 0  # only frames written while someone watches wake the loop
        self.closed = False

    # -- the render thread ---------------------------------------------------------
    def write(self, image: np.ndarray, frame=None) -> None:
        with self._lock:
            self._image, self._count = image, self._count + 1
        if self.viewers and not self.closed:
            try:
                self.loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed under us: the panel is going away
                pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:
            pass

    # -- the server's event loop -----------------------------------------------------
    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def latest(self) -> tuple[int, np.ndarray | None]:
        """(frame count, image) of the newest frame."""
        with self._lock:
            return self._count, self._image

    async def next_frame(self, seen: int, timeout: float = 0.5) -> int:
        """Wait until a frame newer than ``seen`` was written (or ``timeout``); its count."""
        count = self.latest()[0]
        if count > seen or self.closed:
            return count
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        return self.latest()[0]

    async def jpeg(self) -> tuple[int, bytes | None]:
        """(frame count, JPEG) of the newest frame, encoded off the loop and cached."""
        count, image = self.latest()
        cached = self._jpeg
        if cached is not None and cached[0] == count:
            return cached
        if image is None:
            return count, None
        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        ok, buf = await self.loop.run_in_executor(None, cv2.imencode, ".jpg", image, params)
        if not ok:
            return count, None
        if self._jpeg is None or self._jpeg[0] < count:
            self._jpeg = (count, buf.tobytes())
        return count, buf.tobytes()


class Recording:
    """An mp4 written from the next frame until ``close``. The lock keeps ``close``
    (the panel's thread) from releasing the writer in the middle of a ``write`` (the
    render thread), which the pipeline may still call once after removing us."""

    def __init__(self, path: Path, fps: float):
        self.path = path
        self.video = VideoFileOutput(path, fps)
        self.started = time.monotonic()
        self.frames = 0
        self._lock = threading.Lock()
        self._closed = False

    def write(self, image: np.ndarray, frame=None) -> None:
        with self._lock:
            if not self._closed:
                self.video.write(image)
                self.frames += 1

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.video.close()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started
