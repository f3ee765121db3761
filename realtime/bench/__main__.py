"""``python -m realtime.bench``: runs the chosen parts, prints a markdown report and
writes ``bench.json``, ``bench.md`` and ``bench.png`` into --out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from realtime.bench import model as M
from realtime.core.weights import BundleError, load_bundle, model_bundle

PARTS = ("all", "model", "pipeline", "components", "startup", "peers", "gpu", "roofline", "soak")


def _fmt(v: object) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{a} {_fmt(b)}" for a, b in v.items())
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"Device: {env['cpu']} ({env['cores']} cores, {env['torch_threads']} torch threads)"
        f"{', GPU ' + env['gpu'] if env['gpu'] else ', no GPU'}; torch {env['torch']}; "
        f"load average at start {env['load_avg_1m']:.1f}.",
        "",
        *M.markdown(report.get("models", [])),
    ]
    if "pipeline" in report:
        from realtime.bench.pipeline import markdown as pipeline_markdown

        lines += pipeline_markdown(report["pipeline"])
    for part in ("components", "startup", "soak"):
        if part in report:
            lines += ["", f"### {part.capitalize()} (ms unless named otherwise)", ""]
            lines += [f"- {k}: {_fmt(v)}" for k, v in report[part].items() if k != "samples"]
    if "peers" in report:
        lines += ["", *report["peers"].get("markdown", [])]
    if "gpu" in report:
        from realtime.bench.gpu import markdown as gpu_markdown

        lines += ["", *gpu_markdown(report["gpu"])]
    if "roofline" in report:
        from realtime.bench.roofline import markdown as roofline_markdown

        lines += ["", *roofline_markdown(report["roofline"])]
    return "\n".join(lines) + "\n"


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report.get("models", [])
    pipeline = report.get("pipeline", {}).get("runs")
    panels = len(models) + (1 if pipeline else 0)
    if not panels:
        return
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    for ax, m in zip(axes[0], models, strict=False):
        M.plot(m, ax)
    if pipeline:
        from realtime.bench.pipeline import plot

        plot(report["pipeline"], axes[0][-1])
    fig.suptitle(f"{report['environment']['cpu']}, {report['environment']['torch_threads']} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.bench",
        description=M.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for json/md/png")
    ap.add_argument("--part", choices=PARTS, default="all", help="all = model, pipeline and components")
    ap.add_argument(
        "--backends",
        default=",".join(M.BENCH_BACKENDS),
        help="comma-separated engines to time (default: all; unavailable ones are skipped)",
    )
    ap.add_argument(
        "--models",
        default=None,
        help="full, lite, mobile, comma-separated (model part: default full,lite; pipeline: its runs "
        "of these models, default all)",
    )
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--reps", type=int, default=20, help="timed rounds per model and batch (at most)")
    ap.add_argument(
        "--seconds", type=float, default=30.0, help="stop a model/batch after this long (min 3 rounds)"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--lite-weights", type=Path, default=None, help="lite bundle (default: the shipped one)")
    ap.add_argument("--full-weights", type=Path, default=None, help="full bundle (default: random weights)")
    ap.add_argument("--frames", type=int, default=150, help="pipeline and peers: frames per run")
    ap.add_argument("--effect", default="tiger", help="pipeline: the effect drawn (default tiger)")
    ap.add_argument("--minutes", type=float, default=30.0, help="soak: how long the run lasts")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    try:
        batches = tuple(int(b) for b in args.batches.split(","))
        backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
        unknown = [b for b in backends if b not in M.BENCH_BACKENDS]
        if unknown or not batches or min(batches) < 1:
            raise ValueError(f"unknown backend {unknown[0]}" if unknown else "batches must be >= 1")
    except ValueError as e:
        print(
            f"error: bad --backends/--batches ({e}); backends: {', '.join(M.BENCH_BACKENDS)}",
            file=sys.stderr,
        )
        return 2
    report: dict = {"environment": M.environment(threads), "models": []}
    load = report["environment"]["load_avg_1m"]
    if load > 0.5 * (os.cpu_count() or 1):
        M.log(
            f"warning: load average {load:.1f} on {os.cpu_count()} cores: other processes compete, "
            "so every figure is depressed (speedups stay comparable: engines are timed round-robin)"
        )
    part = args.part
    try:
        if part in ("all", "model"):
            for label in (args.models or "full,lite").split(","):
                if label == "full":
                    bundle = load_bundle(args.full_weights) if args.full_weights else M.random_bundle(16, 256)
                elif label == "lite":
                    bundle = load_bundle(args.lite_weights)
                elif label == "mobile":
                    bundle = load_bundle(model_bundle("mobile"))
                else:
                    print(f"error: unknown model {label!r}: use full, lite, mobile", file=sys.stderr)
                    return 2
                report["models"].append(
                    M.bench_model(label, bundle, backends, batches, args.reps, args.seconds)
                )
        if part in ("all", "pipeline"):
            from realtime.bench.pipeline import bench_pipeline

            models = tuple(args.models.split(",")) if args.models else None
            report["pipeline"] = bench_pipeline(args.frames, M.log, effect=args.effect, models=models)
        if part in ("all", "components"):
            from realtime.bench.components import components

            report["components"] = components(M.log)
        if part == "startup":
            from realtime.bench.startup import bench_startup

            report["startup"] = bench_startup(M.log)
        if part == "gpu":
            from realtime.bench.gpu import bench_gpu

            report["gpu"] = bench_gpu(M.log, args.full_weights)
        if part == "roofline":
            from realtime.bench.roofline import bench_roofline

            report["roofline"] = bench_roofline(M.log)
        if part == "soak":
            from realtime.bench.soak import bench_soak

            report["soak"] = bench_soak(M.log, args.minutes, args.out / "soak.png")
        if part == "peers":
            from realtime.bench.peers import run_peers

            report["peers"] = run_peers(args.out, frames=args.frames)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=1, default=_json))
    (args.out / "bench.md").write_text(markdown(report))
    chart(report, args.out / "bench.png")
    print(markdown(report))
    M.log(f"wrote {args.out / 'bench.json'}, bench.md, bench.png")
    return 0


def _json(v: object) -> object:
    return v.tolist() if isinstance(v, np.ndarray) else str(v)


if __name__ == "__main__":
    sys.exit(main())
