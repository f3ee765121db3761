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
import copy
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from realtime.core.landmarks import EXPRESSION_PAIRS, Expression
from realtime.core.mobile import MobileConfig
from realtime.core.model import PRNetConfig
from realtime.core.uv import load_bfm
from realtime.core.weights import Config, build_net, config_from_dict
from realtime.train.groundtruth import (
    CACHE,
    DEFAULT_DATA,
    Batcher,
    MapMaker,
    landmarks_2d,
    load_trainset,
    refit_to_human,
)
from realtime.train.lidlip import CONTROLS


def weighted_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of weight * squared error summed over x, y, z (map units)."""
    return ((pred - target).pow(2).sum(1) * weight).mean()


def expression_loss(pred: torch.Tensor, target: torch.Tensor, kpt_ind: np.ndarray) -> torch.Tensor:
    """Mean squared error of the x, y differences between the landmark pairs that carry
    expression (``EXPRESSION_PAIRS``: lids, lips, mouth width), in map units.

    The weighted map loss scores each point on its own, so a network that puts the
    whole mouth a little off everywhere and one that closes an open mouth cost about
    the same; here the error shared by both points of a pair cancels, and what is
    left is the opening itself."""
    a, b = (np.array(ix) for ix in zip(*EXPRESSION_PAIRS, strict=True))
    cols, rows = torch.as_tensor(kpt_ind[0]), torch.as_tensor(kpt_ind[1])

    def gaps(m: torch.Tensor) -> torch.Tensor:
        pts = m[:, :2, rows, cols]  # (B, 2, 68)
        return pts[..., a] - pts[..., b]

    return (gaps(pred) - gaps(target)).pow(2).sum(1).mean()


def expression_balanced(lm: np.ndarray, yaw: np.ndarray | None, bins: int = 5) -> np.ndarray:
    """Sampling probabilities that make rare expressions (a wide-open mouth, closed
    lids) more frequent: each crop weighs 1/sqrt(count) of its mouth-opening bin times
    the same for its lid-opening bin (``bins`` equal widths over the middle 98 % of faces
    within 45 degrees of frontal, where the measures are read reliably); turned crops weigh the mean."""
    e = Expression.from_landmarks(lm)
    ok = np.isfinite(e.mouth) & np.isfinite(e.eyes)
    if yaw is not None:
        ok &= np.abs(yaw) < 45
    w = np.ones(len(lm))
    for m in (e.mouth, e.eyes):
        lo, hi = np.quantile(m[ok], (0.01, 0.99))
        edges = np.linspace(lo, hi, bins + 1)[1:-1]  # equal widths: the tails are the rare bins
        b = np.digitize(m, edges)
        count = np.bincount(b[ok], minlength=len(edges) + 1).astype(np.float64)
        w *= np.where(ok, 1.0 / np.sqrt(np.maximum(count[b], 1.0)), 1.0)
    w[~ok] = w[ok].mean()
    return w / w.sum()


def pick(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if a is None else a[rows]


def landmark_nme(pred_maps: torch.Tensor, gt_maps: torch.Tensor, kpt_ind: np.ndarray) -> np.ndarray:
    """Per-image 68-point 2D NME, normalised by sqrt(w*h) of the true landmarks' box."""
    p = pred_maps[:, :2, kpt_ind[1], kpt_ind[0]]
    g = gt_maps[:, :2, kpt_ind[1], kpt_ind[0]]
    size = torch.sqrt((g[:, 0].amax(1) - g[:, 0].amin(1)) * (g[:, 1].amax(1) - g[:, 1].amin(1)))
    return ((p - g).norm(dim=1).mean(1) / size).numpy()


def recalibrate_bn(
    net: torch.nn.Module,
    batcher: Batcher,
    idx: np.ndarray,
    device: torch.device,
    batches: int = 40,
    batch: int = 32,
    prep=None,
) -> None:
    """Re-estimate batch-norm statistics as a plain average over augmented batches.

    The running statistics kept during training follow the last ~10 batches, and that
    noise alone moved validation NME by about a point in a probe; an even average over
    a fixed set of batches removes it (and is required after weight averaging).
    ``prep`` turns the batcher's input tensor into the network's (a resize, for a
    student smaller than the crops)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for i in range(batches):
            sel = idx[(i * batch) % len(idx) :][:batch]
            imgs, _ = batcher.pixels(sel, np.random.default_rng([7, i]))
            x = to_input(imgs, device)
            net(prep(x) if prep is not None else x)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    net.eval()


def to_input(imgs: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, R, R, 3) uint8 -> (B, 3, R, R) float in [0, 1] on ``device``; the NHWC
    buffer seen through a permute is already channels-last, so nothing is copied."""
    x = torch.as_tensor(imgs).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def resize_input(x: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 3, R, R) crops -> (B, 3, side, side), area-averaged (antialiased bilinear),
    as a smaller student sees the crop its teacher sees."""
    if x.shape[-1] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


def rescale_affines(affs: np.ndarray, src: int, dst: int) -> np.ndarray:
    """(B, 2, 3) affines into ``src``-px crops -> into the same crops resized to ``dst``
    px (pixel centres at integers: x' = (x + 0.5) dst / src - 0.5)."""
    k = dst / src
    out = np.asarray(affs, np.float64) * k
    out[:, :, 2] += 0.5 * k - 0.5
    return out


def rescale_maps(maps: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """Position maps in ``src``-px crop pixels -> ``dst``-px crop pixels (x, y as
    ``rescale_affines``; z scales)."""
    if src == dst:
        return maps
    k = dst / src
    out = maps * k
    out[:, :2] += 0.5 * k - 0.5
    return out


def make_config(args: argparse.Namespace) -> Config:
    """The run's architecture from ``--arch``, ``--size``, ``--resolution``, ``--mobile``."""
    if args.arch == "mobile":
        extra = json.loads(args.mobile) if args.mobile else {}
        return MobileConfig(resolution=args.resolution or MobileConfig.resolution, **extra)
    return PRNetConfig(size=args.size, resolution=args.resolution or 128)


class StepBatches(torch.utils.data.Dataset):
    """Item k is the augmented image half of training step ``start + k``.

    The crops and the random stream of a step depend on the seed and the step alone,
    so a run resumed, or fed by data-loader workers in any order, sees the same
    batches as one that ran straight through."""

    def __init__(
        self,
        batcher: Batcher,
        train_idx: np.ndarray,
        seed: int,
        batch: int,
        start: int,
        stop: int,
        p: np.ndarray | None = None,
        profiled: np.ndarray | None = None,
        share: float = 0.0,
    ):
        self.b, self.idx, self.seed, self.batch, self.p = batcher, train_idx, seed, batch, p
        self.start, self.stop = start, stop
        self.per_epoch = len(train_idx) // batch
        # --profiled: the last round(share * batch) of each batch are turned crops
        # (indices ``profiled``), each epoch a fresh draw without repeats.
        self.prof = profiled
        self.n_prof = round(share * batch) if profiled is not None and len(profiled) else 0

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = self.start + k
        epoch = step // self.per_epoch
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.idx) if self.p is None else rng.choice(self.idx, len(self.idx), p=self.p)
        j = (step % self.per_epoch) * self.batch
        sel = order[j : j + self.batch]
        if self.n_prof:
            turned = np.random.default_rng([self.seed, epoch, 1]).permutation(self.prof)
            at = (step % self.per_epoch) * self.n_prof
            sel = np.concatenate(
                [sel[: self.batch - self.n_prof], turned.take(range(at, at + self.n_prof), mode="wrap")]
            )
        imgs, affs = self.b.pixels(sel, np.random.default_rng([self.seed, step]))
        return imgs, affs, sel


def yaw_balanced(yaw: np.ndarray) -> np.ndarray:
    """Sampling probabilities that make |yaw| in [0, 30), [30, 60) and 60+ degrees
    equally frequent: the benchmark weighs the three bins equally, and AFLW has half
    as many turned faces as frontal ones."""
    bins = np.digitize(np.abs(yaw), (30.0, 60.0))
    p = 1.0 / np.bincount(bins, minlength=3)[bins]
    return p / p.sum()


def _worker_init(_: int) -> None:
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


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


def run_dir(args: argparse.Namespace) -> Path:
    cfg = make_config(args)  # the defaults as the run uses them
    mobile = isinstance(cfg, MobileConfig)
    tag = f"mobile-r{cfg.resolution}" if mobile else f"prnet-s{cfg.size}-r{cfg.resolution}"
    return CACHE / "train" / (args.run or tag)


def save_curve(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    steps = [h["epoch"] for h in history if "loss" in h]
    ax[0].plot(steps, [h["loss"] for h in history if "loss" in h], lw=0.8)
    ax[0].set(xlabel="epoch", ylabel="weighted loss", yscale="log", title="training loss")
    val = [h for h in history if "val_nme" in h]
    ax[1].plot([h["epoch"] for h in val], [100 * h["val_nme"] for h in val], "o-")
    ax[1].set(xlabel="epoch", ylabel="NME %", title="validation 68-point NME")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def initial_weights(path: Path) -> tuple[Config, dict]:
    """A weights bundle's, or a training checkpoint's averaged weights (best.pt,
    last.pt), so that a later phase starts from a run without an export in between."""
    from realtime.core.weights import BundleError, load_bundle

    try:
        init = load_bundle(path)
        return init.config, init.state_dict
    except BundleError as e:
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
            return config_from_dict(ck["config"]), ck.get("ema", ck["model"])
        except Exception:
            raise SystemExit(f"error: --init: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = run_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    cfg = make_config(args)
    print(f"training {cfg} at {cfg.resolution}px on {device}; checkpoints in {out}")
    teacher = None
    crop = cfg.resolution  # the side crops are made at; a smaller student's input is resized
    if args.teacher:
        from realtime.core.weights import load_bundle
        from realtime.live.engines.backends import inference_module

        tb = load_bundle(args.teacher)
        if tb.config.layout_resolution != cfg.layout_resolution or tb.config.resolution < cfg.resolution:
            raise SystemExit(
                f"error: --teacher {args.teacher}: its map ({tb.config.layout_resolution}px) must be the "
                f"student's ({cfg.layout_resolution}px) and its input at least the student's"
            )
        # folded batch norms, channels_last, fp32: its maps times output_scale, in crop px
        teacher = inference_module(tb).to(device).to(memory_format=torch.channels_last)
        crop = tb.config.resolution
        print(f"distilling from {args.teacher} ({tb.config}), weight {args.distill}; crops at {crop}px")

    data = load_trainset(args.data)
    bfm = load_bfm(args.data / "bfm" / "bfm_noneck_uv.npz")
    if args.human_refit:
        if data.pts21 is None:
            raise SystemExit("error: --human-refit needs train/aflw_crops_labels21.npz matching the crops")
        data.params = refit_to_human(data.params, data.pts21, bfm)
    maker = MapMaker(bfm, cfg.layout_resolution).to(device)
    order = np.random.default_rng(12345).permutation(len(data.images))
    val_idx, train_idx = order[: args.val], order[args.val :]
    offsets = None  # (M, 32, 2) lid and lip moves, from MediaPipe (realtime.train.expression)
    if args.expression_labels:
        from realtime.train.expression import load_offsets

        offsets = load_offsets(data, data.params, bfm)
        print(f"expression labels: {np.abs(offsets).max(-1).max(-1).__gt__(0).mean():.0%} of crops moved")
    train_data, prof_idx = data, None
    if args.profiled:
        from realtime.train.profiling import cache_path, join_profiled, load_cache

        folder = cache_path(data.names, args.profiled_copies)
        if not (folder / "xform.npy").exists():
            raise SystemExit(
                f"error: --profiled needs {folder}: python -m realtime.train.profiling build "
                f"--copies {args.profiled_copies}"
            )
        # The validation crops' turned copies stay out: they would leak them.
        train_data, prof_idx = join_profiled(data, load_cache(folder), exclude=val_idx)
        if offsets is not None:  # the turned copies keep their fits' lids and lips
            offsets = np.concatenate([offsets, np.zeros((len(prof_idx), *offsets.shape[1:]), np.float32)])
        print(f"{len(prof_idx)} profiled crops from {folder}, {round(args.profiled * args.batch)} per batch")
    occlude = None
    if args.occluders:
        from realtime.train.occluders import occlude_one as occlude
    train_b = Batcher(
        train_data,
        maker,
        augment=True,
        flip_p=args.flip,
        strength=args.aug_strength,
        occlude=occlude,
        resolution=crop,
    )
    val_b = Batcher(data, maker, augment=False, resolution=crop)
    weight = torch.from_numpy(maker.layout.weight_mask).to(device)
    scale = cfg.output_scale

    model = build_net(cfg).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    state = {"step": 0, "history": [], "best": math.inf}
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        print(f"resumed from {last} at step {state['step']}")
    elif args.init:
        init_cfg, weights = initial_weights(args.init)
        if dataclasses.replace(init_cfg, face_head=False) != cfg:
            raise SystemExit(f"error: --init {args.init} is {init_cfg}, the run is {cfg}")
        # a face head (trained apart on the frozen encoder: realtime.train.face_head) stays behind
        model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("face_head.")})
        print(f"starting from the weights in {args.init}")
    if "planned" not in state:  # a schedule fitted to --minutes outlives a resume
        state["epochs"], state["halve_every"] = args.epochs, args.halve_every
    # Validated and shipped weights are an exponential moving average of the trained
    # ones: Adam's step noise averaged out, which costs nothing per step.
    ema = copy.deepcopy(model).eval()
    if last.exists() and "ema" in ck:
        ema.load_state_dict(ck["ema"])

    steps_per_epoch = len(train_idx) // args.batch
    total = int(state["epochs"] * steps_per_epoch)
    if device.type == "cpu":
        native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
        half = {"auto": native, "bf16": True, "fp32": False}[args.precision]
        bf16 = True
    else:
        half = args.precision != "fp32"
        bf16 = torch.cuda.is_bf16_supported()
    amp = torch.autocast(device.type, dtype=torch.bfloat16 if bf16 else torch.float16, enabled=half)
    scaler = torch.amp.GradScaler(enabled=half and not bf16)
    print(f"precision: {'bf16' if half and bf16 else 'fp16' if half else 'fp32'}")

    def prep(x: torch.Tensor) -> torch.Tensor:  # crops -> the student's input side
        return resize_input(x, cfg.resolution)

    def save(path: Path) -> None:
        ck = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "opt": opt.state_dict(),
            "state": state,
            "config": cfg.to_dict(),
            "layout": maker.layout.to_arrays(),
            "args": vars(args),
        }
        torch.save(ck, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)

    def validate() -> float:
        recalibrate_bn(ema, train_b, train_idx, device, prep=prep)
        nmes = []
        with torch.no_grad(), amp:
            for i in range(0, len(val_idx), 64):
                sel = val_idx[i : i + 64]
                imgs, affs = val_b.pixels(sel, np.random.default_rng(0))
                p = ema(prep(to_input(imgs, device))).float().cpu() * scale
                affs = rescale_affines(affs, crop, cfg.resolution)
                gt = maker.maps(data.params[sel], affs, pick(offsets, sel)).cpu()
                nmes.append(landmark_nme(p, gt, maker.layout.kpt_ind))
        return float(np.concatenate(nmes).mean())

    t0 = time.time()
    last_ck = time.time()
    loss_acc, n_acc, seen, t_acc = 0.0, 0, 0, 0.0
    model.train()
    if args.balance_yaw and data.yaw is None:
        raise SystemExit("error: --balance-yaw needs train/aflw_crops_labels21.npz matching the crops")
    p = yaw_balanced(data.yaw[train_idx]) if args.balance_yaw else None
    if args.balance_expression:
        lm = landmarks_2d(data.params[train_idx].astype(np.float64), bfm)
        if offsets is not None:
            lm[:, CONTROLS] += offsets[train_idx]
        pe = expression_balanced(lm, None if data.yaw is None else data.yaw[train_idx])
        p = pe if p is None else p * pe / (p * pe).sum()
    steps = StepBatches(
        train_b, train_idx, args.seed, args.batch, state["step"], total, p, prof_idx, args.profiled
    )
    loader = torch.utils.data.DataLoader(
        steps,
        batch_size=None,
        num_workers=args.workers,
        worker_init_fn=_worker_init if args.workers else None,
        prefetch_factor=4 if args.workers else None,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    ema_params, model_params = list(ema.parameters()), list(model.parameters())
    planned = not args.minutes or "planned" in state
    start, t100, seen100 = state["step"], t0, 0
    for imgs, affs, sel in loader:
        if state["step"] >= total:
            break
        epoch = state["step"] / steps_per_epoch
        if not planned and state["step"] == start + 100:
            t100, seen100 = time.time(), seen
        if not planned and state["step"] == start + 300:
            rate = (seen - seen100) / (time.time() - t100)
            fit = min(1.0, rate * args.minutes * 60 / (args.epochs * steps_per_epoch * args.batch))
            state["epochs"], state["halve_every"] = args.epochs * fit, args.halve_every * fit
            state["planned"] = True
            planned = True
            total = max(int(state["epochs"] * steps_per_epoch), state["step"] + 1)
            print(
                f"{rate:.0f} img/s: the schedule is {state['epochs']:.1f} epochs, "
                f"lr halved every {state['halve_every']:.2f}, to fit {args.minutes:g} minutes",
                flush=True,
            )
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 ** math.floor(epoch / state["halve_every"])
        x = to_input(imgs, device)
        affs = rescale_affines(affs.numpy(), crop, cfg.resolution)
        y = maker.maps(train_data.params[sel.numpy()], affs, pick(offsets, sel.numpy())) / scale
        if teacher is not None:
            with torch.no_grad():
                t_maps = rescale_maps(
                    teacher(x.contiguous(memory_format=torch.channels_last)), crop, cfg.resolution
                )
            x = prep(x)
        with amp:
            pred = model(x)
        loss = weighted_loss(pred.float(), y, weight)
        if args.expression:
            loss = loss + args.expression * expression_loss(pred.float(), y, maker.layout.kpt_ind)
        if teacher is not None:
            t_loss = weighted_loss(pred.float(), t_maps.float() / scale, weight)
            loss = loss + args.distill * t_loss
            t_acc += float(t_loss.detach())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if args.ema:
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, model_params, 1.0 - args.ema)
        state["step"] += 1
        loss_acc += float(loss.detach())
        n_acc += 1
        seen += len(x)
        if state["step"] % 50 == 0:
            rate = seen / (time.time() - t0)
            eta = (total - state["step"]) * args.batch / max(rate, 1e-6) / 60
            entry = {"epoch": state["step"] / steps_per_epoch, "loss": loss_acc / n_acc}
            if teacher is not None:
                entry["distill"] = t_acc / n_acc
            state["history"].append(entry)
            dist = f" (teacher {t_acc / n_acc:.5f})" if teacher is not None else ""
            print(
                f"epoch {epoch:6.2f}  step {state['step']}/{total}  loss {loss_acc / n_acc:.5f}{dist}  "
                f"lr {opt.param_groups[0]['lr']:.1e}  {rate:.1f} img/s  eta {eta:.0f} min",
                flush=True,
            )
            loss_acc, n_acc, t_acc = 0.0, 0, 0.0
        end_of_epoch = state["step"] % steps_per_epoch == 0 or state["step"] == total
        timed_out = args.max_minutes and (time.time() - t0) / 60 > args.max_minutes
        if end_of_epoch or time.time() - last_ck > args.ckpt_minutes * 60 or timed_out:
            nth = round(state["step"] / steps_per_epoch)
            if end_of_epoch and (nth % args.val_every == 0 or state["step"] == total):
                nme = validate()
                state["history"].append({"epoch": state["step"] / steps_per_epoch, "val_nme": nme})
                print(
                    f"validation NME {100 * nme:.2f}% at epoch {state['step'] / steps_per_epoch:.2f}",
                    flush=True,
                )
                if nme < state["best"]:
                    state["best"] = nme
                    save(out / "best.pt")
                if args.keep_epochs:  # to pick by another yardstick later (python -m realtime.eval)
                    save(out / f"epoch{nth:03d}.pt")
                save_curve(state["history"], out / "loss_curve.png")
                (out / "history.json").write_text(json.dumps(state["history"]))
            save(last)
            last_ck = time.time()
            if timed_out:
                print("time limit reached; checkpoint saved, rerun to resume")
                return 0
    save(last)
    return 0


def export_bundle(ckpt_path: Path, out_path: Path, extra: dict | None = None) -> Path:
    """Turn a training checkpoint into a shippable fp16 weights bundle."""
    from realtime.core.uv import UVLayout
    from realtime.core.weights import Bundle, save_bundle

    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    st = ck["state"]
    provenance = {
        "source": "trained by PRNet Live (python -m realtime.train)",
        "data": "AFLW crops with 3DDFA_V2 3DMM fits, BFM no-neck UV (non-commercial research use)",
        "args": {k: str(v) for k, v in ck["args"].items()},
        "step": st["step"],
        "val_nme": st["best"],
        **(extra or {}),
    }
    layout = UVLayout.from_arrays(ck["layout"])
    weights = ck.get("ema", ck["model"])  # best.pt's EMA has recalibrated batch norms
    bundle = Bundle(config_from_dict(ck["config"]), weights, layout, provenance)
    return save_bundle(bundle, out_path)


if __name__ == "__main__":
    sys.exit(main())
