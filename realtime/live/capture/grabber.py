"""The capture thread: reads a source as fast as it delivers, stamps every frame with
its sequence number and capture time, and hands it on through a slot (see
realtime.live.pipeline.Slot) that keeps only the newest frame, so a slow consumer never
makes latency grow."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from realtime.core.messages import say
from realtime.core.types import Frame, Stage
from realtime.live.capture.base import Source


class Grabber:
    """Runs ``source`` on its own thread into ``slot`` (put/close/wait_empty).

    paced: sleep to the source's fps between reads (files and the demo during preview;
        cameras pace themselves).
    reconnect_s: how long a lost camera is retried before the run ends.
    status: a one-line state for the window ("camera lost, reconnecting"), None when fine.
    error: why input ended early (damaged file, camera gone), None for a clean end.
    """

    def __init__(
        self,
        source: Source,
        slot,
        stop: threading.Event,
        paced: bool = False,
        reconnect_s: float = 10.0,
        notify: Callable[[str], None] = say,
    ):
        self.source, self.slot, self.stop = source, slot, stop
        self.paced = paced and not source.live
        self.reconnect_s, self.notify = reconnect_s, notify
        self.seq = 0
        self.status: str | None = None
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> Grabber:
        self.thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # handed to the main thread, which re-raises it
            self.exception = e
            self.stop.set()
        finally:
            self.error = self.error or self.source.error
            self.slot.close()

    def _loop(self) -> None:
        period = 1.0 / max(self.source.fps, 1e-3)
        due = time.perf_counter()
        while not self.stop.is_set():
            self.slot.wait_empty(self.stop)
            if self.paced:
                now = time.perf_counter()
                if due > now and self.stop.wait(due - now):
                    break
                # after a stall, carry on from now instead of bursting to catch up
                due = max(due + period, time.perf_counter() - period)
            t0 = time.perf_counter()
            image = self.source.read()
            t1 = time.perf_counter()
            if image is None:
                if self.source.can_recover and not self.stop.is_set() and self._reconnect():
                    due = time.perf_counter()
                    continue
                break
            frame = Frame(image, self.seq, t1, {Stage.CAPTURE: (t0, t1)})
            self.seq += 1
            self.slot.put(frame, self.stop)

    def _reconnect(self) -> bool:
        name = self.source.name
        self.status = f"{name} lost: reconnecting (up to {self.reconnect_s:.0f} s)"
        self.notify(
            f"{name} stopped sending frames (unplugged?): reconnecting for up to {self.reconnect_s:.0f} s"
        )
        deadline = time.monotonic() + self.reconnect_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            if self.source.recover():
                self.notify(f"{name} is back")
                self.status = None
                return True
            self.stop.wait(0.25)
        if not self.stop.is_set():
            self.error = (
                f"{name} lost and not back within {self.reconnect_s:.0f} s: check the cable or the "
                "device path, then start again"
            )
        return False
