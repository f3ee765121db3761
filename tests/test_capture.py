"""Sources and the grabber, on the real media files and the real demo photo."""

from __future__ import annotations

import shutil
import threading

import cv2
import numpy as np
import pytest
from conftest import MEDIA

from realtime.live.capture import (
    CameraSource,
    CaptureError,
    DemoSource,
    FolderSource,
    Grabber,
    ImageSource,
    VideoSource,
    demo_photo_path,
    open_input,
)
from realtime.live.pipeline import CLOSED, Slot

CARPHONE = MEDIA / "carphone_176x144.mp4"
WEBCAM_AVI = MEDIA / "kpa_webcam_160x120.avi"


def test_demo_photo_ships_inside_scikit_image():
    path = demo_photo_path()
    assert path.name == "astronaut.png" and "skimage" in path.parts
    assert cv2.imread(str(path)).shape == (512, 512, 3)


def test_demo_source_moves_smoothly_and_is_reproducible():
    a, b = DemoSource(320, 240, frames=40), DemoSource(320, 240, frames=40)
    frames = a.read_all()
    assert len(frames) == 40 and frames[0].shape == (240, 320, 3) and frames[0].dtype == np.uint8
    assert all(np.array_equal(x, y) for x, y in zip(frames, b.read_all(), strict=True))
    steps = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(39)]
    assert min(steps) > 0.05, "the head must keep moving"
    far = np.abs(frames[39].astype(int) - frames[0]).mean()
    assert max(steps) < far, "neighbouring frames are closer than distant ones: a smooth path"


def test_video_source_reads_every_frame_at_its_fps():
    source = open_input(CARPHONE)
    assert isinstance(source, VideoSource) and source.size == (176, 144)
    assert source.fps == pytest.approx(29.97, abs=0.01)
    assert len(source.read_all()) == 120 and source.error is None


def test_truncated_and_corrupt_videos(tmp_path):
    data = CARPHONE.read_bytes()
    # the mp4 index (moov) is at the end: cut it and nothing can be decoded
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(CaptureError, match="truncated/corrupt"):
        VideoSource(tmp_path / "cut.mp4")
    # zeros over the middle of the data: decodes up to the damage, then says so
    damaged = bytearray(data)
    damaged[200_000:260_000] = bytes(60_000)
    (tmp_path / "zeroed.mp4").write_bytes(bytes(damaged))
    source = VideoSource(tmp_path / "zeroed.mp4")
    n = len(source.read_all())
    assert 0 < n < 120 and f"frame {n} of 120" in source.error
    # an AVI cut in half plays its first half
    avi = WEBCAM_AVI.read_bytes()
    (tmp_path / "cut.avi").write_bytes(avi[: len(avi) // 2])
    source = VideoSource(tmp_path / "cut.avi")
    n = len(source.read_all())
    assert 10 < n < 68 and "truncated or corrupt" in source.error


def test_bad_paths(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        open_input(tmp_path / "missing.mp4")
    (tmp_path / "notes.mp4").write_text("not a video\n" * 50)
    with pytest.raises(CaptureError, match="not a readable video"):
        open_input(tmp_path / "notes.mp4")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(CaptureError, match="not a readable image"):
        open_input(tmp_path / "photo.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptureError, match="no images"):
        open_input(tmp_path / "empty")


def test_image_source_repeats_copies():
    source = ImageSource(MEDIA / "obama_portrait.jpg", frames=3)
    frames = source.read_all()
    assert len(frames) == 3 and np.array_equal(frames[0], frames[2])
    frames[0][:] = 0  # a stage drawing on one frame must not touch the next
    assert frames[1].any()


def test_folder_source_letterboxes_mixed_sizes_and_skips_bad_files(tmp_path):
    shutil.copy(MEDIA / "astronaut.png", tmp_path / "a.png")
    shutil.copy(MEDIA / "obama_portrait.jpg", tmp_path / "b.jpg")
    (tmp_path / "c.png").write_bytes(b"broken")
    (tmp_path / "readme.txt").write_text("ignored")
    source = FolderSource(tmp_path)
    frames = source.read_all()
    assert len(frames) == 2 and frames[1].shape == frames[0].shape
    assert "skipped 1 unreadable" in source.error


def test_camera_index_without_camera():
    with pytest.raises(CaptureError, match="no camera at 63"):
        CameraSource(63)


def run_grabber(source, slot, stop, **kw) -> tuple[Grabber, list, list[str]]:
    got, messages = [], []
    grabber = Grabber(source, slot, stop, notify=messages.append, **kw).start()
    while (item := slot.get(1.0)) is not CLOSED:
        if item is not None:
            got.append(item)
    grabber.join(2.0)
    return grabber, got, messages


def test_camera_unplugged_then_gone(tmp_path):
    """A capture device (here a clip opened by path) that vanishes mid-run: one message,
    retries, then the run ends with a clear error."""
    device = tmp_path / "cam.avi"
    shutil.copy(WEBCAM_AVI, device)
    source = CameraSource(str(device))
    device.unlink()  # the open handle keeps reading; reopening fails: unplugged
    grabber, frames, messages = run_grabber(source, Slot(lossy=False), threading.Event(), reconnect_s=0.6)
    assert len(frames) == 68 and [f.seq for f in frames] == list(range(68))
    assert len(messages) == 1 and "reconnecting" in messages[0]
    assert "lost and not back" in grabber.error


def test_camera_unplugged_then_back(tmp_path):
    device = tmp_path / "cam.avi"
    shutil.copy(WEBCAM_AVI, device)
    source = CameraSource(str(device))
    device.unlink()
    stop = threading.Event()
    slot = Slot(lossy=False)
    replug = threading.Timer(0.3, lambda: shutil.copy(WEBCAM_AVI, device))
    replug.start()
    grabber = Grabber(source, slot, stop, reconnect_s=5.0, notify=lambda m: None).start()
    seqs = []
    while len(seqs) < 100:
        item = slot.get(2.0)
        assert item is not None and item is not CLOSED
        seqs.append(item.seq)
    stop.set()
    grabber.join(2.0)
    assert seqs == list(range(100)), "frames continue after the camera came back"
    assert grabber.status is None and not grabber.thread.is_alive()
