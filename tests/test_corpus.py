"""The corpus job (realtime.corpus) on real local Ray with the shared clips and a
broken file: its Parquet rows equal the library's own FaceProcessor run on the same
frames, tracks stay one across chunk boundaries, the broken file is listed while the
rest finish, and an interrupted run (a real SIGINT) resumes, redoing a failed chunk.

Kept small for CI's 2 cores: 40-48 frames per clip, 2 workers, one local Ray with a
small object store for the module.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pytest
from conftest import need

from realtime.corpus import Resources, Settings, plan_chunks, probe, read_tracks, read_vertices, run
from realtime.corpus.__main__ import main
from realtime.corpus.tracks import match_tracks

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("carphone_176x144.mp4", "kpa_webcam_160x120.avi", "hamilton_profile_640x360.mp4")
SETTINGS: dict[str, Any] = dict(chunk=20, overlap=4, max_frames=48)
#: The workers and the test run the same engine (onnxruntime, one thread) on the same
#: frames: only summation order could differ, far below this (pixels).
TOL = 1e-3


@pytest.fixture(scope="module")
def local_ray():
    need(importlib.util.find_spec("ray") is not None, "ray is not installed: pip install -e '.[corpus]'")
    import ray

    ray.init(
        address="local",  # a private instance, never a cluster someone started here
        num_cpus=2,
        object_store_memory=80 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def library():
    """The library's own pieces, one thread as in a worker."""
    import torch

    from realtime.core.weights import load_bundle
    from realtime.live.faces import FaceProcessor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield FaceProcessor.from_bundle(load_bundle(), "onnxruntime", "cpu")
    torch.set_num_threads(threads)


def library_faces(library, video: Path, settings: Settings) -> dict[int, list]:
    """frame -> reconstructions, from FaceProcessor run directly on each chunk's
    frames (read in order, no seeking), fresh per chunk as the job does."""
    from realtime.core.types import Frame

    info = probe(video)
    cap, frames = cv2.VideoCapture(str(video)), []
    while len(frames) < (settings.max_frames or 10**9) and (got := cap.read())[0]:
        frames.append(got[1])
    out: dict[int, list] = {}
    for c in plan_chunks(info, settings):
        proc = library.fresh(max_faces=settings.max_faces)
        proc.tracker.config.background = False  # the job's setting: results independent of timing
        for i in range(c.first, c.end):
            res = proc.process(Frame(frames[i], seq=i, t_capture=i / info.fps))
            assert not res.status.startswith(("error", "bad frame")), proc.last_error
            if i >= c.start:
                out[i] = res.reconstructions
    return out


def check_against_library(library, video: Path, parquet: Path, settings: Settings) -> dict:
    """Every row equals the library's face on that frame; returns the table."""
    t = read_tracks(parquet)
    lib = library_faces(library, video, settings)
    assert sorted(set(t["frame"].tolist())) == sorted(f for f, recs in lib.items() if recs)
    for f, recs in lib.items():
        rows = np.flatnonzero(t["frame"] == f)
        assert len(rows) == len(recs), f"frame {f}"
        for rec in recs:  # rows in any order: match each face to the nearest row
            j = rows[np.argmin([np.abs(t["landmarks"][r] - rec.landmarks).max() for r in rows])]
            assert np.abs(t["landmarks"][j] - rec.landmarks).max() < TOL, f"frame {f}"
            assert np.abs(t["pose_angles"][j] - rec.pose.angles).max() < 1e-2
            assert np.abs(t["pose_translation"][j] - rec.pose.translation).max() < TOL
    return t


def test_interrupted_run_resumes_and_redoes_a_failed_chunk(media, tmp_path, library, request):
    """A real Ctrl-C (SIGINT to the job's process group) once two chunks are done;
    then one done chunk is turned into a failed one (its result gone, the manifest
    saying why), and the rerun finishes, taking the other chunks as they were."""
    out = tmp_path / "out"
    clips = [str(media / CLIPS[0]), str(media / CLIPS[1])]
    flags = ["--chunk", "8", "--overlap", "2", "--max-frames", "40", "--workers", "1", "--no-progress"]
    cmd = [
        sys.executable,
        "-m",
        "realtime.corpus",
        *clips,
        "--out",
        str(out),
        *flags,
        "--object-store-mb",
        "80",
    ]
    job = (
        subprocess.Popen(  # SIGINT's default action restored: a backgrounded pytest would pass it on ignored
            cmd,
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    )
    deadline = time.monotonic() + 240
    while len(list(out.glob(".parts/*/chunk-*.parquet"))) < 2 and job.poll() is None:
        assert time.monotonic() < deadline, "no chunk finished in 240 s"
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGINT)
    log = job.communicate(timeout=120)[0].decode()
    assert job.returncode == 130, log
    assert "interrupted: rerun the same command to resume" in log
    manifest = json.loads((out / "manifest.json").read_text())  # whole, not torn
    parts = sorted(out.glob(".parts/*/chunk-*.tracks.parquet"))
    assert len(parts) >= 2 and not list(out.glob("*.parquet"))
    video = next(v for v in manifest["videos"].values() if v["name"] == parts[0].parent.name)
    video["chunks"][str(int(parts[0].name.split(".")[0][6:]))] = "failed: simulated"
    (out / "manifest.json").write_text(json.dumps(manifest))
    parts[0].unlink()

    request.getfixturevalue("local_ray")  # after the job's own Ray has gone
    settings = Settings(chunk=8, overlap=2, max_frames=40)
    summary = run(clips, out, settings, Resources(workers=1, progress=False))
    assert summary.done == 2 and not summary.failed and summary.reused_chunks == len(parts) - 1
    assert summary.chunks == 10 - summary.reused_chunks
    outputs = _outputs(out)
    for name in CLIPS[:2]:
        t = check_against_library(library, media / name, outputs[name], settings)
        assert set(t["track_id"].tolist()) == {1}  # joined across all five chunks


@pytest.fixture(scope="module")
def corpus(local_ray, media, tmp_path_factory):
    """One run over the three clips and a broken file (the head of an mp4: no index)."""
    tmp = tmp_path_factory.mktemp("corpus")
    broken = tmp / "broken.mp4"
    broken.write_bytes((media / CLIPS[0]).read_bytes()[:4000])
    inputs = [str(media / "*.mp4"), str(media / "*.avi"), str(broken)]
    summary = run(
        inputs, tmp / "out", Settings(**SETTINGS, vertices=True), Resources(workers=2, progress=False)
    )
    return tmp / "out", summary, broken, inputs


def _outputs(out: Path) -> dict[str, Path]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {Path(v["path"]).name: out / v["outputs"][0] for v in manifest["videos"].values() if v["outputs"]}


def test_corpus_matches_the_library_and_lists_the_broken_file(corpus, media, library):
    out, summary, broken, _ = corpus
    assert summary.done == 3 and summary.failed and summary.failed[0][0] == str(broken)
    assert "not a readable video" in summary.failed[0][1]
    assert summary.frames == 3 * 48 and summary.workers == 2 and summary.fps > 0
    manifest = json.loads((out / "manifest.json").read_text())
    states = {Path(v["path"]).name: v["status"] for v in manifest["videos"].values()}
    assert states == {**dict.fromkeys(CLIPS, "done"), "broken.mp4": "failed"}
    assert not (out / ".parts").exists() and not list(out.glob("*.tmp"))
    outputs = _outputs(out)
    settings = Settings(**SETTINGS)
    for name in CLIPS:
        t = check_against_library(library, media / name, outputs[name], settings)
        assert np.allclose(t["time_s"], t["frame"] / probe(media / name).fps)
        assert ((t["confidence"] >= 0) & (t["confidence"] <= 1)).all()
        box, lm = t["box"], t["landmarks"]
        assert (box[:, :2] <= lm[:, :, :2].min(1) + 1e-4).all() and (
            box[:, 2:] >= lm[:, :, :2].max(1) - 1e-4
        ).all()
        if name != CLIPS[2]:  # one face in every frame: one track through the 3 chunks
            assert t["frame"].tolist() == list(range(48)) and set(t["track_id"].tolist()) == {1}
            assert np.median(t["confidence"]) > 0.9
    # dense vertices (float16 offsets): the library's mesh within float16 precision
    v = read_vertices(str(outputs[CLIPS[0]]).replace(".parquet", ".vertices.parquet"))
    lib = library_faces(library, media / CLIPS[0], settings)
    assert v["vertices"].shape[0] == 48 and v["vertices"].shape[2] == 3
    for k in (0, 25, 47):
        assert np.abs(v["vertices"][k] - lib[int(v["frame"][k])][0].vertices).max() < 0.1


def test_rerun_skips_finished_videos_and_lists_the_broken_one_again(corpus, capsys):
    out, _, broken, inputs = corpus
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    rc = main([*inputs, "--out", str(out), "--vertices", "--workers", "2", "--no-progress", *_flags()])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 1
    assert lines[0].startswith("videos 4: 0 done, 3 already done, 1 failed")
    assert lines[-1].startswith(f"failed: {broken}: not a readable video")
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.parquet")} == before


def _flags(**kw) -> list[str]:
    s = {**SETTINGS, **kw}
    return ["--chunk", str(s["chunk"]), "--overlap", str(s["overlap"]), "--max-frames", str(s["max_frames"])]


def test_bad_input_and_changed_settings_fail_in_one_line(corpus, tmp_path, capsys):
    out = corpus[0]
    cases = [
        [str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")],
        [str(tmp_path / "*.mkv"), "--out", str(tmp_path / "o")],
        [str(tmp_path), "--out", str(tmp_path / "o")],  # a folder without videos
        [str(corpus[2]), "--out", str(tmp_path / "o"), "--chunk", "8", "--overlap", "8"],
        [str(corpus[2]), "--out", str(tmp_path / "o"), "--model", "mobile", "--weights", "x.pt"],
        [str(corpus[2]), "--out", str(tmp_path / "o"), "--model", "huge"],
        [*corpus[3][:2], "--out", str(out), "--vertices", *_flags(chunk=24)],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
    assert "other settings (chunk 20 -> 24)" in err


def test_match_tracks_joins_by_overlap_iou():
    def table(rows: list[tuple[int, int, Sequence[float]]]) -> pa.Table:
        box = np.array([r[2] for r in rows], np.float32)
        return pa.table(
            {
                "frame": pa.array([r[0] for r in rows], pa.int32()),
                "track_id": pa.array([r[1] for r in rows], pa.int32()),
                "box": pa.FixedSizeListArray.from_arrays(pa.array(box.ravel()), 4),
            }
        )

    a, b = [0, 0, 10, 10], [50, 50, 70, 70]
    prev = table([(8, 1, a), (9, 1, a), (8, 2, b), (9, 2, b)])
    cur = table([(8, 1, b), (9, 1, b), (8, 2, [1, 1, 11, 11]), (9, 2, a), (9, 3, [100, 100, 110, 110])])
    assert match_tracks(prev, cur) == {1: 2, 2: 1}  # swapped local ids; 3 is a new face
