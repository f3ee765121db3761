"""Where processed frames go: a video (or image) file, a virtual camera that video-call
apps can pick, and an MJPEG stream on localhost for browsers and OpenCV. Any number
run together; each has ``write(image, frame=None)`` and ``close()``. Everything that
can fail for a user reason fails at construction, with an OutputError that says how
to fix it, before the run starts."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from realtime.capture import letterbox
from realtime.types import UserError

#: Container -> fourcc. mp4v: OpenCV wheels ship no H.264 encoder, and mp4v plays nearly everywhere.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".bmp")
VCAM_HELP = (
    'Linux: `sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="PRNet Live"`; '
    "Windows/macOS: install OBS Studio and start its virtual camera once (see README)"
)


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


class MjpegStreamOutput:
    """multipart/x-mixed-replace JPEG stream served by http.server on its own threads.

    http://HOST:PORT/ is a page showing the stream; /stream.mjpg is the stream itself
    (cv2.VideoCapture, VLC, ffplay open it); /snapshot.jpg is the latest frame.
    ``write`` only keeps the frame (the render thread never waits on JPEG encoding);
    the viewers' threads encode it, once per frame whoever asks first, and only while
    someone is watching. port 0 picks a free port.
    """

    BOUNDARY = "prnetframe"

    def __init__(self, port: int = 8080, host: str = "127.0.0.1", quality: int = 80):
        self.quality = quality
        self._cond = threading.Condition()
        self._image: np.ndarray | None = None
        self._count = 0  # frames written
        self._jpeg: bytes | None = None
        self._jpeg_count = 0  # the frame _jpeg holds
        self._closed = False
        try:
            self.server = ThreadingHTTPServer((host, port), self._handler())
        except OSError as e:
            raise OutputError(
                f"cannot serve the stream on {host}:{port}: {e.strerror or e}: pick another --stream port"
            ) from None
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="mjpeg-http", daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    def _latest(self) -> tuple[int, bytes | None]:
        """(frame count, JPEG) of the newest frame. Encodes outside the lock, so
        ``write`` never waits; the JPEG is cached by frame count for other viewers."""
        with self._cond:
            count, image = self._count, self._image
            if self._jpeg_count == count:
                return count, self._jpeg
        if image is None:
            return count, None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        jpeg = buf.tobytes() if ok else None
        with self._cond:
            if count > self._jpeg_count:
                self._jpeg, self._jpeg_count = jpeg, count
        return count, jpeg

    def write(self, image: np.ndarray, frame=None) -> None:
        with self._cond:
            self._image = image
            self._count += 1
            self._cond.notify_all()

    def _handler(self):
        out = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # no access log on the console
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    body = (
                        b'<html><body style="margin:0;background:#111"><img src="/stream.mjpg"></body></html>'
                    )
                    self._reply("text/html", body)
                elif path == "/snapshot.jpg":
                    jpeg = out._latest()[1]
                    self._reply("image/jpeg", jpeg) if jpeg else self.send_error(503, "no frame yet")
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self.send_error(404)

            def _reply(self, kind: str, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={out.BOUNDARY}")
                self.send_header("Cache-Control", "no-cache, private")
                self.send_header("Pragma", "no-cache")
                self.end_headers()
                seen = 0
                try:
                    while True:
                        with out._cond:
                            while out._count == seen and not out._closed:
                                out._cond.wait(0.5)
                            if out._closed:
                                return
                        seen, jpeg = out._latest()
                        if jpeg is None:
                            continue
                        head = (
                            f"--{out.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n"
                        ).encode()
                        self.wfile.write(head + jpeg + b"\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer went away

        return Handler

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()


__all__ = [
    "IMAGE_OUTPUTS",
    "VIDEO_CODECS",
    "ImageFileOutput",
    "MjpegStreamOutput",
    "OutputError",
    "VideoFileOutput",
    "VirtualCamOutput",
    "check_writable",
    "open_file_output",
]
