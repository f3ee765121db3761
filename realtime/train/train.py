"""Train PRNet per the paper's recipe: ``python -m realtime.train``.

Weighted MSE on the position map (16 : 4 : 3 : 0), Adam, the learning rate halved
every few epochs, batch 16, the paper's augmentation. Checkpoints go to a cache
folder outside the work tree every few minutes and a rerun with the same ``--run``
resumes from the last one, because good accuracy on a CPU takes hours and a session
may end in the middle.

``--arch mobile`` trains the mobile network (realtime.core.mobile) instead, its input side
``--resolution`` (96 by default) and its map at the layout's 128. ``--teacher BUNDLE
--distill W`` adds W x the same weighted loss against a teacher's maps (e.g. the lite
model's) on the same augmented crop: crops are then made at the teacher's side and
resized (area) for a smaller student, and the teacher's maps are carried into the
student's crop pixels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from realtime.train.groundtruth import DEFAULT_DATA
from realtime.train.trainer import Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m realtime.train", description=__doc__)
    ap.add_argument(
        "--arch", choices=("prnet", "mobile"), default="prnet", help="network (realtime.core.mobile)"
    )
    ap.add_argument("--size", type=int, default=8, help="PRNet's base width: 8 lite, 16 full")
    ap.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="input side (PRNet: also the map's, 128 or 256, default 128; mobile: default 96, the map 128)",
    )
    ap.add_argument(
        "--mobile",
        default=None,
        help="mobile config fields as JSON, e.g. '{\"channels\": [16, 16, 24, 48, 96, 192]}'",
    )
    ap.add_argument(
        "--teacher", type=Path, default=None, help="weights bundle to distil from (its maps as targets)"
    )
    ap.add_argument("--distill", type=float, default=1.0, help="weight of the loss against --teacher's maps")
    ap.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="autocast: auto is bf16 on a GPU and on CPUs with native bf16 (AVX-512 BF16 / AMX), "
        "fp32 elsewhere (emulated bf16 ran 10-25x slower on an AVX2 EPYC)",
    )
    ap.add_argument("--epochs", type=float, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4, help="starting learning rate")
    ap.add_argument("--halve-every", type=float, default=5, help="epochs per lr halving")
    ap.add_argument("--val", type=int, default=500, help="crops held out for validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", default=None, help="run name (checkpoint folder); resumes")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    ap.add_argument("--ema", type=float, default=0.999, help="weight averaging decay (0: off)")
    ap.add_argument(
        "--init", type=Path, default=None, help="start from this weights bundle or run checkpoint (fine-tune)"
    )
    ap.add_argument("--flip", type=float, default=0.0, help="probability of a mirrored sample")
    ap.add_argument(
        "--occluders",
        action="store_true",
        help="occlude with hands, hair, glasses, microphones and objects on the face "
        "(realtime.train.occluders) instead of textured boxes",
    )
    ap.add_argument(
        "--aug-strength",
        type=float,
        default=1.0,
        help="scale every augmentation range and chance (1: the paper's; below 1 for a last "
        "phase nearer the clean, upright crops seen at test time)",
    )
    ap.add_argument(
        "--framing-strength",
        type=float,
        default=None,
        help="scale the crops' scale and shift draws by this instead of --aug-strength "
        "(the live crops' framing varies more than a mild last phase's)",
    )
    ap.add_argument(
        "--still-mouth",
        type=float,
        nargs="?",
        const=1.0,
        default=0.0,
        help="frame this share of the crops (all without a value) on their landmarks with "
        "the jaw and lips at rest, as the live tracker's StillMouthFraming frames them; a "
        "share under 1 shows the network both framings, so the crop's place cannot tell "
        "it how open the mouth is",
    )
    ap.add_argument(
        "--human-refit",
        action="store_true",
        help="move each teacher fit toward AFLW's hand-marked points (groundtruth.refit_to_human)",
    )
    ap.add_argument("--balance-yaw", action="store_true", help="sample yaw bins equally (needs AFLW yaw)")
    ap.add_argument(
        "--expression",
        type=float,
        default=0.0,
        help="weight of the loss on the lids' and lips' openings (expression_loss); 0: off",
    )
    ap.add_argument(
        "--lid-weight",
        type=float,
        default=3.0,
        help="in that loss, a lid pair's weight against a lip pair's (their openings are a third as wide)",
    )
    ap.add_argument(
        "--expression-labels",
        action="store_true",
        help="move the fits' lids and lips to MediaPipe's (python -m realtime.train.expression build first)",
    )
    ap.add_argument(
        "--balance-expression",
        action="store_true",
        help="sample open mouths and closed lids more often (expression_balanced)",
    )
    ap.add_argument(
        "--profiled",
        type=float,
        default=0.0,
        help="share of each batch taken from the profiled (turned) crops "
        "(build them first: python -m realtime.train.profiling build)",
    )
    ap.add_argument("--profiled-copies", type=int, default=2, help="the cache's turned copies per crop")
    ap.add_argument("--keep-epochs", action="store_true", help="keep a checkpoint per validation")
    ap.add_argument("--val-every", type=int, default=1, help="epochs between validations")
    ap.add_argument("--workers", type=int, default=0, help="data-loader processes (0: inline)")
    ap.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="fit the schedule into this long: the rate measured over the first 200 steps "
        "shrinks --epochs and --halve-every together (for a borrowed GPU's time slot)",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The flags, then the run: ``realtime.train.trainer.Trainer`` (fed by
    ``realtime.train.batches``; folders, checkpoints and ``export_bundle`` in
    ``realtime.train.checkpoint``)."""
    return Trainer(parse_args(argv)).fit()


if __name__ == "__main__":
    sys.exit(main())
