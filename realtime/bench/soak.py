"""Memory over a long run: ``python -m realtime.bench --part soak [--minutes M]``.

Runs the app the way a live user does (the demo source paced at 30 fps, the tiger mask,
a profile being collected) in a child process for M minutes, samples its resident
memory every few seconds, and reports the growth after a one-minute warm-up (caches,
compiled kernels and the profiler's table settle in that time) with a chart.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from realtime.core.paths import REPO

WARMUP_S = 60.0
SAMPLE_S = 5.0


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def bench_soak(log: Callable[[str], None], minutes: float = 30.0, out: Path | None = None) -> dict:
    """RSS samples (s, MB) of a paced demo run and the growth after warm-up."""
    with tempfile.TemporaryDirectory(prefix="prnet-soak-") as tmp:
        cmd = [sys.executable, "-m", "realtime", "--demo", "--no-window", "--realtime"]
        cmd += ["--effect", "tiger", "--profile", str(Path(tmp) / "soak.json")]
        proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < minutes * 60 and proc.poll() is None:
                rss = _rss_mb(proc.pid)
                if rss is not None:
                    samples.append((round(time.monotonic() - t0, 1), round(rss, 1)))
                if len(samples) % 24 == 1:
                    log(f"soak: {samples[-1][0]:.0f} s, RSS {samples[-1][1]:.0f} MB")
                time.sleep(SAMPLE_S)
        finally:
            proc.terminate()  # SIGTERM: the app stops its threads and writes its profile
            _, err = proc.communicate(timeout=60)
    settled = [mb for s, mb in samples if s >= WARMUP_S]
    report = {
        "minutes": round((samples[-1][0] if samples else 0) / 60, 1),
        "rss_mb_after_warmup": settled[0] if settled else None,
        "rss_mb_end": settled[-1] if settled else None,
        "growth_mb": round(settled[-1] - settled[0], 1) if settled else None,
        "range_mb": round(max(settled) - min(settled), 1) if settled else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "exit_code": proc.returncode,
        "samples": samples,
        "last_line": (err.strip().splitlines() or [""])[-1][:300],
    }
    if out is not None and samples:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot([s / 60 for s, _ in samples], [mb for _, mb in samples])
        ax.axvline(WARMUP_S / 60, color="grey", linestyle=":", label="end of warm-up")
        ax.set_xlabel("minutes")
        ax.set_ylabel("RSS MB")
        ax.set_title(f"paced demo, tiger mask: growth after warm-up {report['growth_mb']} MB")
        ax.legend()
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        report["chart"] = str(out)
    return report
