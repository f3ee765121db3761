"""Still images and folders of images, so single photos and datasets run through the
same pipeline as video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.core.image import letterbox
from realtime.live.capture.base import (
    IMAGE_EXTENSIONS,
    CaptureError,
    FirstFrameSource,
    Source,
    as_bgr,
    cv2,
)


def read_image(path: Path) -> np.ndarray:
    """BGR uint8 or a CaptureError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise CaptureError(f"{path}: not a readable image (corrupt, or not an image format OpenCV reads)")
    return as_bgr(image)


class ImageSource(Source):
    """One photo, repeated ``frames`` times (None: forever, for a live preview)."""

    def __init__(self, path: str | Path, frames: int | None = None, fps: float = 30.0):
        self.path = Path(path)
        if not self.path.is_file():
            raise CaptureError(f"{path}: no such file (check the path)")
        self.name = self.path.name
        self.image = read_image(self.path)
        self.frames, self.fps, self.count = frames, fps, 0

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    def read(self) -> np.ndarray | None:
        if self.frames is not None and self.count >= self.frames:
            return None
        self.count += 1
        return self.image.copy()  # stages draw on frames; the original must stay clean


class FolderSource(FirstFrameSource):
    """Every image in a folder in name order, letterboxed to the first one's size;
    unreadable files are skipped and named in ``skipped``."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path = Path(path)
        if not self.path.is_dir():
            raise CaptureError(f"{path}: no such folder (check the path)")
        self.name = self.path.name
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise CaptureError(
                f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)}): point --input at a "
                "folder of images, a video or an image"
            )
        self.fps = fps
        self.skipped: list[Path] = []
        self._next = 0
        self._first = self._read_next()
        if self._first is None:
            raise CaptureError(f"{path}: none of the {len(self.files)} image files in the folder is readable")
        self._size = (self._first.shape[1], self._first.shape[0])

    def _read_next(self) -> np.ndarray | None:
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            try:
                return read_image(path)
            except CaptureError:
                self.skipped.append(path)
        if self.skipped:
            self.error = (
                f"{self.name}: skipped {len(self.skipped)} unreadable image(s), e.g. {self.skipped[0].name}"
            )
        return None

    def read(self) -> np.ndarray | None:
        image = self._take_first()
        if image is not None:
            return image
        image = self._read_next()
        return None if image is None else letterbox(image, self._size)
