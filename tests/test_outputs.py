"""File, virtual-camera and MJPEG outputs, read back with OpenCV and HTTP."""

from __future__ import annotations

import glob
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest
import pyvirtualcam
from conftest import read_frames

from realtime.live.capture import DemoSource
from realtime.outputs import ImageFileOutput, OutputError, VideoFileOutput, VirtualCamOutput, open_file_output
from realtime.outputs.http import StreamOutput


def demo_frames(n: int, w: int = 320, h: int = 240) -> list[np.ndarray]:
    source = DemoSource(w, h, frames=n)
    return [source.read() for _ in range(n)]


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv"])
def test_video_file_is_playable_after_close(tmp_path, ext):
    path = tmp_path / "sub" / f"out{ext}"
    out = VideoFileOutput(path, fps=25)
    frames = demo_frames(12)
    for f in frames:
        out.write(f)
    out.close()
    out.close()  # idempotent: the pipeline and the CLI may both close
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25)
    ok, first = cap.read()
    assert ok and first.shape == frames[0].shape
    assert np.abs(first.astype(int) - frames[0]).mean() < 12, "lossy codec, same picture"
    assert read_frames(path) == 12


def test_bad_output_paths(tmp_path):
    with pytest.raises(OutputError, match="unsupported video type"):
        VideoFileOutput(tmp_path / "out.xyz")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        VideoFileOutput(blocker / "out.mp4")  # a file where a folder should be
    with pytest.raises(OutputError, match="is a folder"):
        VideoFileOutput(tmp_path)
    assert not (tmp_path / "out.xyz").exists()


def test_image_output_keeps_the_last_frame(tmp_path):
    out = open_file_output(tmp_path / "still.png")
    assert isinstance(out, ImageFileOutput)
    frames = demo_frames(3)
    for f in frames:
        out.write(f)
    out.close()
    assert np.array_equal(cv2.imread(str(tmp_path / "still.png")), frames[-1])


def test_virtual_camera_without_device_says_how_to_get_one():
    if glob.glob("/dev/video*"):
        pytest.skip("a video device exists here; this checks the no-device message")
    with pytest.raises(OutputError, match="modprobe v4l2loopback devices=1 exclusive_caps=1"):
        VirtualCamOutput(320, 240, 30)


class RecordingBackend:
    """A pyvirtualcam backend that keeps what it is sent (a stand-in device driver)."""

    sent: list[np.ndarray] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height = width, height

    def send(self, frame):
        RecordingBackend.sent.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self):
        pass

    def device(self):
        return "recording"

    def native_fourcc(self):
        return None


def test_virtual_camera_through_a_custom_backend():
    pyvirtualcam.register_backend("recording", RecordingBackend)
    RecordingBackend.sent.clear()
    cam = VirtualCamOutput(320, 240, 30, backend="recording")
    frames = demo_frames(5)
    for f in frames:
        cam.write(f)
    cam.close()
    assert cam.device == "recording" and len(RecordingBackend.sent) == 5
    assert np.array_equal(RecordingBackend.sent[-1], frames[-1]), "BGR frames arrive unchanged"
    with pytest.raises(OutputError, match="unknown virtual camera backend"):
        VirtualCamOutput(320, 240, 30, backend="nope")


def test_mjpeg_stream_opens_in_opencv_and_http():
    stream = StreamOutput(0)
    frames = demo_frames(60)
    stop = threading.Event()

    def feed():
        i = 0
        while not stop.is_set():
            stream.write(frames[i % len(frames)])
            i += 1
            time.sleep(1 / 30)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        cap = cv2.VideoCapture(stream.url)
        got = [cap.read()[1] for _ in range(5)]
        cap.release()
        assert all(g is not None and g.shape == (240, 320, 3) for g in got)
        base = f"http://{stream.host}:{stream.port}"
        with urllib.request.urlopen(base + "/snapshot.jpg", timeout=5) as r:
            snap = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert snap.shape == (240, 320, 3)
        with urllib.request.urlopen(base + "/", timeout=5) as r:
            assert b"stream.mjpg" in r.read()
        with pytest.raises(OutputError, match="pick another --stream port"):
            StreamOutput(stream.port)
    finally:
        stop.set()
        feeder.join()
        t0 = time.monotonic()
        stream.close()
        assert time.monotonic() - t0 < 2.0
