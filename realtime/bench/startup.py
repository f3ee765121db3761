"""Start-up as a user meets it: ``python -m realtime.bench --part startup``.

Time from launching ``python -m realtime --demo --no-window --frames 1`` to its exit with the
first frame written, in a fresh process each time: once with an empty cache folder
(cold: ``auto`` builds and times every CPU engine, exports ONNX, compiles) and then
with the cache that run left (warm: the remembered engine alone is built). Numba's
compiled decode and filter live beside the sources (``__pycache__``) and are warm in
both, as they are after the first run of an install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from realtime.core.paths import REPO


def _start(cache: Path, out: Path, backend: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "realtime", "--demo", "--no-window", "--frames", "1"]
    cmd += ["--output", str(out), "--backend", backend, "--device", "cpu"]
    env = dict(os.environ, PRNET_LIVE_CACHE=str(cache))
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)  # inside the cache folder, cold with it
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"prnet-live exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    chosen = [ln for ln in proc.stderr.splitlines() if "chosen" in ln]
    return wall, (chosen[-1] if chosen else "")


def bench_startup(log: Callable[[str], None], warm_runs: int = 3, backend: str = "auto") -> dict:
    """Cold, then warm start-ups (seconds to the first frame written, process exit)."""
    with tempfile.TemporaryDirectory(prefix="prnet-startup-") as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "first.png"
        log(f"startup: cold ({backend}, empty cache)...")
        cold, cold_choice = _start(cache, out, backend)
        log(f"startup: cold {cold:.1f} s")
        warm, warm_choice = [], ""
        for i in range(warm_runs):
            out.unlink()
            s, warm_choice = _start(cache, out, backend)
            warm.append(s)
            log(f"startup: warm {i + 1}/{warm_runs} {s:.1f} s")
    return {
        "backend": backend,
        "cold_s": round(cold, 2),
        "warm_s_median": round(float(np.median(warm)), 2),
        "warm_s_all": [round(w, 2) for w in warm],
        "cold_choice": cold_choice,
        "warm_choice": warm_choice,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
