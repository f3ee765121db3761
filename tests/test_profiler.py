"""Profiler figures, its report files and the HUD from frames with known spans."""

from __future__ import annotations

import json

import numpy as np
import pytest

from realtime.core.types import Frame
from realtime.live.profile_report import write_profile
from realtime.live.profiler import STAGES, Profiler
from realtime.outputs.hud import Hud, draw_hud, figure_lines


def frames_with_known_times(n: int = 100) -> tuple[Profiler, list[float]]:
    """Frame i: each stage lasts (i + 1) ms, frames 1/30 s apart; latency = 8 stages."""
    profiler = Profiler(window=50)
    for i in range(n):
        t = 100.0 + i / 30
        spans, start = {}, t
        for stage in STAGES:
            spans[stage] = (start, start + (i + 1) * 1e-3)
            start += (i + 1) * 1e-3
        frame = Frame(np.zeros((4, 4, 3), np.uint8), i, t, spans=spans)
        profiler.record(frame, start)
    return profiler, [float(i + 1) for i in range(n)]


def test_percentiles_per_stage_and_latency():
    profiler, ms = frames_with_known_times()
    s = profiler.summary()
    assert list(s["stages"]) == list(STAGES)
    for stage in STAGES:
        assert s["stages"][stage]["p50"] == pytest.approx(np.percentile(ms, 50), abs=1e-3)
        assert s["stages"][stage]["p99"] == pytest.approx(np.percentile(ms, 99), abs=1e-3)
    assert s["latency_ms"]["p95"] == pytest.approx(8 * np.percentile(ms, 95), abs=1e-2)
    assert s["fps"] == pytest.approx(1 / (1 / 30 + 8e-3), rel=1e-3)  # outputs drift 8 ms per frame
    rolling = profiler.rolling()
    assert rolling["frames"] == 50 and rolling["stages"]["infer"]["p50"] == pytest.approx(75.5, abs=1e-3)


def test_write_summary_trace_and_chart(tmp_path):
    profiler, _ = frames_with_known_times(40)
    profiler.dropped = 3
    paths = write_profile(profiler, tmp_path / "run" / "profile.json", meta={"source": "test"})
    summary = json.loads(paths["summary"].read_text())
    assert summary["dropped"] == 3 and summary["meta"]["source"] == "test"
    assert {"p50", "p95", "p99"} <= set(summary["stages"]["render"])
    assert paths["trace"].name == "profile.trace.json"
    events = json.loads(paths["trace"].read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert len(slices) == 40 * len(STAGES) and all(e["dur"] >= 0 and e["ts"] >= 0 for e in slices)
    assert {e["args"]["name"] for e in events if e["name"] == "thread_name"} >= {"capture", "inference"}
    assert sum(e["ph"] == "b" for e in events) == 40
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hud_draws_in_the_corner_only():
    profiler, _ = frames_with_known_times(10)
    image = np.full((480, 640, 3), 200, np.uint8)
    hud = draw_hud(image, figure_lines(profiler))
    assert (image == 200).all(), "the frame itself is left alone"
    assert (hud[:40, :200] != 200).any() and (hud[300:, 400:] == 200).all()
    assert "fps" in figure_lines(profiler)[0]
    switch = Hud(profiler)
    assert switch(image, None) is image, "off: the frame as it is"
    switch.set(True)
    assert np.array_equal(switch(image, None), hud), "on: the same drawing"


def test_empty_profile_still_writes(tmp_path):
    paths = write_profile(Profiler(), tmp_path / "p.json")
    assert json.loads(paths["summary"].read_text())["frames"] == 0
    assert json.loads(paths["trace"].read_text())["traceEvents"]


def test_a_long_run_keeps_the_newest_frames_in_a_fixed_table():
    """Past ``keep`` frames the oldest are forgotten and the table does not grow (a
    30-minute run must not grow the process), while counts and custom stages survive."""
    profiler = Profiler(window=10, keep=50)
    table = profiler._table
    for i in range(200):
        spans = {"detect": (i, i + 0.002), "mystage": (i + 0.002, i + 0.003)}
        profiler.record(Frame(np.zeros((4, 4, 3), np.uint8), i, float(i), spans=spans), i + 0.01)
    s = profiler.summary()
    assert profiler._table is table and table.shape[0] == 50
    assert s["frames"] == 50 and s["frames_output"] == 200
    assert [r[0] for r in profiler.records] == list(range(150, 200))
    assert s["stages"]["detect"]["p50"] == pytest.approx(2.0)
    assert s["stages"]["mystage"]["p50"] == pytest.approx(1.0)
