"""The training engine, in the manner of ultralytics' trainer: ``Trainer(args)`` sets a
run up from its flags (data, network, optimiser, averaged weights, resumed from the
run's ``last.pt`` or started from ``--init``), ``fit`` runs ``step`` over the
deterministic batch stream, ``validate``s at the end of each epoch, checkpoints every
few minutes, and ``export`` ships the best checkpoint as a weights bundle.

The objective is the paper's weighted MSE on the position map, plus, by flags, the
lids' and lips' openings (``--expression``) and a teacher's maps (``--distill``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from realtime.core.landmarks import EXPRESSION_PAIRS, LID_PAIRS
from realtime.core.lidlip import CONTROLS
from realtime.core.nme import landmark_nme
from realtime.core.uv import load_bfm
from realtime.core.weights import build_net
from realtime.train.batches import (
    StepBatches,
    expression_balanced,
    pick,
    rescale_affines,
    rescale_maps,
    resize_input,
    to_input,
    worker_init,
    yaw_balanced,
)
from realtime.train.checkpoint import (
    export_bundle,
    initial_weights,
    make_config,
    run_dir,
    save_checkpoint,
    save_curve,
)
from realtime.train.groundtruth import Batcher, MapMaker, landmarks_2d, load_trainset, refit_to_human

LOG_EVERY = 50  # steps between progress lines (and loss history entries)
VAL_BATCH = 64


def weighted_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of weight * squared error summed over x, y, z (map units)."""
    return ((pred - target).pow(2).sum(1) * weight).mean()


def expression_loss(
    pred: torch.Tensor, target: torch.Tensor, kpt_ind: np.ndarray, lid_weight: float = 3.0
) -> torch.Tensor:
    """Mean squared error of the x, y differences between the landmark pairs that carry
    expression (``EXPRESSION_PAIRS``: lids, lips, mouth width), in map units.

    The weighted map loss scores each point on its own, so a network that puts the
    whole mouth a little off everywhere and one that closes an open mouth cost about
    the same; here the error shared by both points of a pair cancels, and what is
    left is the opening itself. The lids' pairs weigh ``lid_weight``: their openings
    are a third of the mouth's, and unweighted the lids learned about half as fast."""
    a, b = (np.array(ix) for ix in zip(*EXPRESSION_PAIRS, strict=True))
    w = torch.tensor([lid_weight if pair in LID_PAIRS else 1.0 for pair in EXPRESSION_PAIRS])
    cols, rows = torch.as_tensor(kpt_ind[0]), torch.as_tensor(kpt_ind[1])

    def gaps(m: torch.Tensor) -> torch.Tensor:
        pts = m[:, :2, rows, cols]  # (B, 2, 68)
        return pts[..., a] - pts[..., b]

    return ((gaps(pred) - gaps(target)).pow(2).sum(1) * w).mean()


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


class Trainer:
    """One run of ``python -m realtime.train``: see the module's docstring."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        torch.manual_seed(args.seed)
        if args.threads:
            torch.set_num_threads(args.threads)
        self.device = torch.device(args.device)
        self.out = run_dir(args)
        self.out.mkdir(parents=True, exist_ok=True)
        self.cfg = make_config(args)
        print(f"training {self.cfg} at {self.cfg.resolution}px on {self.device}; checkpoints in {self.out}")
        self.teacher, self.crop = self._teacher()
        self._data()
        self.weight = torch.from_numpy(self.maker.layout.weight_mask).to(self.device)
        self.scale = self.cfg.output_scale
        self._model()
        self.steps_per_epoch = len(self.train_idx) // args.batch
        self.total = int(self.state["epochs"] * self.steps_per_epoch)
        self._precision()

    # -- set-up ------------------------------------------------------------------------

    def _teacher(self) -> tuple[torch.nn.Module | None, int]:
        """--teacher's folded network and the side crops are made at: the teacher's,
        so a smaller student's input is its crop resized (``prep``)."""
        a, cfg = self.args, self.cfg
        if not a.teacher:
            return None, cfg.resolution
        from realtime.core.weights import load_bundle
        from realtime.live.engines.backends import inference_module

        tb = load_bundle(a.teacher)
        if tb.config.layout_resolution != cfg.layout_resolution or tb.config.resolution < cfg.resolution:
            raise SystemExit(
                f"error: --teacher {a.teacher}: its map ({tb.config.layout_resolution}px) must be the "
                f"student's ({cfg.layout_resolution}px) and its input at least the student's"
            )
        # folded batch norms, channels_last, fp32: its maps times output_scale, in crop px
        teacher = inference_module(tb).to(self.device).to(memory_format=torch.channels_last)
        side = tb.config.resolution
        print(f"distilling from {a.teacher} ({tb.config}), weight {a.distill}; crops at {side}px")
        return teacher, side

    def _data(self) -> None:
        """The crops and fits (refitted, with MediaPipe's lids and lips, joined by the
        turned copies, as the flags ask), the held-out split and the two batchers."""
        a = self.args
        data = load_trainset(a.data)
        bfm = load_bfm(a.data / "bfm" / "bfm_noneck_uv.npz")
        labels21 = "train/aflw_crops_labels21.npz matching the crops"
        if a.human_refit:
            if data.pts21 is None:
                raise SystemExit(f"error: --human-refit needs {labels21}")
            data.params = refit_to_human(data.params, data.pts21, bfm)
        if a.balance_yaw and data.yaw is None:
            raise SystemExit(f"error: --balance-yaw needs {labels21}")
        self.maker = MapMaker(bfm, self.cfg.layout_resolution).to(self.device)
        order = np.random.default_rng(12345).permutation(len(data.images))
        self.val_idx, self.train_idx = order[: a.val], order[a.val :]
        if a.expression_labels:  # lid and lip moves, from MediaPipe (realtime.train.expression)
            from realtime.train.expression import load_offsets

            data.offsets = load_offsets(data, data.params, bfm)
            print(f"expression labels: {(np.abs(data.offsets).max((1, 2)) > 0).mean():.0%} of crops moved")
        train_data, self.prof_idx = data, None
        if a.profiled:
            from realtime.train.profiling import cache_path, join_profiled, load_cache

            folder = cache_path(data.names, a.profiled_copies)
            if not (folder / "xform.npy").exists():
                raise SystemExit(
                    f"error: --profiled needs {folder}: python -m realtime.train.profiling build "
                    f"--copies {a.profiled_copies}"
                )
            # The validation crops' turned copies stay out: they would leak them.
            train_data, self.prof_idx = join_profiled(data, load_cache(folder), exclude=self.val_idx)
            per_batch = round(a.profiled * a.batch)
            print(f"{len(self.prof_idx)} profiled crops from {folder}, {per_batch} per batch")
        occlude = None
        if a.occluders:
            from realtime.train.occluders import occlude_one as occlude
        self.data, self.bfm, self.train_data = data, bfm, train_data
        self.train_b = Batcher(
            train_data,
            self.maker,
            augment=True,
            flip_p=a.flip,
            strength=a.aug_strength,
            occlude=occlude,
            resolution=self.crop,
            framing=a.framing_strength,
            still_mouth=a.still_mouth,
        )
        self.val_b = Batcher(data, self.maker, augment=False, resolution=self.crop, still_mouth=a.still_mouth)

    def _model(self) -> None:
        """The network and Adam, resumed from ``last.pt`` or started from ``--init``;
        the averaged weights beside them."""
        a, cfg = self.args, self.cfg
        self.model = build_net(cfg).to(self.device).to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=a.lr)
        self.state: dict = {"step": 0, "history": [], "best": math.inf}
        last, ck = self.out / "last.pt", None
        if last.exists():
            ck = torch.load(last, map_location=self.device, weights_only=False)
            self.model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["opt"])
            self.state = ck["state"]
            print(f"resumed from {last} at step {self.state['step']}")
        elif a.init:
            init_cfg, weights = initial_weights(a.init)
            if dataclasses.replace(init_cfg, face_head=False) != cfg:
                raise SystemExit(f"error: --init {a.init} is {init_cfg}, the run is {cfg}")
            # a face head (trained apart on the frozen encoder: realtime.train.face_head) stays behind
            self.model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("face_head.")})
            print(f"starting from the weights in {a.init}")
        if "planned" not in self.state:  # a schedule fitted to --minutes outlives a resume
            self.state["epochs"], self.state["halve_every"] = a.epochs, a.halve_every
        # Validated and shipped weights are an exponential moving average of the trained
        # ones: Adam's step noise averaged out, which costs nothing per step.
        self.ema = copy.deepcopy(self.model).eval()
        if ck is not None and "ema" in ck:
            self.ema.load_state_dict(ck["ema"])
        self.averaged = list(self.ema.parameters()), list(self.model.parameters())

    def _precision(self) -> None:
        """Autocast as --precision says: bf16 on a CPU only where it is native."""
        a, device = self.args, self.device
        if device.type == "cpu":
            native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
            half = {"auto": native, "bf16": True, "fp32": False}[a.precision]
            bf16 = True
        else:
            half = a.precision != "fp32"
            bf16 = torch.cuda.is_bf16_supported()
        self.amp = torch.autocast(device.type, dtype=torch.bfloat16 if bf16 else torch.float16, enabled=half)
        self.scaler = torch.amp.GradScaler(enabled=half and not bf16)
        print(f"precision: {'bf16' if half and bf16 else 'fp16' if half else 'fp32'}")

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        """Crops -> the student's input side."""
        return resize_input(x, self.cfg.resolution)

    def sampling(self) -> np.ndarray | None:
        """The training crops' sampling probabilities (--balance-yaw,
        --balance-expression), or None for plain shuffles."""
        a, idx = self.args, self.train_idx
        p = yaw_balanced(self.data.yaw[idx]) if a.balance_yaw else None
        if a.balance_expression:
            lm = landmarks_2d(self.data.params[idx].astype(np.float64), self.bfm)
            if self.data.offsets is not None:
                lm[:, CONTROLS] += self.data.offsets[idx]
            pe = expression_balanced(lm, None if self.data.yaw is None else self.data.yaw[idx])
            p = pe if p is None else p * pe / (p * pe).sum()
        return p

    def loader(self) -> torch.utils.data.DataLoader:
        """The batch stream from the current step to the end of the schedule."""
        a = self.args
        steps = StepBatches(
            self.train_b,
            self.train_idx,
            a.seed,
            a.batch,
            self.state["step"],
            self.total,
            self.sampling(),
            self.prof_idx,
            a.profiled,
        )
        return torch.utils.data.DataLoader(
            steps,
            batch_size=None,
            num_workers=a.workers,
            worker_init_fn=worker_init if a.workers else None,
            prefetch_factor=4 if a.workers else None,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # -- the engine --------------------------------------------------------------------

    def step(self, imgs: torch.Tensor, affs: torch.Tensor, sel: torch.Tensor) -> tuple[float, float | None]:
        """One optimiser step on one batch of the stream: (its loss, the teacher's part
        of it or None)."""
        a, cfg, st = self.args, self.cfg, self.state
        epoch = st["step"] / self.steps_per_epoch
        for g in self.opt.param_groups:
            g["lr"] = a.lr * 0.5 ** math.floor(epoch / st["halve_every"])
        x = to_input(imgs, self.device)
        rows = sel.numpy()
        aff = rescale_affines(affs.numpy(), self.crop, cfg.resolution)
        labels = self.train_data
        y = self.maker.maps(labels.params[rows], aff, pick(labels.offsets, rows)) / self.scale
        t_maps = None
        if self.teacher is not None:
            with torch.no_grad():
                t_maps = rescale_maps(
                    self.teacher(x.contiguous(memory_format=torch.channels_last)), self.crop, cfg.resolution
                )
            x = self.prep(x)
        with self.amp:
            pred = self.model(x)
        loss = weighted_loss(pred.float(), y, self.weight)
        if a.expression:
            kpt = self.maker.layout.kpt_ind
            loss = loss + a.expression * expression_loss(pred.float(), y, kpt, a.lid_weight)
        t_loss = None
        if t_maps is not None:
            t_loss = weighted_loss(pred.float(), t_maps.float() / self.scale, self.weight)
            loss = loss + a.distill * t_loss
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        if a.ema:
            with torch.no_grad():
                torch._foreach_lerp_(*self.averaged, 1.0 - a.ema)
        st["step"] += 1
        return float(loss.detach()), None if t_loss is None else float(t_loss.detach())

    def validate(self) -> float:
        """Mean 68-point NME of the averaged weights on the held-out crops, their batch
        norms re-estimated first."""
        recalibrate_bn(self.ema, self.train_b, self.train_idx, self.device, prep=self.prep)
        cols, rows = self.maker.layout.kpt_ind
        nmes = []
        with torch.no_grad(), self.amp:
            for i in range(0, len(self.val_idx), VAL_BATCH):
                sel = self.val_idx[i : i + VAL_BATCH]
                imgs, affs = self.val_b.pixels(sel, np.random.default_rng(0))
                p = self.ema(self.prep(to_input(imgs, self.device))).float().cpu() * self.scale
                affs = rescale_affines(affs, self.crop, self.cfg.resolution)
                gt = self.maker.maps(self.data.params[sel], affs, pick(self.data.offsets, sel)).cpu()
                nmes.append(landmark_nme(p[:, :, rows, cols].numpy(), gt[:, :, rows, cols].numpy())[0])
        return float(np.concatenate(nmes).mean())

    def save(self, path: Path) -> None:
        """A checkpoint of the run now (realtime.train.checkpoint's format)."""
        parts = {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "state": self.state,
            "config": self.cfg.to_dict(),
            "layout": self.maker.layout.to_arrays(),
            "args": vars(self.args),
        }
        save_checkpoint(path, parts)

    def export(self, out: Path, extra: dict | None = None) -> Path:
        """The run's best checkpoint as a shippable weights bundle at ``out``."""
        return export_bundle(self.out / "best.pt", out, extra)

    def fit(self) -> int:
        """Train to the end of the schedule (or --max-minutes), validating at the end of
        every --val-every epochs and checkpointing every --ckpt-minutes; 0."""
        a, st, per = self.args, self.state, self.steps_per_epoch
        t0 = last_ck = time.time()
        loss_acc, t_acc, n_acc, seen = 0.0, 0.0, 0, 0
        planned = not a.minutes or "planned" in st
        start, t100, seen100 = st["step"], t0, 0
        self.model.train()
        for imgs, affs, sel in self.loader():
            if st["step"] >= self.total:
                break
            if not planned and st["step"] == start + 100:
                t100, seen100 = time.time(), seen
            if not planned and st["step"] == start + 300:
                self.fit_schedule((seen - seen100) / (time.time() - t100))
                planned = True
            epoch = st["step"] / per
            loss, t_loss = self.step(imgs, affs, sel)
            loss_acc, n_acc, seen = loss_acc + loss, n_acc + 1, seen + len(imgs)
            t_acc += t_loss or 0.0
            if st["step"] % LOG_EVERY == 0:
                self.log(epoch, loss_acc / n_acc, t_acc / n_acc, seen / (time.time() - t0))
                loss_acc, t_acc, n_acc = 0.0, 0.0, 0
            end_of_epoch = st["step"] % per == 0 or st["step"] == self.total
            timed_out = a.max_minutes and (time.time() - t0) / 60 > a.max_minutes
            if end_of_epoch or time.time() - last_ck > a.ckpt_minutes * 60 or timed_out:
                nth = round(st["step"] / per)
                if end_of_epoch and (nth % a.val_every == 0 or st["step"] == self.total):
                    self.end_epoch(nth)
                self.save(self.out / "last.pt")
                last_ck = time.time()
                if timed_out:
                    print("time limit reached; checkpoint saved, rerun to resume")
                    return 0
        self.save(self.out / "last.pt")
        return 0

    def fit_schedule(self, rate: float) -> None:
        """--minutes: shrink the epochs and the halving period together so that the
        schedule takes that long at ``rate`` images a second (kept across resumes)."""
        a, st = self.args, self.state
        fit = min(1.0, rate * a.minutes * 60 / (a.epochs * self.steps_per_epoch * a.batch))
        st["epochs"], st["halve_every"] = a.epochs * fit, a.halve_every * fit
        st["planned"] = True
        self.total = max(int(st["epochs"] * self.steps_per_epoch), st["step"] + 1)
        print(
            f"{rate:.0f} img/s: the schedule is {st['epochs']:.1f} epochs, "
            f"lr halved every {st['halve_every']:.2f}, to fit {a.minutes:g} minutes",
            flush=True,
        )

    def log(self, epoch: float, loss: float, t_loss: float, rate: float) -> None:
        """A progress line, and the mean loss since the last into the history."""
        st = self.state
        eta = (self.total - st["step"]) * self.args.batch / max(rate, 1e-6) / 60
        entry = {"epoch": st["step"] / self.steps_per_epoch, "loss": loss}
        if self.teacher is not None:
            entry["distill"] = t_loss
        st["history"].append(entry)
        dist = f" (teacher {t_loss:.5f})" if self.teacher is not None else ""
        print(
            f"epoch {epoch:6.2f}  step {st['step']}/{self.total}  loss {loss:.5f}{dist}  "
            f"lr {self.opt.param_groups[0]['lr']:.1e}  {rate:.1f} img/s  eta {eta:.0f} min",
            flush=True,
        )

    def end_epoch(self, nth: int) -> None:
        """Validate, keep the best (and with --keep-epochs every) checkpoint, and redraw
        the curves."""
        st = self.state
        nme = self.validate()
        st["history"].append({"epoch": st["step"] / self.steps_per_epoch, "val_nme": nme})
        print(f"validation NME {100 * nme:.2f}% at epoch {st['step'] / self.steps_per_epoch:.2f}", flush=True)
        if nme < st["best"]:
            st["best"] = nme
            self.save(self.out / "best.pt")
        if self.args.keep_epochs:  # to pick by another yardstick later (python -m realtime.eval)
            self.save(self.out / f"epoch{nth:03d}.pt")
        save_curve(st["history"], self.out / "loss_curve.png")
        (self.out / "history.json").write_text(json.dumps(st["history"]))
