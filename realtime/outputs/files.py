"""Frames into files: a video, an image, a recording started and stopped while the run
goes on. Each output has ``write(image, frame=None)`` and ``close()``; everything that
can fail for a user reason fails at construction, with an OutputError that says how
to fix it, before the run starts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from realtime.core.image import letterbox
from realtime.core.types import UserError

#: Container -> fourcc. mp4v: OpenCV wheels ship no H.264 encoder, and mp4v plays nearly everywhere.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".bmp")


class OutputError(UserError, RuntimeError):
    """An output that cannot be opened; the message is one line saying why and what to do."""


def check_writable(path: str | Path) -> Path:
    """Make the parent folder and prove the file can be created, so a bad path fails in
    the first second instead of after a long run."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder: give a file name, e.g. {path / 'out.mp4'}")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}: choose a writable location") from None
    if not existed:
        path.unlink()
    return path


class VideoFileOutput:
    """cv2.VideoWriter opened on the first frame (its size fixes the video's); later
    frames of another size are letterboxed. ``close()`` finalises the container, which
    is what makes an .mp4 playable, so the pipeline always calls it."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if self.path.is_dir():
            check_writable(self.path)  # says it is a folder
        if ext not in VIDEO_CODECS:
            raise OutputError(
                f"{path}: unsupported video type {ext or '(none)'}: use one of {', '.join(VIDEO_CODECS)}"
            )
        check_writable(self.path)
        self.fps = fps if fps > 0 else 30.0
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None

    def write(self, image: np.ndarray, frame=None) -> None:
        if self.writer is None:
            self.size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                self.writer = None
                raise OutputError(f"OpenCV cannot encode {self.path} at {self.size}: try a .avi output")
        assert self.size is not None  # set with the writer
        self.writer.write(letterbox(image, self.size))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class ImageFileOutput:
    """A still (.png/.jpg): the last frame, written on close (a photo in, a photo out)."""

    def __init__(self, path: str | Path):
        self.path = check_writable(path)
        self.last: np.ndarray | None = None

    def write(self, image: np.ndarray, frame=None) -> None:
        self.last = image

    def close(self) -> None:
        if self.last is not None and not cv2.imwrite(str(self.path), self.last):
            raise OutputError(f"cannot write image {self.path}")
        self.last = None


def open_file_output(path: str | Path, fps: float = 30.0) -> VideoFileOutput | ImageFileOutput:
    """The file output for ``path``'s extension."""
    if Path(path).suffix.lower() in IMAGE_OUTPUTS:
        return ImageFileOutput(path)
    return VideoFileOutput(path, fps)


class Recording:
    """A video written from the next frame until ``close`` (the panel's Record). The
    lock keeps ``close`` (the caller's thread) from releasing the writer in the middle
    of a ``write`` (the render thread), which the pipeline may still call once after
    the recording was removed."""

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
