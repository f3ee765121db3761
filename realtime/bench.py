"""Speed as a measured product feature: ``python -m realtime.bench``.

Part (a), the model benchmark: ms per frame (median, p95) of every engine that can
run here, for the full model (size 16, 256 px; random weights unless --full-weights
is given: speed does not depend on the values) and the lite model (the shipped
bundle), batch 1 and 4, each engine's speedup over eager fp32 and its error against
it. Engines are timed round-robin (one call of each per round), so a background load
that comes and goes slows every engine alike and the speedups stay comparable.

Part (b), the pipeline benchmark (``realtime.bench_pipeline``): the real pipeline,
unpaced, per stage.

Writes ``bench.json``, ``bench.md`` and ``bench.png`` into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from realtime import engines as E
from realtime.model import PRNet, PRNetConfig, count_flops
from realtime.uv import UVLayout
from realtime.weights import Bundle, BundleError, load_bundle

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Engines the model benchmark tries, in table order; cpu-bf16 is measured to show
#: what bf16 buys and costs in accuracy, never chosen by auto (it misses tolerance).
BENCH_BACKENDS = ("eager", "cpu-fast", "cpu-bf16", "onnxruntime", "cuda-fp32", "cuda-fp16", "tensorrt")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _scaled_layout(layout: UVLayout, resolution: int) -> UVLayout:
    """The layout at another resolution, nearest-neighbour: only its keypoint indices
    matter to the benchmark (for the landmark error)."""
    f = resolution / layout.resolution
    idx = np.clip(np.round(layout.kpt_ind * f), 0, resolution - 1).astype(np.int64)
    rows = (np.arange(resolution) / f).astype(int)
    mask = layout.face_mask[rows][:, rows]
    return UVLayout(
        resolution, idx, mask, layout.weight_mask[rows][:, rows], layout.triangles[:0], layout.canonical[:0]
    )


def random_bundle(size: int = 16, resolution: int = 256, seed: int = 0) -> Bundle:
    """A random-weights bundle whose batch norms are calibrated on random images, so
    activations have the scale of a trained net (an uncalibrated one saturates the
    sigmoid, which would hide every engine's error)."""
    torch.manual_seed(seed)
    config = PRNetConfig(size, resolution)
    model = PRNet(config)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 3, resolution, resolution))
    model.eval()
    try:
        from realtime.uv import build_layout, load_bfm

        layout, _ = build_layout(load_bfm(DATA / "bfm" / "bfm_noneck_uv.npz"), resolution)
    except Exception:  # no BFM here: the shipped layout, rescaled
        layout = _scaled_layout(load_bundle().layout, resolution)
    return Bundle(config, model.state_dict(), layout, {"note": f"random weights, seed {seed}"})


def face_images(resolution: int, batch: int) -> torch.Tensor:
    """Real face crops when the shared media are here (errors on real faces are what
    matter), noise otherwise."""
    import cv2

    out = []
    for name in ("astronaut.png", "obama_portrait.jpg", "biden_portrait.jpg", "miranda_portrait.png"):
        img = cv2.imread(str(DATA / "media" / name))
        if img is not None:
            img = cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_AREA)
            out.append(torch.from_numpy(img[:, :, ::-1].astype(np.float32) / 255).permute(2, 0, 1))
    while len(out) < batch:
        out.append(torch.rand(3, resolution, resolution))
    return torch.stack(out[:batch])


def build(bundle: Bundle, backend: str, batches: tuple[int, ...]):
    """One engine for the benchmark, or raise EngineError saying why not."""
    if backend == "cuda-fp32":
        if not torch.cuda.is_available():
            raise E.EngineError("no CUDA GPU")
        engine = E.EagerEngine(bundle, "cuda")
        engine.name = "cuda-fp32"
        return engine
    device = "cuda" if backend in ("cuda-fp16", "tensorrt") else "cpu"
    kw: dict = {}
    if backend in ("cpu-fast", "cpu-bf16", "cuda-fp16", "tensorrt"):
        kw["warmup"] = batches
    return E.create_engine(bundle, backend, device, **kw)


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "min": float(a.min()),
        "n": len(a),
    }


def bench_model(
    label: str, bundle: Bundle, backends: tuple[str, ...], batches: tuple[int, ...], reps: int, seconds: float
) -> dict:
    """Time every engine on ``bundle`` round-robin; per-frame ms = call ms / batch."""
    r = bundle.config.resolution
    result: dict = {
        "model": label,
        "size": bundle.config.size,
        "resolution": r,
        "gflops_per_frame": count_flops(bundle.config) / 1e9,
        "engines": {},
        "skipped": {},
    }
    engines = {}
    for name in backends:
        log(f"{label}: building {name}...")
        t0 = time.perf_counter()
        try:
            engines[name] = build(bundle, name, batches)
        except E.EngineError as e:
            result["skipped"][name] = str(e)
            log(f"{label}: {name} skipped: {e}")
            continue
        except Exception as e:  # a backend that breaks must not stop the others
            result["skipped"][name] = f"failed to build: {type(e).__name__}: {str(e)[:300]}"
            log(f"{label}: {name} failed: {e}")
            continue
        result["engines"][name] = {"build_s": time.perf_counter() - t0, "batches": {}}
        if name == "tensorrt":
            result["engines"][name]["compile_s"] = engines[name].compile_s
    for b in batches:
        images = face_images(r, b)
        ref = engines["eager"](images) if "eager" in engines else None
        times: dict[str, list[float]] = {n: [] for n in engines}
        for name, engine in engines.items():  # warm, and the equivalence check
            out = engine(images)
            entry = result["engines"][name]["batches"].setdefault(str(b), {})
            if ref is not None:
                err = E.compare(ref, out, bundle)
                entry.update(err, within_tolerance=E.within_tolerance(err))
        t_end = time.perf_counter() + seconds
        for i in range(reps):
            for name, engine in engines.items():
                t0 = time.perf_counter()
                engine(images)
                times[name].append((time.perf_counter() - t0) * 1e3 / b)
            if i + 1 >= 3 and time.perf_counter() > t_end:
                break
        base = np.median(times["eager"]) if "eager" in times else None
        for name, ms in times.items():
            entry = result["engines"][name]["batches"][str(b)]
            entry["ms_per_frame"] = _stats(ms)
            if base is not None:
                entry["speedup_vs_eager"] = float(base / np.median(ms))
            tol = (
                ""
                if "within_tolerance" not in entry
                else (" ok" if entry["within_tolerance"] else " OUT OF TOLERANCE")
            )
            log(
                f"{label} b{b} {name:12s} {entry['ms_per_frame']['median']:8.1f} ms/frame "
                f"(p95 {entry['ms_per_frame']['p95']:.1f}) x{entry.get('speedup_vs_eager', 1):.2f}{tol}"
            )
    return result


def environment(threads: int) -> dict:
    env = {
        "cpu": E.cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "bf16_native": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "inductor_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
    }
    for mod in ("cv2", "numba", "onnxruntime", "onnx", "torch_tensorrt", "tensorrt", "moderngl"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:
            env[mod] = None
    return env


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"Device: {env['cpu']} ({env['cores']} cores, {env['torch_threads']} torch threads)"
        f"{', GPU ' + env['gpu'] if env['gpu'] else ', no GPU'}; torch {env['torch']}; "
        f"load average at start {env['load_avg_1m']:.1f}.",
        "",
    ]
    for m in report.get("models", []):
        lines += [
            f"### {m['model']}: size {m['size']}, {m['resolution']} px, "
            f"{m['gflops_per_frame']:.2f} GFLOP/frame",
            "",
            "| engine | batch | ms/frame median | p95 | speedup vs eager | map err | landmark err px | ok |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, e in m["engines"].items():
            for b, s in e["batches"].items():
                if "ms_per_frame" not in s:
                    continue
                lines.append(
                    f"| {name} | {b} | {s['ms_per_frame']['median']:.1f} | {s['ms_per_frame']['p95']:.1f} | "
                    f"{s.get('speedup_vs_eager', float('nan')):.2f}x | {s.get('map_max_abs', 0):.1e} | "
                    f"{s.get('landmark_max_px', 0):.3f} | "
                    f"{'yes' if s.get('within_tolerance', True) else 'NO'} |"
                )
        for name, why in m["skipped"].items():
            lines.append(f"| {name} | - | skipped: {why} | | | | | |")
        lines.append("")
    if "pipeline" in report:
        from realtime.bench_pipeline import markdown as pipeline_markdown

        lines += pipeline_markdown(report["pipeline"])
    return "\n".join(lines) + "\n"


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report.get("models", [])
    panels = len(models) + (1 if report.get("pipeline", {}).get("runs") else 0)
    if not panels:
        return
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    for ax, m in zip(axes[0], models, strict=False):
        names = list(m["engines"])
        batches = sorted({b for e in m["engines"].values() for b in e["batches"]}, key=int)
        w = 0.8 / max(len(batches), 1)
        for j, b in enumerate(batches):
            vals = [
                m["engines"][n]["batches"].get(b, {}).get("ms_per_frame", {}).get("median", 0) for n in names
            ]
            ax.bar(np.arange(len(names)) + j * w, vals, w, label=f"batch {b}")
        ax.set_xticks(np.arange(len(names)) + w * (len(batches) - 1) / 2, names, rotation=30)
        ax.set_ylabel("ms per frame (median)")
        ax.set_title(f"{m['model']} ({m['resolution']} px)")
        ax.legend()
    if panels > len(models):
        from realtime.bench_pipeline import plot

        plot(report["pipeline"], axes[0][-1])
    fig.suptitle(f"{report['environment']['cpu']}, {report['environment']['torch_threads']} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for json/md/png")
    ap.add_argument("--part", choices=("all", "model", "pipeline"), default="all")
    ap.add_argument(
        "--backends",
        default=",".join(BENCH_BACKENDS),
        help="comma-separated engines to time (default: all; unavailable ones are skipped)",
    )
    ap.add_argument("--models", default="full,lite", help="full, lite or both")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--reps", type=int, default=20, help="timed rounds per model and batch (at most)")
    ap.add_argument(
        "--seconds", type=float, default=30.0, help="stop a model/batch after this long (min 3 rounds)"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--lite-weights", type=Path, default=None, help="lite bundle (default: the shipped one)")
    ap.add_argument("--full-weights", type=Path, default=None, help="full bundle (default: random weights)")
    ap.add_argument("--frames", type=int, default=150, help="pipeline benchmark: frames per run")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    try:
        batches = tuple(int(b) for b in args.batches.split(","))
        backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
        unknown = [b for b in backends if b not in BENCH_BACKENDS]
        if unknown or not batches or min(batches) < 1:
            raise ValueError(f"unknown backend {unknown[0]}" if unknown else "batches must be >= 1")
    except ValueError as e:
        print(
            f"error: bad --backends/--batches ({e}); backends: {', '.join(BENCH_BACKENDS)}", file=sys.stderr
        )
        return 2
    report: dict = {"environment": environment(threads), "models": []}
    load = report["environment"]["load_avg_1m"]
    if load > 0.5 * (os.cpu_count() or 1):
        log(
            f"warning: load average {load:.1f} on {os.cpu_count()} cores: other processes compete, "
            "so every figure is depressed (speedups stay comparable: engines are timed round-robin)"
        )
    try:
        if args.part in ("all", "model"):
            for label in args.models.split(","):
                if label == "full":
                    bundle = load_bundle(args.full_weights) if args.full_weights else random_bundle(16, 256)
                elif label == "lite":
                    bundle = load_bundle(args.lite_weights)
                else:
                    print(f"error: unknown model {label!r}: use full and/or lite", file=sys.stderr)
                    return 2
                report["models"].append(
                    bench_model(label, bundle, backends, batches, args.reps, args.seconds)
                )
        if args.part in ("all", "pipeline"):
            from realtime.bench_pipeline import bench_pipeline

            report["pipeline"] = bench_pipeline(args.frames, log)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=1))
    (args.out / "bench.md").write_text(markdown(report))
    chart(report, args.out / "bench.png")
    print(markdown(report))
    log(f"wrote {args.out / 'bench.json'}, bench.md, bench.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
