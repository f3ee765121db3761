"""The live loop: capture, inference, and render+output on three threads, joined by
single-item slots that keep the newest item (MediaPipe's FlowLimiter idea), so a
slow stage costs frames, never latency.

    capture thread --slot--> inference thread --slot--> main thread (render, HUD,
                                                           outputs, window: the GL thread)

Stages are injected, so the loop runs with whatever exists (the protocols below):
  processor (Processor): e.g. realtime.live.faces.FaceProcessor; None passes frames through.
  stage (DrawStage): called on the main thread (the one that owns the GL context),
      e.g. realtime.render.stage.RenderStage; None outputs the captured image.
  outputs (Output): realtime.outputs.files, vcam, http; an ``Outputs`` set to change
      them while the run goes on.
  window (View): realtime.outputs.window.WindowView.
  hud (Hud): realtime.outputs.hud.Hud, drawn on the frame the outputs and the window get.

Each frame reaches the window by one route: ``window.show(image)``, where None means
"the picture the draw stage just drew, still on the GPU" (the window shows its
texture), and an image is pixels to show (the HUD drawn on it, or no draw stage).

Each frame carries its capture time and stage spans to the end; the profiler gets
it with the output time. Ctrl-C, a closed window or the end of input stop all three
threads within a second, and outputs are always closed (files flushed, playable).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import cv2
import numpy as np

from realtime.core.types import FaceResult, Frame, RunResult, Stage, timed
from realtime.live.capture import Grabber, Source
from realtime.live.profiler import Profiler

#: What Slot.get returns once the producer closed the slot and it is empty.
CLOSED: Any = type("Closed", (), {"__repr__": lambda self: "CLOSED"})()
#: Stages a processor records itself; if it records none the whole call is "infer".
PROCESS_STAGES = (Stage.DETECT, Stage.CROP, Stage.INFER, Stage.OCCLUDE, Stage.DECODE, Stage.SMOOTH)
POLL_S = 0.05  # how often waiting threads look at the stop flag


class Slot:
    """A one-item hand-off between two threads.

    lossy: ``put`` replaces an item not yet taken and counts it in ``dropped`` (live
        input: the consumer always gets the newest frame).
    lossless: ``put`` waits until the previous item was taken (batch: every frame
        processed, as fast as the slowest stage).
    """

    def __init__(self, lossy: bool = True):
        self.lossy = lossy
        self.dropped = 0
        self._cond = threading.Condition()
        self._item: Any = None
        self._full = False
        self._closed = False

    def put(self, item: Any, stop: threading.Event | None = None) -> bool:
        """Hand ``item`` over; False if the slot is closed or ``stop`` was set while waiting."""
        with self._cond:
            if not self.lossy:
                while self._full and not self._closed and not (stop and stop.is_set()):
                    self._cond.wait(POLL_S)
                if stop is not None and stop.is_set():
                    return False
            if self._closed:
                return False
            if self._full:
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def wait_empty(self, stop: threading.Event) -> None:
        """Lossless slots: block until the consumer took the last item, so the producer
        reads its next input only when it can go straight on (fresh timestamps)."""
        if self.lossy:
            return
        with self._cond:
            while self._full and not self._closed and not stop.is_set():
                self._cond.wait(POLL_S)

    def get(self, timeout: float = POLL_S) -> Any:
        """The item, None if none came within ``timeout``, CLOSED once closed and empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._full:
                if self._closed:
                    return CLOSED
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item, self._item, self._full = self._item, None, False
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Processor(Protocol):
    """Frame in, faces out, on the inference thread; records its stages on
    ``frame.spans`` (else the whole call counts as "infer")."""

    def process(self, frame: Frame) -> FaceResult: ...


class DrawStage(Protocol):
    """Draws a frame's faces on the main (GL) thread. Returns the BGR image, or None
    when it kept the picture on the GPU (no output needed pixels: the window shows its
    texture); ``read()`` then gives the pixels if the loop needs them later (an output
    that joined, the HUD, the status bar)."""

    def __call__(self, frame: Frame, result: FaceResult | None) -> np.ndarray | None: ...

    def read(self) -> np.ndarray: ...


class Output(Protocol):
    """Where finished frames go: a file, a virtual camera, a stream."""

    def write(self, image: np.ndarray, frame: Frame | None = None) -> None: ...

    def close(self) -> None: ...


class Hud(Protocol):
    """Figures drawn on the picture while ``on``: ``hud(image, result)`` returns a new
    image with them (realtime.outputs.hud.Hud)."""

    on: bool

    def __call__(self, image: np.ndarray, result: FaceResult | None) -> np.ndarray: ...


class View(Protocol):
    """The window: ``show(None)`` shows the draw stage's last picture (kept on the
    GPU), ``show(image)`` those pixels; ``poll()`` handles events only."""

    def show(self, image: np.ndarray | None) -> None: ...

    def poll(self) -> None: ...

    def should_close(self) -> bool: ...

    def close(self) -> None: ...


def draw_status(image: np.ndarray, text: str) -> np.ndarray:
    """A dark bar with ``text`` along the bottom (lost camera, damaged input)."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    bar = int(28 * scale / 0.5)
    out[h - bar :] = (out[h - bar :] * 0.3).astype(np.uint8)
    cv2.putText(out, text, (8, h - bar // 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (80, 200, 255), 1, cv2.LINE_AA)
    return out


class Outputs:
    """The outputs a run writes to, changed from any thread while it goes on (a control
    panel starting a recording): the list is replaced, never changed in place, so the
    main thread reads it without a lock."""

    def __init__(self, outputs: Sequence[Output] = ()):
        self.current: list[Output] = list(outputs)
        self._lock = threading.Lock()

    def add(self, output: Output) -> None:
        """Write to ``output`` from the next frame. Outputs still here at the end are closed."""
        with self._lock:
            self.current = [*self.current, output]

    def remove(self, output: Output) -> None:
        """Stop writing to ``output`` (the caller closes it)."""
        with self._lock:
            self.current = [o for o in self.current if o is not output]

    def close(self) -> None:
        """Close every output here (files flushed, playable)."""
        for out in self.current:
            out.close()


class Pipeline:
    """Wire a source to stages and outputs; ``run()`` blocks on the calling (GL) thread.

    paced: None picks live behaviour (lossy slots, files paced at their fps) when the
        source is a camera or a window is shown, and batch behaviour (lossless, as fast
        as possible, every frame) otherwise.
    max_frames: stop after this many frames were output.
    """

    def __init__(
        self,
        source: Source,
        processor: Processor | None = None,
        stage: DrawStage | None = None,
        outputs: Sequence[Output] | Outputs = (),
        window: View | None = None,
        profiler: Profiler | None = None,
        paced: bool | None = None,
        max_frames: int | None = None,
        hud: Hud | None = None,
        reconnect_s: float = 10.0,
        notify: Callable[[str], None] | None = None,
    ):
        self.source, self.processor, self.stage = source, processor, stage
        self.outputs = outputs if isinstance(outputs, Outputs) else Outputs(outputs)
        self.window, self.hud = window, hud
        self.profiler = profiler or Profiler()
        if paced is None:
            paced = window is not None
        self.live = paced or source.live
        self.max_frames = max_frames
        self.stop_event = threading.Event()
        self.captured = Slot(lossy=self.live)
        self.processed = Slot(lossy=self.live)
        kwargs = {"notify": notify} if notify else {}
        self.grabber = Grabber(source, self.captured, self.stop_event, self.live, reconnect_s, **kwargs)
        self._failure: BaseException | None = None
        self._infer_thread = threading.Thread(target=self._infer_run, name="inference", daemon=True)
        self.last_image: np.ndarray | None = None  # the last frame's pixels; None: kept on the GPU
        self.shown: np.ndarray | None = None  # what the window got last (None: the GPU's picture)
        self.emitted = False
        self.ran = False  # run() started: it closes the outputs and the source

    @property
    def dropped(self) -> int:
        return self.captured.dropped + self.processed.dropped

    def stop(self) -> None:
        """Ask every thread to finish; safe from any thread or a signal handler."""
        self.stop_event.set()

    def _infer_run(self) -> None:
        try:
            while not self.stop_event.is_set():
                frame = self.captured.get()
                if frame is None:
                    continue
                if frame is CLOSED:
                    break
                result = None
                if self.processor is not None:
                    t0 = time.perf_counter()
                    result = self.processor.process(frame)
                    if not any(s in frame.spans for s in PROCESS_STAGES):
                        frame.spans[Stage.INFER] = (t0, time.perf_counter())
                self.processed.put((frame, result), self.stop_event)
        except BaseException as e:  # re-raised on the main thread by run()
            self._failure = e
            self.stop_event.set()
        finally:
            self.processed.close()

    def _emit(self, frame: Frame, result: FaceResult | None) -> None:
        with timed(frame, Stage.RENDER):
            image = self.stage(frame, result) if self.stage is not None else frame.image
        self.profiler.dropped = self.dropped
        with timed(frame, Stage.OUTPUT):
            outputs = self.outputs.current
            hud = self.hud if self.hud is not None and self.hud.on else None
            if image is None and (outputs or hud is not None):  # an output joined, or the HUD is on
                image = self._read_back()
            shown = hud(image, result) if hud is not None and image is not None else image
            if shown is not None:  # always, where there are outputs: read back above
                for out in outputs:
                    out.write(shown, frame)
            # the draw stage's own picture is shown from the GPU; pixels only when drawn on here
            self.shown = None if self.stage is not None and hud is None else shown
            if self.window is not None:
                self.window.show(self.shown)
        self.profiler.record(frame, time.perf_counter())
        self.last_image, self.emitted = image, True

    def _read_back(self) -> np.ndarray:
        """The last frame's pixels from the draw stage, which kept them on the GPU."""
        assert self.stage is not None  # only a draw stage leaves a frame without pixels
        return self.stage.read()

    def _idle(self) -> bool:
        """No new frame: keep the window alive (and say why it is frozen). False = closed."""
        if self.window is None:
            return True
        if self.window.should_close():
            return False
        if not self.emitted:
            self.window.poll()  # warm-up: Q and the close button must work already
            return True
        status = self.grabber.status
        if status:
            if self.last_image is None:  # kept on the GPU: read it back once
                self.last_image = self._read_back()
            self.window.show(draw_status(self.last_image, status))
        else:
            self.window.show(self.shown)
        return True

    def run(self) -> RunResult:
        self.ran = True
        t_start = time.perf_counter()
        n_out, reason = 0, "end of input"
        self.grabber.start()
        self._infer_thread.start()
        try:
            while True:
                if self.stop_event.is_set():
                    reason = "interrupted" if self._failure is None else "error"
                    break
                item = self.processed.get()
                if item is CLOSED:
                    if self.stop_event.is_set():
                        reason = "interrupted" if self._failure is None else "error"
                    break
                if item is None:
                    if not self._idle():
                        reason = "window closed"
                        break
                    continue
                self._emit(*item)
                n_out += 1
                if self.max_frames is not None and n_out >= self.max_frames:
                    reason = "frames"
                    break
                if self.window is not None and self.window.should_close():
                    reason = "window closed"
                    break
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            t_stop = time.perf_counter()
            self.stop_event.set()
            self.grabber.join(1.0)
            self._infer_thread.join(max(0.0, 1.0 - (time.perf_counter() - t_stop)) + 0.5)
            self.outputs.close()  # here, once: the files are playable
            if not self.grabber.thread.is_alive():  # never release a device mid-read
                self.source.close()
        for failure in (self._failure, self.grabber.exception):
            if failure is not None:
                raise failure
        self.profiler.dropped = self.dropped
        error = self.grabber.error if reason == "end of input" else None
        return RunResult(n_out, self.grabber.seq, self.dropped, reason, error, time.perf_counter() - t_start)
