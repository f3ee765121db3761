"""CLI: ``python -m realtime.corpus INPUT... --out DIR``. Exit status: 0 every video
done, 1 some failed (listed), 2 bad input or flags (one line), 130 interrupted."""

from __future__ import annotations

import argparse
import sys

from realtime.core.types import UserError
from realtime.corpus.inputs import Settings
from realtime.corpus.job import Resources, run


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.corpus",
        description="Face tracks for a video corpus, on Ray Data: one Parquet table per video in --out, "
        "one row per face per frame. Rerun the same command to resume.",
    )
    ap.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="video files, folders, globs or .txt lists of paths"
    )
    ap.add_argument("--out", required=True, help="output folder (holds manifest.json)")
    ap.add_argument("--workers", type=_positive(int), help="actors (default: as many as the CPUs/GPUs allow)")
    ap.add_argument(
        "--cpus-per-worker", type=_positive(float), default=1.0, help="CPUs (and threads) per actor"
    )
    ap.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor (0.5: two share one)")
    ap.add_argument(
        "--address", help="Ray cluster: 'auto' or ray://HOST:10001 (default: local Ray, no setup)"
    )
    ap.add_argument("--backend", help="engine (default: onnxruntime on a CPU, auto on a GPU)")
    ap.add_argument("--model", default="auto", help="shipped model: auto, lite or mobile (default auto)")
    ap.add_argument("--weights", help="a weights bundle of your own, instead of --model")
    ap.add_argument("--chunk", type=_positive(int), default=256, help="frames per chunk (default 256)")
    ap.add_argument("--overlap", type=int, default=8, help="frames chunks share, to join tracks (default 8)")
    ap.add_argument("--max-frames", type=_positive(int), help="only the first N frames of each video")
    ap.add_argument(
        "--max-faces", type=_positive(int), default=4, help="faces followed per frame (default 4)"
    )
    ap.add_argument(
        "--vertices", action="store_true", help="also write NAME.vertices.parquet (dense mesh, fp16)"
    )
    ap.add_argument("--raw", action="store_true", help="unsmoothed landmarks and pose (default: smoothed)")
    ap.add_argument(
        "--object-store-mb", type=_positive(int), help="local Ray's object store (default: Ray's)"
    )
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 0 <= args.overlap < args.chunk:
        print(
            f"error: --overlap {args.overlap}: must be >= 0 and below --chunk {args.chunk}", file=sys.stderr
        )
        return 2
    if args.gpus_per_worker < 0:
        print("error: --gpus-per-worker must be >= 0", file=sys.stderr)
        return 2
    settings = Settings(args.chunk, args.overlap, args.max_frames, args.max_faces, args.vertices, args.raw)
    res = Resources(
        args.workers,
        args.cpus_per_worker,
        args.gpus_per_worker,
        args.address,
        args.backend,
        args.object_store_mb,
        False if args.no_progress else None,
    )
    try:
        summary = run(args.inputs, args.out, settings, res, args.weights, args.model)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line)
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.error else 0


if __name__ == "__main__":
    sys.exit(main())
