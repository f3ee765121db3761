"""The peers side by side in one run (``python -m realtime.bench.peers``; the figures:
realtime.bench.peers)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from realtime.bench.peers.measures import SIZES, WARMUP, bench_nme, jitter, played_frames, stats, still_frames
from realtime.bench.peers.report import chart, markdown
from realtime.core.paths import SHARED_DATA
from realtime.peers.workers import MEDIAPIPE_VENV, PeerError, Worker, log, setup_mediapipe, start

#: "ours" runs as the app does (realtime.live.engines.settle_threads: torch on one thread beside
#: onnxruntime's); "ours-1thread" also gives onnxruntime a single thread; "ours-mobile"
#: runs the mobile model (--model mobile) as the app does.
PEERS = ("ours", "ours-1thread", "ours-mobile", "mediapipe", "dlib")


def environment() -> dict:
    try:
        from realtime.live.engines import cpu_name

        cpu = cpu_name()
    except Exception:
        cpu = "unknown CPU"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], "cv2": cv2.__version__}


def run_peers(
    out_dir: Path,
    frames: int = 60,
    nme_images: int = 200,
    peers: tuple[str, ...] = PEERS,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    block: int = 5,
    warm_starts: int = 2,
    aflw: Path | None = None,
    log: Callable[[str], None] = log,
) -> dict:
    """Run every installed peer on the same frames (see the module docstring); write
    peers.json, peers.md and peers.png into ``out_dir`` and return the report (its
    ``markdown`` key: the table's lines). A peer that is not installed gets a row
    saying so."""
    aflw = aflw or SHARED_DATA / "aflw2000"
    report: dict = {
        "environment": environment(),
        "settings": {"frames": frames, "warmup": WARMUP, "block": block, "nme_images": nme_images},
        "peers": {p: {} for p in peers},
    }
    load = [os.getloadavg()[0]]
    report["environment"]["load_avg_1m_start"] = load[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    workers: dict[str, Worker] = {}
    with tempfile.TemporaryDirectory(prefix="prnet-peers-") as tmp:
        work = Path(tmp)
        clips = {}
        for w, h in sizes:
            clips[(w, h)] = work / f"clip_{w}x{h}.npy"
            np.save(clips[(w, h)], played_frames(w, h, frames + WARMUP))
        still, shifts = still_frames()
        np.save(work / "still.npy", still)
        first = clips[sizes[0]]
        try:
            for name in peers:  # one at a time: start-up is timed alone
                log(f"starting {name}...")
                try:
                    w, startup = start(name, first, work)
                except PeerError as e:
                    report["peers"][name]["skipped"] = str(e)
                    log(f"  skipped: {e}")
                    continue
                workers[name] = w
                report["peers"][name].update(
                    versions=w.ready["versions"],
                    startup={"first_s": startup, "load_s": w.ready["load_s"], "ready_s": w.ready_s},
                )
                log(f"  first result {startup:.2f} s after process start")
            for w, h in sizes:
                log(f"timing {', '.join(workers)} at {w}x{h}: {frames} frames, round-robin by {block}")
                per: dict[str, dict] = {n: {"ms": [], "cpu_ms": [], "found": 0} for n in workers}
                for wk in workers.values():
                    wk.ask(cmd="open", frames=str(clips[(w, h)]), video=True)
                    wk.ask(cmd="run", start=0, stop=WARMUP)
                names = list(workers)
                for r, a in enumerate(range(WARMUP, WARMUP + frames, block)):
                    b = min(a + block, WARMUP + frames)
                    for name in names[r % len(names) :] + names[: r % len(names)]:
                        rep = workers[name].ask(cmd="run", start=a, stop=b)
                        per[name]["ms"] += rep["ms"]
                        per[name]["cpu_ms"] += rep["cpu_ms"]
                        per[name]["found"] += sum(bool(f) for f in rep["faces"])
                    load.append(os.getloadavg()[0])
                for name, v in per.items():
                    report["peers"][name].setdefault("speed", {})[f"{w}x{h}"] = {
                        **stats(v["ms"]),
                        "cpu_ms_mean": float(np.mean(v["cpu_ms"])),
                        "frames": len(v["ms"]),
                        "found": v["found"] / max(1, len(v["ms"])),
                    }
            log("still-face jitter...")
            for name, wk in workers.items():
                wk.ask(cmd="open", frames=str(work / "still.npy"), video=True)
                faces = wk.ask(cmd="run", start=0, stop=len(still))["faces"]
                report["peers"][name]["jitter"] = jitter(faces, shifts)
            if nme_images > 0 and workers:
                same = {n: w for n, w in workers.items() if n != "ours-1thread"}  # ours' landmarks again
                report["nme"] = bench_nme(same, nme_images, aflw)
                load.append(os.getloadavg()[0])
        finally:
            for wk in workers.values():
                wk.close()
        for k in range(warm_starts):  # after the run, caches warm: what a user's next start costs
            for name in workers:
                log(f"warm start {k + 1}/{warm_starts} of {name}...")
                w2, startup = start(name, first, work)
                w2.close()
                report["peers"][name]["startup"].setdefault("warm_all_s", []).append(startup)
        for name in workers:
            st = report["peers"][name]["startup"]
            if st.get("warm_all_s"):
                st["warm_s"] = float(np.median(st["warm_all_s"]))
    env = report["environment"]
    env["load_avg_1m_end"] = os.getloadavg()[0]
    env["load_avg_1m_mean"] = float(np.mean(load))
    env["load_avg_1m_max"] = float(np.max(load))
    report["markdown"] = markdown(report)
    (out_dir / "peers.json").write_text(json.dumps(report, indent=1))
    (out_dir / "peers.md").write_text("\n".join(report["markdown"]) + "\n")
    chart(report, out_dir / "peers.png")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.bench.peers",
        description=sys.modules["realtime.bench.peers"].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--setup", action="store_true", help=f"create MediaPipe's venv ({MEDIAPIPE_VENV})")
    ap.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for peers.json/md/png")
    ap.add_argument("--frames", type=int, default=60, help="timed frames per size")
    ap.add_argument("--nme-images", type=int, default=200, help="AFLW2000-3D dev images for NME (0: none)")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, of: " + ", ".join(PEERS))
    args = ap.parse_args(argv)
    if args.setup:
        return setup_mediapipe()
    peers = tuple(p.strip() for p in args.peers.split(",") if p.strip())
    if not peers or any(p not in PEERS for p in peers):
        print(f"error: --peers takes {', '.join(PEERS)}", file=sys.stderr)
        return 2
    report = run_peers(args.out, frames=args.frames, nme_images=args.nme_images, peers=peers)
    print("\n".join(report["markdown"]))
    log(f"wrote {args.out / 'peers.json'}, peers.md, peers.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
