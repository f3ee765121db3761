"""Webcams through OpenCV. We ask for MJPG because uncompressed 720p/1080p over USB 2
is bandwidth-limited to a few fps; drivers grant what they can, so we report what we got."""

from __future__ import annotations

import platform
import time

import numpy as np

from realtime.core.image import letterbox
from realtime.live.capture.base import CaptureError, FirstFrameSource, cv2


def _api() -> int:
    """The native capture API per OS: V4L2 honours FOURCC/size requests, CAP_ANY may not."""
    return {"Linux": cv2.CAP_V4L2, "Darwin": cv2.CAP_AVFOUNDATION, "Windows": cv2.CAP_DSHOW}.get(
        platform.system(), cv2.CAP_ANY
    )


class CameraSource(FirstFrameSource):
    """Camera by index (0, 1, ...) or device path (/dev/video2).

    ``granted`` holds what the driver actually gave (width, height, fps, fourcc).
    """

    live = True

    def __init__(
        self,
        device: int | str = 0,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        fourcc: str = "MJPG",
    ):
        self.device = device
        self.request = {"width": width, "height": height, "fps": fps, "fourcc": fourcc}
        self.name = f"camera {device}"
        self.cap: cv2.VideoCapture | None = None
        self.granted: dict = {}
        if not self._open():
            hint = (
                "check `ls /dev/video*`" if platform.system() == "Linux" else "check the camera is connected"
            )
            raise CaptureError(
                f"no camera at {device!r}: {hint}, or run without --camera to use the demo source"
            )

    def _open(self) -> bool:
        cap = (
            cv2.VideoCapture(self.device, _api())
            if isinstance(self.device, int)
            else cv2.VideoCapture(self.device)
        )
        if not cap.isOpened():
            cap.release()
            return False
        r = self.request
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*r["fourcc"]))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, r["width"])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, r["height"])
        cap.set(cv2.CAP_PROP_FPS, r["fps"])
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the grabber wants the newest frame, not a queue
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            return False
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)) if code > 0 else "?"
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.granted = {
            "width": first.shape[1],
            "height": first.shape[0],
            "fps": fps if 0 < fps < 1000 else r["fps"],
            "fourcc": fourcc,
        }
        self.fps = self.granted["fps"]
        self._size = self._size if self._size != (0, 0) else (first.shape[1], first.shape[0])
        self.cap, self._first = cap, first
        return True

    def read(self) -> np.ndarray | None:
        # ``size`` stays that of the first opening: a replugged camera granting another
        # size is letterboxed to it, so writers and renderers keep one size.
        image = self._take_first()
        if image is not None:
            return letterbox(image, self._size)
        if self.cap is None:
            return None
        ok, image = self.cap.read()
        return letterbox(image, self._size) if ok else None

    @property
    def can_recover(self) -> bool:
        return True

    def recover(self) -> bool:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        if not self._open():
            time.sleep(0.05)
            return False
        return True

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
