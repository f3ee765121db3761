"""The threaded loop: hand-off policy, timestamps, stopping, on real sources."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime.core.types import timed
from realtime.live.capture import DemoSource, VideoSource
from realtime.live.pipeline import CLOSED, Pipeline, Slot
from realtime.live.profiler import Profiler


class Collect:
    """An output that keeps what it was given."""

    def __init__(self):
        self.images, self.frames, self.closed = [], [], 0

    def write(self, image, frame=None):
        self.images.append(image)
        self.frames.append(frame)

    def close(self):
        self.closed += 1


class SlowStage:
    """A processor that takes ``seconds`` per frame, as a slow network would."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def process(self, frame):
        with timed(frame, "infer"):
            time.sleep(self.seconds)
        return {"seq": frame.seq}


def test_lossy_slot_keeps_newest_and_counts_drops():
    slot = Slot(lossy=True)
    for i in range(5):
        slot.put(i)
    assert slot.get() == 4 and slot.dropped == 4
    assert slot.get(0.01) is None
    slot.close()
    assert slot.get() is CLOSED


def test_lossless_slot_waits_for_the_consumer():
    slot, stop = Slot(lossy=False), threading.Event()
    slot.put(1)
    t = threading.Thread(target=slot.put, args=(2, stop))
    t.start()
    time.sleep(0.05)
    assert t.is_alive(), "the second put waits while the first item is untaken"
    assert slot.get() == 1
    t.join(1.0)
    assert slot.get() == 2 and slot.dropped == 0


def test_batch_pass_through_keeps_every_frame_unchanged(carphone):
    reference = VideoSource(carphone)
    expected = [reference.read() for _ in range(120)]
    out, profiler = Collect(), Profiler()
    result = Pipeline(VideoSource(carphone), outputs=[out], profiler=profiler).run()
    assert result.frames_out == 120 and result.dropped == 0 and result.reason == "end of input"
    assert all(np.array_equal(a, b) for a, b in zip(out.images, expected, strict=True))
    assert [f.seq for f in out.frames] == list(range(120))
    for f in out.frames:  # every frame carries its timestamps to the output
        assert set(f.spans) >= {"capture", "render", "output"}
        assert f.spans["capture"][1] == f.t_capture <= f.spans["render"][0] <= f.spans["output"][1]
    assert out.closed >= 1 and profiler.frames == 120


def test_processor_and_draw_stage_are_injected(carphone):
    seen = []

    def stage(frame, result):
        seen.append(result["seq"])
        return 255 - frame.image

    out = Collect()
    Pipeline(VideoSource(carphone), processor=SlowStage(0), stage=stage, outputs=[out], max_frames=10).run()
    assert seen == list(range(10)) and len(out.images) == 10
    assert "infer" in out.frames[0].spans


def test_slow_stage_drops_frames_instead_of_adding_latency():
    """Live source at 30 fps, a 100 ms stage: the output runs at ~10 fps, frames are
    dropped and counted, and latency stays bounded instead of growing."""
    fps, slow = 30.0, 0.1
    profiler, out = Profiler(), Collect()
    source = DemoSource(320, 240, fps=fps)
    result = Pipeline(
        source, processor=SlowStage(slow), outputs=[out], profiler=profiler, paced=True, max_frames=20
    ).run()
    assert result.frames_out == 20
    seqs = [f.seq for f in out.frames]
    assert seqs == sorted(seqs) and seqs[-1] - seqs[0] > 30, "the newest frames were taken, others skipped"
    assert result.dropped > 0 and result.dropped >= seqs[-1] - seqs[0] - 19 - 2
    p95 = profiler.summary()["latency_ms"]["p95"]
    assert p95 < (2 / fps + slow) * 1e3, (
        f"latency p95 {p95:.0f} ms grew past 2 frame intervals + the slow stage"
    )


def test_stop_ends_every_thread_within_a_second():
    out = Collect()
    pipeline = Pipeline(DemoSource(320, 240), processor=SlowStage(0.02), outputs=[out], paced=True)
    threading.Timer(0.5, pipeline.stop).start()
    t0 = time.monotonic()
    result = pipeline.run()
    assert time.monotonic() - t0 < 1.5 + 0.5
    assert result.reason == "interrupted" and result.frames_out > 0 and out.closed == 1
    assert not pipeline.grabber.thread.is_alive() and not pipeline._infer_thread.is_alive()


def test_stage_failure_surfaces_on_the_main_thread(carphone):
    class Broken:
        def process(self, frame):
            raise ZeroDivisionError("bug in a stage")

    out = Collect()
    with pytest.raises(ZeroDivisionError):
        Pipeline(VideoSource(carphone), processor=Broken(), outputs=[out]).run()
    assert out.closed == 1


class ClosingWindow:
    """A window whose user clicks close at once; it counts event polls and shows."""

    def __init__(self):
        self.polls, self.shown, self.closed = 0, 0, False

    def show(self, image):
        self.shown += 1

    def poll(self):
        self.polls += 1

    def should_close(self):
        return self.polls > 0 or self.shown > 0

    def close(self):
        self.closed = True


def test_window_close_works_while_the_first_frame_is_slow():
    """A slow first frame (model warm-up): the window's events are still handled, so
    closing it ends the run before any frame was shown."""
    window = ClosingWindow()
    pipeline = Pipeline(DemoSource(320, 240), processor=SlowStage(3.0), window=window, paced=True)
    result = pipeline.run()
    assert result.reason == "window closed" and result.frames_out == 0, "closed only after a frame"
    assert window.polls >= 1 and window.shown == 0
