"""Part (b) of ``python -m realtime.bench``: the real pipeline, unpaced and paced.

Each run is ``python -m realtime --no-window --profile`` (what ``prnet-live`` and
run_live.py run) in a child process (the exact code a user runs, a fresh process per
backend so compile caches and GL contexts do not leak between runs) on a recorded
clip, carphone_176x144.mp4 upscaled to 640x480 or 1280x720, one face or the clip tiled
2x2 for four faces, and on the demo source. The profiler's summary gives per-stage
p50/p95/p99, end-to-end fps and capture->output latency. Unpaced runs take every frame
as fast as possible (throughput; their latency includes frames queued behind one
another). Paced runs (``--realtime``) feed frames at the source's 30 fps and keep only
the newest, as a camera does: their latency is the one a user sees live. Anything
missing is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.core.paths import CACHE, MEDIA, REPO, WEIGHTS
from realtime.core.types import Stage
from realtime.live.capture import clip_frames

CLIP = MEDIA / "carphone_176x144.mp4"
EFFECT = "tiger"  # a mask: what most live users run
STAGES = tuple(s.value for s in Stage)  # the profiler's, in the order a frame passes them
#: (input, width, height, faces, model, backend, paced) of the default runs on a CPU:
#: the grid with ``auto``, what users get (onnxruntime-int8 where the CPU has int8 dot
#: products, else onnxruntime); paced like a camera; then fp32 onnxruntime, the other
#: engines and the full model at 640x480.
CPU_RUNS = (
    [
        (inp, w, h, n, "lite", "auto", False)
        for inp, w, h, n in (
            ("clip", 640, 480, 1),
            ("clip", 640, 480, 4),
            ("clip", 1280, 720, 1),
            ("clip", 1280, 720, 4),
            ("demo", 640, 480, 1),
        )
    ]
    + [(inp, 640, 480, 1, "lite", "auto", True) for inp in ("clip", "demo")]
    + [("clip", 1920, 1080, 1, "lite", "auto", False)]
    + [("clip", 640, 480, n, "lite", "onnxruntime", False) for n in (1, 4)]
    + [("clip", 640, 480, 1, "lite", be, False) for be in ("cpu-fast", "eager")]
    + [("clip", 640, 480, 1, "full", "cpu-fast", False)]
    + [("clip", w, h, 1, "mobile", "onnxruntime", False) for w, h in ((640, 480), (1280, 720), (1920, 1080))]
    + [(inp, 640, 480, 1, "mobile", "onnxruntime", True) for inp in ("clip", "demo")]
)
#: On a GPU: the HD sizes people's cameras give, 1 and 4 faces, offline and paced at
#: 30 fps; cuda-graph (fp16 here) and its fp32 variant, the path a Pascal card takes.
GPU_RUNS = (
    [
        ("clip", w, h, n, "full", be, False)
        for be in ("cuda-graph", "cuda-graph-fp32")
        for w, h in ((1280, 720), (1920, 1080))
        for n in (1, 4)
    ]
    + [("clip", w, h, 1, "full", "cuda-graph", True) for w, h in ((1280, 720), (1920, 1080))]
    + [("clip", 1280, 720, 1, "lite", "cuda-graph", False)]
    + [("demo", 1280, 720, 1, "full", "cuda-graph", True)]
)


def make_clip(width: int, height: int, faces: int, out_dir: Path) -> Path:
    """The recorded clip upscaled to width x height (aspect kept, padded), tiled
    2x2 for four faces; made once and reused."""
    path = out_dir / f"carphone_{width}x{height}_{faces}faces.avi"
    if path.is_file():
        return path
    grid = 1 if faces == 1 else int(np.ceil(np.sqrt(faces)))
    cw, ch = width // grid, height // grid
    tiles = clip_frames(CLIP, (cw, ch))
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (width, height))
    for tile in tiles:
        canvas = np.full((height, width, 3), 30, np.uint8)
        for i in range(faces):
            r, c = divmod(i, grid)
            canvas[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = tile
        writer.write(canvas)
    writer.release()
    tmp.replace(path)
    return path


def _weights(model: str) -> tuple[list[str], str | None]:
    """run_live flags for a model, or (.., reason) when it cannot run."""
    if model in ("lite", "mobile"):
        return ["--model", model], None
    full = WEIGHTS / "prnet_full256.pt"
    if full.is_file():
        return ["--weights", str(full)], None
    path = CACHE / "bench" / "random_full256.pt"
    if not path.is_file():
        from realtime.bench.model import random_bundle
        from realtime.core.weights import save_bundle

        save_bundle(random_bundle(16, 256), path)
    return ["--weights", str(path)], None


def run_one(
    inp: str,
    width: int,
    height: int,
    faces: int,
    model: str,
    backend: str,
    frames: int,
    threads: int,
    work: Path,
    paced: bool = False,
    effect: str = EFFECT,
) -> dict:
    """One ``python -m realtime`` run; its profile summary plus how it was made."""
    run = {
        "input": inp,
        "width": width,
        "height": height,
        "faces": faces,
        "model": model,
        "backend": backend,
        "effect": effect,
        "paced": paced,
    }
    if inp == "demo":
        src = ["--demo", "--size", f"{width}x{height}"]
        run["source"] = "demo"
    else:
        clip = make_clip(width, height, faces, CACHE / "bench" / "clips")
        src = ["--input", str(clip)]
        tiled = f", tiled for {faces} faces" if faces > 1 else ""
        run["source"] = f"{CLIP.name} upscaled to {width}x{height}{tiled}"
    weights, why = _weights(model)
    if why:
        run["skipped"] = why
        return run
    if paced:
        src.append("--realtime")
    profile = work / f"{inp}_{width}x{height}_{faces}f_{model}_{backend}{'_paced' * paced}.json"
    cmd = [
        sys.executable,
        "-m",
        "realtime",
        *src,
        "--no-window",
        "--profile",
        str(profile),
        "--effect",
        effect,
        "--backend",
        backend,
        "--faces",
        str(max(faces, 1)),
        "--frames",
        str(frames),
        *weights,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    run["wall_s"] = round(time.perf_counter() - t0, 1)
    if proc.returncode not in (0, 1) or not profile.is_file():
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        run["skipped"] = f"prnet-live exited {proc.returncode}: {last[:300]}"
        return run
    summary = json.loads(profile.read_text())
    run.update({k: summary.get(k) for k in ("frames", "fps", "latency_ms", "stages", "dropped")})
    ran = summary.get("meta", {}).get("backend")
    if backend == "auto" and ran:  # the table shows what auto picked on this machine
        run["backend"] = f"auto: {ran}"
    run["notes"] = [ln for ln in proc.stderr.splitlines() if "engines]" in ln or "chosen" in ln][-4:]
    return run


def bench_pipeline(
    frames: int,
    log: Callable[[str], None],
    runs: list | None = None,
    effect: str = EFFECT,
    models: tuple[str, ...] | None = None,
) -> dict:
    """All pipeline runs (CPU_RUNS, or GPU_RUNS when CUDA is here), or those of ``models``."""
    if not CLIP.is_file():
        return {"runs": [], "skipped": f"the recorded clip {CLIP} is missing"}
    runs = runs or (GPU_RUNS if torch.cuda.is_available() else CPU_RUNS)
    runs = [r for r in runs if models is None or r[4] in models]
    threads = torch.get_num_threads()
    out: dict = {"frames_per_run": frames, "threads": threads, "effect": effect, "runs": []}
    with tempfile.TemporaryDirectory(prefix="prnet-bench-") as tmp:
        for i, spec in enumerate(runs):
            inp, w, h, n, model, backend, paced = spec
            log(
                f"pipeline {i + 1}/{len(runs)}: {inp} {w}x{h} {n} face(s) {model} {backend} "
                f"{'paced at 30 fps' if paced else 'unpaced'} ({frames} frames)..."
            )
            r = run_one(inp, w, h, n, model, backend, frames, threads, Path(tmp), paced, effect)
            if "skipped" in r:
                log(f"  skipped: {r['skipped']}")
            else:
                lat = r["latency_ms"]
                log(
                    f"  {r['fps']:.1f} fps, latency p50 {lat['p50']:.0f} p95 {lat['p95']:.0f} ms "
                    f"({r['wall_s']} s)"
                )
            out["runs"].append(r)
    return out


def markdown(p: dict) -> list[str]:
    lines = [
        "### Pipeline (effect: " + str(p.get("effect")) + "; paced: fed at 30 fps, newest frame wins)",
        "",
    ]
    if p.get("skipped"):
        return lines + [f"skipped: {p['skipped']}", ""]
    lines += [
        "| source | faces | model | backend | paced | fps | latency p50/p95/p99 ms | "
        + " | ".join(f"{s} p50/p95/p99" for s in STAGES)
        + " |",
        "|" + "---|" * (7 + len(STAGES)),
    ]
    for r in p["runs"]:
        head = (
            f"| {r['input']} {r['width']}x{r['height']} | {r['faces']} | {r['model']} | {r['backend']} "
            f"| {'yes' if r.get('paced') else 'no'} |"
        )
        if "skipped" in r:
            lines.append(head + f" skipped: {r['skipped']} |" + " |" * (len(STAGES) + 1))
            continue
        lat = r["latency_ms"]
        cells = []
        for s in STAGES:
            v = (r.get("stages") or {}).get(s)
            cells.append(f"{v['p50']:.1f}/{v['p95']:.1f}/{v['p99']:.1f}" if v else "-")
        lines.append(
            head
            + f" {r['fps']:.1f} | {lat['p50']:.0f}/{lat['p95']:.0f}/{lat['p99']:.0f} | "
            + " | ".join(cells)
            + " |"
        )
    return lines + [""]


def plot(p: dict, ax) -> None:
    """Stacked per-stage p50 ms for each run, fps on top."""
    runs = [r for r in p.get("runs", []) if "skipped" not in r]
    bottom = np.zeros(len(runs))
    for s in STAGES:
        vals = np.array([((r.get("stages") or {}).get(s) or {}).get("p50", 0.0) for r in runs])
        ax.bar(range(len(runs)), vals, bottom=bottom, label=s)
        bottom += vals
    for i, r in enumerate(runs):
        ax.text(i, bottom[i], f"{r['fps']:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(
        range(len(runs)),
        [
            f"{r['input']} {r['height']}p {r['faces']}f\n{r['model']} {r['backend']}"
            + (" paced" if r.get("paced") else "")
            for r in runs
        ],
        rotation=60,
        fontsize=6,
    )
    ax.set_ylabel("stage p50 ms (fps on top)")
    ax.set_title("pipeline")
    ax.legend(fontsize=6)
