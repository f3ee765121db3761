"""A source that needs no camera and no file: a real face photo that ships inside a
package dependency (scikit-image's astronaut.png, read from the installed package
directory, no download), moved along a smooth head-motion path so detection,
reconstruction and tracking all have something to do."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from realtime.live.capture.base import CaptureError, Source, cv2

#: Face centre and height of the astronaut (Eileen Collins) in the 512 x 512 photo.
FACE_CENTER = (225.0, 128.0)
FACE_HEIGHT = 120.0


def demo_photo_path() -> Path:
    """The photo inside the installed scikit-image, found without importing it (slow)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise CaptureError(
            "the demo source needs scikit-image for its face photo: `pip install scikit-image` "
            "(or use --input PATH / --camera N)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "astronaut.png"
    if not path.is_file():
        raise CaptureError(f"{path} is missing from the installed scikit-image: reinstall it")
    return path


def demo_face(size: int) -> np.ndarray:
    """The demo photo cropped square around its face, ``size`` pixels: a face to draw
    previews of the effects on (the control panel's buttons)."""
    photo = cv2.imread(str(demo_photo_path()), cv2.IMREAD_COLOR)
    if photo is None:
        raise CaptureError("the demo photo is unreadable: reinstall scikit-image")
    (cx, cy), side = FACE_CENTER, int(1.5 * FACE_HEIGHT)
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side * 0.45))
    crop = photo[y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def head_motion(t: float) -> tuple[float, float, float, float, float, float]:
    """(yaw, pitch, roll) degrees, zoom, (dx, dy) fraction of the frame at time ``t`` seconds:
    sums of slow sines with unrelated periods, so the path is smooth and rarely repeats."""
    tau = 2 * math.pi
    yaw = 28 * math.sin(tau * t / 6.0)
    pitch = 14 * math.sin(tau * t / 4.3 + 1.0)
    roll = 12 * math.sin(tau * t / 7.1 + 2.0)
    zoom = 1.0 + 0.22 * math.sin(tau * t / 9.0 + 0.5)
    dx = 0.06 * math.sin(tau * t / 5.3 + 0.7)
    dy = 0.04 * math.sin(tau * t / 6.7 + 1.9)
    return yaw, pitch, roll, zoom, dx, dy


class DemoSource(Source):
    """The photo seen by a virtual camera while the head turns: each frame is a
    homography of the photo plane rotated about the face centre (yaw/pitch give
    foreshortening, roll turns in plane), scaled and shifted. Frame ``i`` is a pure
    function of ``i``, so batch runs are reproducible."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, frames: int | None = None):
        self.name = "demo"
        photo = cv2.imread(str(demo_photo_path()), cv2.IMREAD_COLOR)
        if photo is None:
            raise CaptureError(
                "the demo photo (scikit-image astronaut.png) is unreadable: reinstall scikit-image"
            )
        self.photo = photo
        self.width, self.height, self.fps, self.frames = width, height, fps, frames
        self.index = 0

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def homography(self, t: float) -> np.ndarray:
        """Photo pixels -> frame pixels at time ``t``."""
        yaw, pitch, roll, zoom, dx, dy = head_motion(t)
        a, b, c = (math.radians(v) for v in (pitch, yaw, roll))
        rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
        rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
        scale = zoom * 0.36 * self.height / FACE_HEIGHT  # face about a third of the frame high
        f = 2.0 * self.height  # focal length of the virtual camera, in frame pixels
        cx, cy = FACE_CENTER
        # photo pixel -> offset from the face centre on a plane facing the camera
        offset = np.array([[scale, 0, -scale * cx], [0, scale, -scale * cy], [0, 0, 0]])
        # rotate about the face centre, which stays at depth f on the optical axis
        plane = rz @ ry @ rx @ offset + np.array([[0, 0, 0], [0, 0, 0], [0, 0, f]])
        u0, v0 = self.width * (0.5 + dx), self.height * (0.48 + dy)
        h = np.array([[f, 0, u0], [0, f, v0], [0, 0, 1.0]]) @ plane
        return h / h[2, 2]

    def read(self) -> np.ndarray | None:
        if self.frames is not None and self.index >= self.frames:
            return None
        h = self.homography(self.index / self.fps)
        self.index += 1
        return cv2.warpPerspective(
            self.photo, h, (self.width, self.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
