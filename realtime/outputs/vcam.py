"""Frames into a virtual webcam that video-call apps (Zoom, Meet, Teams, OBS) can pick."""

from __future__ import annotations

import numpy as np

from realtime.core.image import letterbox
from realtime.outputs.files import OutputError

VCAM_HELP = (
    'Linux: `sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="PRNet Live"`; '
    "Windows/macOS: install OBS Studio and start its virtual camera once (see README)"
)


class VirtualCamOutput:
    """A virtual webcam (pyvirtualcam: v4l2loopback on Linux, OBS on Windows/macOS).

    backend: a pyvirtualcam backend name, including ones registered with
    ``pyvirtualcam.register_backend`` (how tests and custom sinks plug in).
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float = 30.0,
        device: str | None = None,
        backend: str | None = None,
    ):
        try:
            import pyvirtualcam
        except ImportError:
            raise OutputError("--vcam needs pyvirtualcam: pip install 'prnet-live[vcam]'") from None
        if backend is not None and backend not in pyvirtualcam.camera.BACKENDS:
            raise OutputError(
                f"unknown virtual camera backend {backend!r}: one of {sorted(pyvirtualcam.camera.BACKENDS)}"
            )
        try:
            self.cam = pyvirtualcam.Camera(
                width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR, device=device, backend=backend
            )
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else "no device"
            raise OutputError(f"no virtual camera available ({reason}): {VCAM_HELP}") from None
        self.size = (width, height)
        self.device = self.cam.device

    def write(self, image: np.ndarray, frame=None) -> None:
        if self.cam is not None:
            self.cam.send(np.ascontiguousarray(letterbox(image, self.size)))

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
            self.cam = None
