"""Time mobile PRNet candidates beside the lite model through onnxruntime, batch 1,
1 and 2 threads, on this machine (issue 28): ``python tools/mobile_timing.py
[--candidates a,b] [--rounds 200] [--repeats 3] [--weights BUNDLE ...]``.

Every model is exported to ONNX (opset 17, dynamic batch; the lite model through the
engines' own export, BN folded) and run with the engines' session options
(``backends.ort_session``: no spinning). Models are timed interleaved, a block of
``rounds`` calls each, ``repeats`` times over; the table gives the best block's median
and p90 ms per call, so a background load that comes and goes costs every model alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from realtime.core.mobile import MobileConfig, MobilePRNet, ScaledMobile
from realtime.core.model import PRNet, PRNetConfig, count_flops
from realtime.core.weights import load_bundle
from realtime.live.engines.onnx import export_module, export_onnx, ort_session

_N = dict(channels=(16, 16, 24, 40, 80, 160), decoder=(64, 32, 24, 16))  # the first, narrower trial
CANDIDATES = {
    "m128": MobileConfig(128, **_N),
    "m96": MobileConfig(96, **_N),
    "m128-w": MobileConfig(128),  # the default widths at 128 px
    "m128-n": MobileConfig(
        128, channels=(16, 16, 24, 32, 64, 128), blocks=(1, 2, 2, 3, 2), decoder=(48, 32, 16, 16)
    ),
    "m96-w": MobileConfig(96),  # the default (shipped) widths
    "m96-ww": MobileConfig(96, channels=(16, 16, 32, 64, 128, 256), decoder=(128, 64, 32, 16)),
    "m128-hs": MobileConfig(128, hardswish=True, **_N),
    "m128-e6": MobileConfig(128, expand=6, **_N),
}


def bench(sessions: dict, rounds: int, repeats: int) -> dict:
    stats: dict[str, list] = {k: [] for k in sessions}
    for _ in range(repeats):
        for name, (sess, r) in sessions.items():
            x = np.random.rand(1, 3, r, r).astype(np.float32)
            for _ in range(10):
                sess.run(None, {"images": x})
            t = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                sess.run(None, {"images": x})
                t.append(1000 * (time.perf_counter() - t0))
            stats[name].append((float(np.median(t)), float(np.percentile(t, 90))))
    return {k: min(v) for k, v in stats.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--weights", nargs="*", default=[], help="mobile bundles to time as well")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mobile-timing-"))
    lite = load_bundle()
    paths = {"lite128": (export_onnx(lite), 128)}
    info = {
        "lite128": {
            "params_M": sum(v.numel() for v in lite.state_dict.values()) / 1e6,
            "MFLOPs": count_flops(PRNet(PRNetConfig(8, 128)), 128) / 1e6,
        }
    }
    for name in [c for c in args.candidates.split(",") if c]:
        cfg = CANDIDATES[name]
        torch.manual_seed(0)
        model = MobilePRNet(cfg).eval()
        paths[name] = (
            export_module(ScaledMobile(model), cfg.resolution, tmp / f"{name}.onnx", ("maps",)),
            cfg.resolution,
        )
        info[name] = {
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "MFLOPs": count_flops(model, cfg.resolution) / 1e6,
        }
    for w in args.weights:
        b = load_bundle(w)
        name = Path(w).stem
        paths[name] = (export_onnx(b), b.config.resolution)
        info[name] = {"params_M": sum(v.numel() for v in b.state_dict.values()) / 1e6}
    out = {"load_avg_start": os.getloadavg()[0]}
    for th in [int(t) for t in args.threads.split(",")]:
        sessions = {k: (ort_session(p, "cpu", th), r) for k, (p, r) in paths.items()}
        res = bench(sessions, args.rounds, args.repeats)
        for k, (med, p90) in res.items():
            info[k][f"ms_{th}t"] = round(med, 3)
            info[k][f"p90_{th}t"] = round(p90, 3)
    out["load_avg_end"] = os.getloadavg()[0]
    out["models"] = info
    print(f"load average {out['load_avg_start']:.2f} -> {out['load_avg_end']:.2f}")
    print(
        f"{'model':12s} {'params M':>8s} {'MFLOPs':>8s} {'ms 1t':>7s} {'p90':>6s} {'ms 2t':>7s} {'p90':>6s}"
    )
    for k, v in info.items():
        print(
            f"{k:12s} {v['params_M']:8.3f} {v.get('MFLOPs', float('nan')):8.1f} "
            + " ".join(
                f"{v.get(f'ms_{t}t', float('nan')):7.3f} {v.get(f'p90_{t}t', float('nan')):6.3f}"
                for t in (1, 2)
            )
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
