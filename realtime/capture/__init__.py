"""Frame sources behind one interface (:class:`Source`), and the grabber thread that
turns any of them into timestamped :class:`realtime.types.Frame` objects."""

from realtime.capture.base import IMAGE_EXTENSIONS, CaptureError, Source, letterbox
from realtime.capture.camera import CameraSource
from realtime.capture.demo import DemoSource, demo_photo_path
from realtime.capture.grabber import Grabber
from realtime.capture.image import FolderSource, ImageSource
from realtime.capture.open import open_input
from realtime.capture.video import VideoSource

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
    "demo_photo_path",
    "letterbox",
    "open_input",
]
