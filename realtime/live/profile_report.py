"""The files a run's timings leave (``--profile PATH.json``): PATH.json, the summary
(per-stage percentiles over the whole run, and what ran); PATH.trace.json, Chrome trace
events (open in https://ui.perfetto.dev or chrome://tracing); PATH.png, each stage's
time and the latency per frame. All written from a realtime.live.profiler.Profiler
after the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from realtime.live.profiler import Profiler, stage_order

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


def write_profile(profiler: Profiler, path: str | Path, meta: dict | None = None) -> dict[str, Path]:
    """Write PATH (summary JSON), PATH.trace.json and PATH.png; returns the three paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("") if path.suffix == ".json" else path
    paths = {
        "summary": path,
        "trace": stem.with_name(stem.name + ".trace.json"),
        "chart": stem.with_name(stem.name + ".png"),
    }
    summary = profiler.summary(meta)
    summary["files"] = {k: v.name for k, v in paths.items() if k != "summary"}
    paths["trace"].write_text(json.dumps(trace_events(profiler)))
    write_chart(profiler, paths["chart"])
    path.write_text(json.dumps(summary, indent=2))
    return paths


def trace_events(profiler: Profiler) -> dict:
    """Chrome trace-event JSON: one track per pipeline thread, an async slice per
    frame from capture to output, and a latency counter."""
    events: list[dict] = [{"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "prnet-live"}}]
    events += [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}}
        for tid, name in THREAD_NAMES.items()
    ]
    records = profiler.records
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


def write_chart(profiler: Profiler, path: str | Path) -> None:
    """PNG of each stage's time and the end-to-end latency per output frame."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    records = list(profiler.records)
    idx = np.arange(len(records))
    names = stage_order({k for r in records for k in r[3]})
    for name in names:
        ms = [(r[3][name][1] - r[3][name][0]) * 1e3 if name in r[3] else np.nan for r in records]
        ax.plot(idx, ms, lw=1, label=name)
    latency = np.array([(r[2] - r[1]) * 1e3 for r in records])
    ax.plot(idx, latency, "k", lw=1.5, label="capture→output latency")
    ax.set_xlabel("output frame")
    ax.set_ylabel("ms")
    s = profiler.stats(records)
    ax.set_title(
        f"{s['frames']} frames, {s['fps']:.1f} fps, latency p50 {s['latency_ms']['p50']:.1f} ms "
        f"p95 {s['latency_ms']['p95']:.1f} ms, dropped {profiler.dropped}"
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
