"""The one interface every frame source implements, so the grabber and the pipeline
never care where pixels come from."""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from realtime.core.types import UserError

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class CaptureError(UserError, RuntimeError):
    """Input that cannot be used; the message is one line saying why and what to do."""


class Source(ABC):
    """A producer of BGR uint8 frames.

    ``live`` sources (cameras) deliver frames in real time by themselves; the others can
    be read as fast as wanted, and the grabber paces them at ``fps`` for preview.
    ``error`` is set when input ended early because it was damaged.
    """

    name: str = ""
    fps: float = 30.0
    live: bool = False
    error: str | None = None

    @property
    @abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames read()."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame, or None when input has ended (or a camera stopped answering)."""

    def read_all(self) -> list[np.ndarray]:
        """Every remaining frame in order, for offline use (tools, benchmarks, tests);
        from a camera, only once it stops sending."""
        frames = []
        while (image := self.read()) is not None:
            frames.append(image)
        return frames

    def recover(self) -> bool:
        """Try to get a lost source back (a replugged camera); True when it is back."""
        return False

    @property
    def can_recover(self) -> bool:
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FirstFrameSource(Source):
    """A source that reads one frame on opening, so unreadable input fails at once
    (one clear line before the run starts) and the frame size is known; ``read`` hands
    that frame out first (``_take_first``)."""

    _first: np.ndarray | None = None
    _size: tuple[int, int] = (0, 0)

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def _take_first(self) -> np.ndarray | None:
        image, self._first = self._first, None
        return image


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey or BGRA images become BGR uint8, the only layout downstream stages accept."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(image.max())))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image
