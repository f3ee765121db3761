"""Pick the source for a path: folder, image or video."""

from __future__ import annotations

from pathlib import Path

from realtime.live.capture.base import IMAGE_EXTENSIONS, CaptureError, Source
from realtime.live.capture.image import FolderSource, ImageSource
from realtime.live.capture.video import VideoSource


def open_input(path: str | Path, image_frames: int | None = None, fps: float = 30.0) -> Source:
    """A folder becomes a FolderSource, an image file an ImageSource (repeated
    ``image_frames`` times, None: forever), anything else is tried as a video."""
    p = Path(path)
    if p.is_dir():
        return FolderSource(p, fps=fps)
    if not p.exists():
        raise CaptureError(f"{path}: no such file or folder (check the path)")
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(p, frames=image_frames, fps=fps)
    return VideoSource(p)
