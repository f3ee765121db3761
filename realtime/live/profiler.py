"""Per-stage timing from the spans each frame collects on its way (realtime.core.types.timed),
and the one number a user feels: capture -> output latency.

``Profiler`` records and summarises: rolling p50/p95/p99 and fps while the run goes on
(the HUD, realtime.outputs.hud; the control panel's figures), and the whole run's
statistics after it. The files a run leaves are written from it by
realtime.live.profile_report (summary JSON, Chrome trace, chart).
"""

from __future__ import annotations

from collections import deque

import numpy as np

STAGES = ("capture", "detect", "crop", "infer", "decode", "smooth", "render", "output")


def percentiles(values_ms) -> dict[str, float]:
    """p50/p95/p99/mean/max of a sequence of milliseconds (zeros when empty)."""
    a = np.asarray(values_ms, np.float64)
    if a.size == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0, "n": 0}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "mean": round(float(a.mean()), 3),
        "max": round(float(a.max()), 3),
        "n": int(a.size),
    }


def stage_order(names) -> list[str]:
    """Known stages in pipeline order, then any others a stage invented."""
    names = set(names)
    return [s for s in STAGES if s in names] + sorted(names - set(STAGES))


class Profiler:
    """Collects frames as they leave the pipeline.

    window: frames in the rolling statistics (the HUD, the panel's figures).
    keep: frames kept for the whole-run summary and trace (oldest forgotten first),
        in a table allocated up front (~200 bytes a frame) so that a long run's memory
        stays flat instead of growing with a Python object per frame.
    dropped: set by the pipeline (frames replaced in hand-off slots).
    """

    MAX_STAGES = 12  # the known stages and a few a custom stage may add

    def __init__(self, window: int = 120, keep: int = 60_000):
        self.window = window
        self.recent: deque[tuple[int, float, float, dict[str, tuple[float, float]]]] = deque(maxlen=window)
        self._table = np.full((keep, 3 + 2 * self.MAX_STAGES), np.nan)  # seq, t_capture, t_out, spans
        self._columns: dict[str, int] = {name: 3 + 2 * i for i, name in enumerate(STAGES)}
        self.dropped = 0
        self.frames = 0

    def record(self, frame, t_out: float) -> None:
        """Log ``frame`` (a realtime.core.types.Frame) that was output at ``t_out``."""
        spans = dict(frame.spans)
        self.recent.append((frame.seq, frame.t_capture, t_out, spans))
        row = self._table[self.frames % len(self._table)]
        row[:] = np.nan
        row[:3] = frame.seq, frame.t_capture, t_out
        for name, (a, b) in spans.items():
            col = self._columns.get(name)
            if col is None and len(self._columns) < self.MAX_STAGES:
                col = self._columns[str(name)] = 3 + 2 * len(self._columns)
            if col is not None:
                row[col : col + 2] = a, b
        self.frames += 1

    @property
    def records(self) -> list[tuple[int, float, float, dict[str, tuple[float, float]]]]:
        """The kept frames, oldest first, as (seq, t_capture, t_out, spans)."""
        n = min(self.frames, len(self._table))
        start = self.frames % len(self._table) if self.frames > len(self._table) else 0
        rows = np.roll(self._table, -start, axis=0)[:n]
        out = []
        for row in rows:
            spans = {
                name: (float(row[c]), float(row[c + 1]))
                for name, c in self._columns.items()
                if not np.isnan(row[c])
            }
            out.append((int(row[0]), float(row[1]), float(row[2]), spans))
        return out

    @staticmethod
    def stats(entries) -> dict:
        """Frames, fps, latency and per-stage percentiles of ``entries`` (records)."""
        entries = list(entries)
        stages: dict[str, list[float]] = {}
        for _, _, _, spans in entries:
            for name, (a, b) in spans.items():
                stages.setdefault(name, []).append((b - a) * 1e3)
        t_out = [e[2] for e in entries]
        fps = (len(t_out) - 1) / (t_out[-1] - t_out[0]) if len(t_out) > 1 and t_out[-1] > t_out[0] else 0.0
        return {
            "frames": len(entries),
            "fps": round(fps, 2),
            "latency_ms": percentiles([(e[2] - e[1]) * 1e3 for e in entries]),
            "frame_interval_ms": percentiles(np.diff(t_out) * 1e3 if len(t_out) > 1 else []),
            "stages": {name: percentiles(stages[name]) for name in stage_order(stages)},
        }

    def rolling(self) -> dict:
        """Statistics over the last ``window`` frames."""
        return self.stats(self.recent)

    def summary(self, meta: dict | None = None) -> dict:
        """Statistics over the whole run (all kept frames)."""
        out = self.stats(self.records)
        out["frames_output"] = self.frames
        out["dropped"] = self.dropped
        out["meta"] = meta or {}
        return out
