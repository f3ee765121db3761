"""Frame sources behind one interface (:class:`Source`), and the grabber thread that
turns any of them into timestamped :class:`realtime.core.types.Frame` objects."""

from realtime.core.image import letterbox  # here too: offline code sizes clips with the sources
from realtime.live.capture.base import IMAGE_EXTENSIONS, CaptureError, Source
from realtime.live.capture.camera import CameraSource
from realtime.live.capture.demo import DemoSource, demo_face, demo_photo_path
from realtime.live.capture.grabber import Grabber
from realtime.live.capture.image import FolderSource, ImageSource
from realtime.live.capture.open import open_input
from realtime.live.capture.video import VideoSource, clip_frames

__all__ = [
    "IMAGE_EXTENSIONS",
    "CameraSource",
    "CaptureError",
    "DemoSource",
    "FolderSource",
    "Grabber",
    "ImageSource",
    "Source",
    "VideoSource",
    "clip_frames",
    "demo_face",
    "demo_photo_path",
    "letterbox",
    "open_input",
]
