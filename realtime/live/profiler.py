"""Per-stage timing from the spans each frame collects on its way (realtime.core.types.timed),
and the one number a user feels: capture -> output latency.

Live: rolling p50/p95/p99 and fps for the on-screen HUD. After the run: ``write(PATH.json)``
writes a summary (per-stage percentiles over the whole run), PATH.trace.json (Chrome
trace events: open in https://ui.perfetto.dev or chrome://tracing) and PATH.png (frame
times per stage).
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import cv2
import numpy as np

STAGES = ("capture", "detect", "crop", "infer", "decode", "smooth", "render", "output")
#: Which pipeline thread runs each stage: one trace track per thread.
THREADS = {
    "capture": 1,
    "detect": 2,
    "crop": 2,
    "infer": 2,
    "decode": 2,
    "smooth": 2,
    "render": 3,
    "output": 3,
}
THREAD_NAMES = {1: "capture", 2: "inference", 3: "render + output", 4: "end-to-end latency"}


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


def _order(names) -> list[str]:
    """Known stages in pipeline order, then any others a stage invented."""
    names = set(names)
    return [s for s in STAGES if s in names] + sorted(names - set(STAGES))


class Profiler:
    """Collects frames as they leave the pipeline.

    window: frames in the rolling statistics (HUD).
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
    def _stats(entries) -> dict:
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
            "stages": {name: percentiles(stages[name]) for name in _order(stages)},
        }

    def rolling(self) -> dict:
        """Statistics over the last ``window`` frames."""
        return self._stats(self.recent)

    def summary(self, meta: dict | None = None) -> dict:
        """Statistics over the whole run (all kept frames)."""
        out = self._stats(self.records)
        out["frames_output"] = self.frames
        out["dropped"] = self.dropped
        out["meta"] = meta or {}
        return out

    def hud_lines(self) -> list[str]:
        s = self.rolling()
        lat = s["latency_ms"]
        lines = [
            f"{s['fps']:.1f} fps  latency p50 {lat['p50']:.0f} p95 {lat['p95']:.0f} p99 {lat['p99']:.0f} ms",
            f"dropped {self.dropped}",
        ]
        lines += [f"{k:<7} {v['p50']:6.1f} {v['p95']:6.1f} ms" for k, v in s["stages"].items()]
        return lines

    def draw_hud(self, image: np.ndarray, status: str = "", faces: tuple = ()) -> np.ndarray:
        """A copy of ``image`` with the rolling figures (and the faces' status, e.g.
        "no face") in its top-left corner, and each face's number (its track id, as the
        control panel's cards show it) above it: ``faces`` are (track id, (x, y)) pairs."""
        out = image.copy()
        scale = max(0.35, min(out.shape[:2]) / 1000)
        for track, (x, y) in faces:
            org = (int(x), max(int(y) - 6, 12))
            cv2.putText(
                out, f"#{track}", org, cv2.FONT_HERSHEY_SIMPLEX, 1.4 * scale, (0, 0, 0), 3, cv2.LINE_AA
            )
            cv2.putText(
                out, f"#{track}", org, cv2.FONT_HERSHEY_SIMPLEX, 1.4 * scale, (120, 255, 120), 1, cv2.LINE_AA
            )
        step = int(22 * scale / 0.5)
        lines = [status, *self.hud_lines()] if status else self.hud_lines()
        width = int(max(len(t) for t in lines) * 11 * scale / 0.5)
        h = min(out.shape[0], step * len(lines) + step // 2)
        w = min(out.shape[1], width)
        out[:h, :w] = (out[:h, :w] * 0.35).astype(np.uint8)
        for i, text in enumerate(lines):
            y = step * (i + 1)
            cv2.putText(out, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (120, 255, 120), 1, cv2.LINE_AA)
        return out

    def trace_events(self) -> dict:
        """Chrome trace-event JSON: one track per pipeline thread, an async slice per
        frame from capture to output, and a latency counter."""
        events: list[dict] = [{"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "prnet-live"}}]
        events += [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}}
            for tid, name in THREAD_NAMES.items()
        ]
        records = self.records
        if not records:
            return {"traceEvents": events, "displayTimeUnit": "ms"}
        t0 = min(min([e[1]] + [a for a, _ in e[3].values()]) for e in records)
        us = lambda t: round((t - t0) * 1e6, 1)
        for seq, t_cap, t_out, spans in records:
            for name, (a, b) in spans.items():
                events.append(
                    {
                        "name": name,
                        "cat": "stage",
                        "ph": "X",
                        "pid": 1,
                        "tid": THREADS.get(name, 2),
                        "ts": us(a),
                        "dur": round((b - a) * 1e6, 1),
                        "args": {"seq": seq},
                    }
                )
            events.append(
                {
                    "name": "frame",
                    "cat": "latency",
                    "ph": "b",
                    "pid": 1,
                    "tid": 4,
                    "id": seq,
                    "ts": us(t_cap),
                    "args": {"seq": seq},
                }
            )
            events.append(
                {"name": "frame", "cat": "latency", "ph": "e", "pid": 1, "tid": 4, "id": seq, "ts": us(t_out)}
            )
            events.append(
                {
                    "name": "latency_ms",
                    "ph": "C",
                    "pid": 1,
                    "ts": us(t_out),
                    "args": {"latency_ms": round((t_out - t_cap) * 1e3, 3)},
                }
            )
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def chart(self, path: str | Path) -> None:
        """PNG of each stage's time and the end-to-end latency per output frame."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        records = list(self.records)
        idx = np.arange(len(records))
        names = _order({k for r in records for k in r[3]})
        for name in names:
            ms = [(r[3][name][1] - r[3][name][0]) * 1e3 if name in r[3] else np.nan for r in records]
            ax.plot(idx, ms, lw=1, label=name)
        latency = np.array([(r[2] - r[1]) * 1e3 for r in records])
        ax.plot(idx, latency, "k", lw=1.5, label="capture→output latency")
        ax.set_xlabel("output frame")
        ax.set_ylabel("ms")
        s = self._stats(records)
        ax.set_title(
            f"{s['frames']} frames, {s['fps']:.1f} fps, latency p50 {s['latency_ms']['p50']:.1f} ms "
            f"p95 {s['latency_ms']['p95']:.1f} ms, dropped {self.dropped}"
        )
        if latency.size:
            # warm-up frames (JIT compiles) can be 100x the steady state: keep the steady state readable
            top = 1.25 * float(np.percentile(latency, 98))
            if latency.max() > top > 0:
                ax.set_ylim(0, top)
                ax.text(0.01, 0.97, f"clipped: max {latency.max():.0f} ms", transform=ax.transAxes, va="top")
            else:
                ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, ncol=3)
        fig.tight_layout()
        fig.savefig(str(path))

    def write(self, path: str | Path, meta: dict | None = None) -> dict[str, Path]:
        """Write PATH (summary JSON), PATH.trace.json and PATH.png; returns the three paths."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = path.with_suffix("") if path.suffix == ".json" else path
        paths = {
            "summary": path,
            "trace": stem.with_name(stem.name + ".trace.json"),
            "chart": stem.with_name(stem.name + ".png"),
        }
        summary = self.summary(meta)
        summary["files"] = {k: v.name for k, v in paths.items() if k != "summary"}
        paths["trace"].write_text(json.dumps(self.trace_events()))
        self.chart(paths["chart"])
        path.write_text(json.dumps(summary, indent=2))
        return paths
