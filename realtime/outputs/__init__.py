"""Where finished frames go: files (a video, an image, a recording), a virtual camera,
an MJPEG stream (served by the one HTTP stack, realtime.outputs.http, which the
control panel shares) and the window. Those two are imported on their own:
realtime.outputs.http needs aiohttp, realtime.outputs.window glfw and a display. Any
number run together; each has ``write(image, frame=None)`` and ``close()``."""

from realtime.outputs.files import (
    IMAGE_OUTPUTS,
    VIDEO_CODECS,
    ImageFileOutput,
    OutputError,
    Recording,
    VideoFileOutput,
    check_writable,
    open_file_output,
)
from realtime.outputs.vcam import VirtualCamOutput

__all__ = [
    "IMAGE_OUTPUTS",
    "VIDEO_CODECS",
    "ImageFileOutput",
    "OutputError",
    "Recording",
    "VideoFileOutput",
    "VirtualCamOutput",
    "check_writable",
    "open_file_output",
]
