"""Video files. Reading is as fast as possible; the grabber paces it at ``fps`` when
previewing. A file that stops decoding before its stated length is damaged: we keep
what decoded and say so in ``error``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.core.image import letterbox
from realtime.live.capture.base import CaptureError, FirstFrameSource, as_bgr, cv2


class VideoSource(FirstFrameSource):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise CaptureError(f"{path}: no such file (check the path)")
        self.cap = cv2.VideoCapture(str(self.path))
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok or first is None:
            self.cap.release()
            raise CaptureError(
                f"{path}: not a readable video or image (unsupported format, or the file is "
                "truncated/corrupt): re-export it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`"
            )
        self._first = as_bgr(first)
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 30.0
        self.frame_count = max(0, int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._size = (first.shape[1], first.shape[0])
        self.frames_read = 0

    def read(self) -> np.ndarray | None:
        image = self._take_first()
        if image is None:
            if self.cap is None:
                return None
            ok, image = self.cap.read()
            if not ok or image is None:
                self._check_complete()
                self.close()
                return None
            image = as_bgr(image)
        self.frames_read += 1
        return image

    def _check_complete(self) -> None:
        """Container frame counts are estimates, so only a clear shortfall counts as damage."""
        n, total = self.frames_read, self.frame_count
        if total and n < 0.95 * total - 1:
            self.error = (
                f"{self.name}: video stopped decoding at frame {n} of {total}: the file is truncated "
                f"or corrupt; the {n} readable frames were processed"
            )

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def clip_frames(
    path: Path, size: tuple[int, int], step: int = 1, limit: int | None = None, fill: int = 30
) -> list[np.ndarray]:
    """Every ``step``-th frame of a recorded clip (the first ``limit`` of them), fitted to
    ``size`` (width, height) as a camera of that size would show it (aspect kept,
    enlarged with cubic, padded with ``fill``): the frames the benchmarks and the
    evaluations feed the pipeline. CaptureError (one line) when the clip is unreadable."""
    with VideoSource(path) as src:
        return [letterbox(img, size, fill=fill) for img in src.read_all()[::step][:limit]]
